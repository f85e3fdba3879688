"""The block-exec and block-build specs, the Ethereum importer and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gaplab.cli import main
from gaplab.heuristics import blockchain as heur
from gaplab.models.blockchain.ethereum import import_block
from gaplab.models.blockchain.generate import generate
from gaplab.models.blockchain.graph import bounds
from gaplab.models.blockchain.instance import BlockInstance, InstanceError
from gaplab.models.blockchain.plot import gantt_figure
from gaplab.models.blockchain.validate import validate
from gaplab.models.registry import get_model, run_exact, run_heuristic
from gaplab.solvers.result import SolveOptions
from tests.conftest import require_data_file

BLOCKS = {
    # block: (n, plain transfers, edges, L) from the design note's reference table
    "15537394": (80, 4, 697, 34),
    "19923400": (24, 7, 3, 2),
    "19932148": (227, 85, 1396, 49),
}
PINNED = {
    # block: (Wk, H1 makespan, Sol makespan) in gas at p = 4, pinned regression values
    "15537394": (38_708_239, 26_000_000, 34_771_044),
    "19923400": (4_258_322, 1_070_485, 2_063_981),
    "19932148": (27_301_168, 6_830_760, 14_250_958),
}


@pytest.mark.parametrize("name", ["block-exec", "block-build"])
def test_spec_round_trip_and_methods(name, tmp_path):
    spec = get_model(name)
    for size in spec.sizes:
        instance = spec.generate(seed=1, size=size)
        assert instance.problem == name
        assert instance.unit == size.startswith("unit-")
    instance = spec.generate(seed=3, size="tiny")
    path = tmp_path / "i.json"
    spec.dump(instance, path)
    loaded = spec.load(path)
    assert loaded.to_dict() == instance.to_dict()
    for heuristic in spec.heuristics:
        outcome = run_heuristic(spec, loaded, "tiny", heuristic)
        assert outcome.valid, (heuristic, outcome.violations)
    options = SolveOptions(time_limit=10)
    for variant in spec.exact:
        outcome = run_exact(spec, loaded, "tiny", variant, "highs", options)
        assert outcome.status == "optimal", variant
        assert outcome.valid in (True, None)
    assert json.dumps(spec.solution_to_json(spec.heuristics[next(iter(spec.heuristics))](loaded)))


def test_exec_extras_report_speedups_and_draw_gantt_charts(tmp_path):
    spec = get_model("block-exec")
    instance = spec.generate(seed=2, size="tiny")
    rows = spec.extras(instance, tmp_path, True)
    by_method = {row["method"]: row for row in rows}
    b = bounds(instance)
    assert by_method["speedup:sequential"]["objective"] == pytest.approx(1.0)
    assert 1.0 <= by_method["speedup:h1"]["objective"] <= by_method["speedup:bound"]["objective"]
    assert by_method["ratio:h1/milp"]["objective"] >= 1.0 - 1e-9
    assert by_method["speedup:milp"]["objective"] <= min(2, b.work / b.critical_path) + 1e-9
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_build_extras_ratios_lie_in_the_unit_interval(tmp_path):
    spec = get_model("block-build")
    for size in ("tiny", "unit-tiny"):
        rows = spec.extras(spec.generate(seed=5, size=size), tmp_path, True)
        ratios = [r["objective"] for r in rows if r["method"].startswith("ratio:")]
        assert ratios and all(0.0 <= r <= 1.0 + 1e-7 for r in ratios)
    assert list(tmp_path.glob("*h2-gantt.png"))


@pytest.mark.parametrize("name", ["block-exec", "block-build"])
def test_quick_suites_need_no_data(name):
    suite = get_model(name).suite(True, None)
    assert len(suite) >= 2 and all(item.instance.problem == name for item in suite)
    assert all(item.source == "shipped" for item in get_model(name).suite(False, None)[:3])


def test_malformed_block_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(InstanceError, match="not valid JSON"):
        import_block(bad)
    bad.write_text(json.dumps({"number": "0x1"}))
    with pytest.raises(InstanceError, match="'transactions' list"):
        import_block(bad)
    bad.write_text(json.dumps({"transactions": ["0xabc"]}))
    with pytest.raises(InstanceError, match="full transaction objects"):
        import_block(bad)
    tx = {"hash": "0x1", "from": "0xa", "gas": "zz"}
    bad.write_text(json.dumps({"transactions": [tx]}))
    with pytest.raises(InstanceError, match=r"gas is 'zz'"):
        import_block(bad)
    bad.write_text(json.dumps({"transactions": [{"hash": "0x1", "gas": "0x5208"}]}))
    with pytest.raises(InstanceError, match="no 'from'"):
        import_block(bad)


def test_fee_recipient_and_hot_keys_are_dropped(tmp_path):
    txs = [
        {
            "hash": f"0x{k}",
            "from": f"0xs{k}",
            "to": "0xpool",
            "gas": "0x5208",
            "type": "0x0",
            "gasPrice": "0x3b9aca00",
        }
        for k in range(12)
    ]
    block = {"number": "0x10", "miner": "0xfee", "baseFeePerGas": "0x0", "transactions": txs}
    path = tmp_path / "block.json"
    path.write_text(json.dumps(block))
    instance = import_block(path)
    assert instance.meta["dropped_keys"] == ["acct:0xpool"]
    assert instance.graph.num_edges == 0
    assert instance.rewards[0] == pytest.approx(21000.0)  # 1 gwei tip times 21000 gas
    assert all("acct:0xfee" not in tx.writes for tx in instance.transactions)


@pytest.mark.data
@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_real_blocks_import_solve_and_validate(data_dir, block, tmp_path):
    path = require_data_file(data_dir, f"blockchain/pevm_mainnet_{block}_block.json")
    n, transfers, edges, chain = BLOCKS[block]
    instance = import_block(path)
    assert instance.n == n
    assert instance.graph.num_edges == edges
    assert bounds(instance).chain_nodes == chain
    assert import_block(path, workload="homogeneous").n == transfers
    assert instance.meta["dropped_keys"] == []
    work, h1, sol = PINNED[block]
    assert bounds(instance).work == work
    assert heur.h1(instance).makespan(instance) == h1
    assert heur.sol_batches(instance).makespan(instance) == sol

    options = SolveOptions(time_limit=2)
    spec = get_model("block-exec")
    outcome = run_exact(spec, instance, block, "milp", "highs", options)
    assert outcome.valid is True and outcome.objective is not None
    assert outcome.objective <= heur.h1(instance).makespan(instance)
    assert outcome.bound is None or outcome.bound <= outcome.objective * (1 + 1e-6)

    build = import_block(path, problem="block-build")
    outcome = run_exact(get_model("block-build"), build, block, "milp", "highs", options)
    assert outcome.valid is True
    assert validate(build, heur.h2(build)) == []

    out = tmp_path / "eth.json"
    assert main(["import", "block-exec", str(path), "-o", str(out)]) == 0
    assert BlockInstance.from_json(out, problem="block-exec").n == n


def test_cli_generate_heuristic_and_solve(tmp_path, capsys):
    path = tmp_path / "e.json"
    assert (
        main(["generate", "block-exec", "--seed", "4", "--size", "unit-tiny", "-o", str(path)]) == 0
    )
    assert main(["heuristic", "block-exec", str(path), "h1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["valid"] is True
    assert main(["solve", "block-exec", str(path), "--time-limit", "5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["termination"] == "optimal" and payload["valid"] is True
    assert np.isclose(payload["objective"], payload["bound"])


def test_gantt_legend_names_chain_and_limit():
    instance = generate(1, "small", problem="block-build")
    figure = gantt_figure(instance, heur.h2(instance))
    axes, colour_bar = figure.axes
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels[0] == "heaviest conflict chain"
    assert labels[1].startswith("runtime limit B = ")
    assert colour_bar.get_ylabel() == "block position"


def test_gantt_legend_omits_missing_limit():
    instance = generate(1, "small")
    figure = gantt_figure(instance, heur.h1(instance))
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["heaviest conflict chain"]


@pytest.mark.data
@pytest.mark.parametrize("name", ["block-exec", "block-build"])
def test_suites_fit_run_time_budget(name, data_dir):
    """Heterogeneous instances whose plain MILP needs the whole limit stay out of the suites."""
    spec = get_model(name)
    quick = spec.suite(True, data_dir)
    default = spec.suite(False, data_dir)
    assert [item.name for item in quick if item.source == "real"] == ["eth-19923400-transfers"]
    assert [item.name for item in default if item.source == "real"] == [
        "eth-15537394",
        "eth-19923400-transfers",
        "eth-19932148-transfers",
    ]
    assert all(item.instance.unit or item.instance.n <= 8 for item in quick)
    assert not any(item.name.startswith("grid-p2") for item in default)
