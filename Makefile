# Every target that runs code first makes sure .venv exists and holds the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MODEL ?=
INSTANCE ?=
BACKEND ?= highs
TIME_LIMIT ?= 60

.PHONY: install test run run-real solve compare bench notebooks lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

run: $(STAMP)
	$(BIN)/gaplab run

run-real: $(STAMP)
	$(BIN)/gaplab run --data-dir ../shared/data

solve: $(STAMP)
	@test -n "$(MODEL)" -a -n "$(INSTANCE)" || { echo "usage: make solve MODEL=name INSTANCE=file.json [BACKEND=highs]" >&2; exit 2; }
	$(BIN)/gaplab solve $(MODEL) $(INSTANCE) --backend $(BACKEND) --time-limit $(TIME_LIMIT)

compare: $(STAMP)
	@test -n "$(MODEL)" -a -n "$(INSTANCE)" || { echo "usage: make compare MODEL=name INSTANCE=file.json" >&2; exit 2; }
	$(BIN)/gaplab compare $(MODEL) $(INSTANCE) --backend $(BACKEND) --time-limit $(TIME_LIMIT)

bench: $(STAMP)
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

notebooks: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_notebooks.py

lint: $(STAMP)
	$(BIN)/ruff check gaplab tests benchmarks
	$(BIN)/ruff format --check gaplab tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
