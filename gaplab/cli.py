"""The ``gaplab`` command line. Errors go to standard error with a non-zero exit status."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """An error to report on standard error without a traceback."""


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not (value > 0) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"time limit must be a positive number of seconds, got {text!r}"
        )
    return value


def _gap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid gap: {text!r}") from None
    if not (value >= 0) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"relative gap must be zero or positive, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed: {text!r}; expected an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be zero or positive, got {value}")
    return value


def _output_file(path: Path) -> Path:
    """Check before any work that ``path`` can be written as a file."""
    if path.is_dir():
        raise CommandError(f"output {str(path)!r} is a folder; give a file name")
    if not path.parent.is_dir():
        raise CommandError(
            f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    return path


def _output_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise CommandError(f"output folder {str(path)!r} exists and is not a folder")
    return path


def _backend(name: str) -> Any:
    """The backend called ``name``, checked to be known and installed."""
    from gaplab.solvers import UnknownBackendError, get_backend

    try:
        backend = get_backend(name)
    except UnknownBackendError as error:
        raise CommandError(str(error)) from None
    availability = backend.check_available()
    if not availability.available:
        raise CommandError(
            f"backend {name!r} is not available here: {availability.detail}. "
            "Run `gaplab backends` to see what is installed"
        )
    return backend


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaplab",
        description="Optimization models for systems research, with heuristics measured "
        "against proven optima.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser("models", help="list models, exact variants and heuristics")
    backends = commands.add_parser("backends", help="list backends, solvers and availability")
    backends.add_argument("--json", action="store_true", help="print one JSON list")

    generate = commands.add_parser("generate", help="write a generated instance as JSON")
    generate.add_argument("model")
    generate.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    generate.add_argument("--size", default=None, help="instance size; see `gaplab models`")
    generate.add_argument("-o", "--output", required=True, type=Path, help="JSON file to write")

    importer = commands.add_parser("import", help="turn a real data file into an instance")
    importer.add_argument("model")
    importer.add_argument("source", type=Path)
    importer.add_argument("-o", "--output", required=True, type=Path, help="JSON file to write")

    solve = commands.add_parser("solve", help="solve an instance with an exact model")
    solve.add_argument("model")
    solve.add_argument("instance", type=Path)
    _solver_arguments(solve)
    solve.add_argument("--variant", default=None, help="exact variant (default: the model's)")
    solve.add_argument("--json", action="store_true", help="print one JSON object")

    solve_file = commands.add_parser("solve-file", help="solve an MPS or LP file")
    solve_file.add_argument("file", type=Path)
    _solver_arguments(solve_file)
    solve_file.add_argument("--json", action="store_true", help="print one JSON object")

    heuristic = commands.add_parser("heuristic", help="run one heuristic on an instance")
    heuristic.add_argument("model")
    heuristic.add_argument("instance", type=Path)
    heuristic.add_argument("name")
    heuristic.add_argument("--json", action="store_true", help="print one JSON object")

    compare = commands.add_parser("compare", help="exact methods against every heuristic")
    compare.add_argument("model")
    compare.add_argument("instances", type=Path, nargs="+")
    _solver_arguments(compare)
    compare.add_argument("--out", type=Path, default=None, help="CSV file for the table")
    compare.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")

    run = commands.add_parser("run", help="every model's default suite, validated, with a report")
    run.add_argument("--quick", action="store_true", help="small suites, for a run under a minute")
    run.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder laid out like the shared data sets (default: $GAPLAB_DATA if set)",
    )
    run.add_argument(
        "--time-limit", type=_positive_seconds, default=None, help="seconds per exact solve"
    )
    run.add_argument("--models", default=None, help="comma-separated subset of models")

    sweep = commands.add_parser(
        "sweep", help="run a grid of solves locally or on Dask", add_help=False
    )
    sweep.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _solver_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="highs", help="backend, e.g. highs or pulp:cbc")
    parser.add_argument(
        "--time-limit",
        type=_positive_seconds,
        default=None,
        help="wall-clock limit in seconds for each solver call (model building not counted)",
    )
    parser.add_argument("--mip-gap", type=_gap, default=None, help="relative MIP gap to stop at")
    parser.add_argument("--threads", type=int, default=1, help="solver threads (default 1)")


def _options(args: argparse.Namespace) -> Any:
    from gaplab.solvers import SolveOptions

    try:
        return SolveOptions(
            time_limit=args.time_limit,
            mip_rel_gap=args.mip_gap,
            threads=args.threads,
            verbose=bool(getattr(args, "verbose", False)),
        )
    except ValueError as error:
        raise CommandError(str(error)) from None


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# ---------------------------------------------------------------------- commands


def cmd_models(args: argparse.Namespace) -> int:
    from gaplab.models import import_errors
    from gaplab.models.registry import registered

    models = registered()
    for package, error in import_errors.items():
        print(
            f"gaplab models: model package {package!r} failed to import: {error}", file=sys.stderr
        )
    if not models:
        print("no models are installed")
        return 0
    for spec in models.values():
        print(f"{spec.name}: {spec.summary}")
        print(f"  objective: {spec.sense} {spec.objective_name}")
        print(f"  exact:     {', '.join(spec.exact)}")
        print(f"  heuristics: {', '.join(spec.heuristics)}")
        if spec.importers:
            print(f"  importers: {', '.join(spec.importers)}")
        print(f"  sizes:     {', '.join(spec.sizes)}")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from gaplab.solvers import backend_table

    rows = backend_table()
    if args.json:
        _print_json(rows)
        return 0
    width = max(len(r["backend"]) for r in rows)
    print(f"{'backend':<{width}}  {'status':<11}  {'capabilities':<22}  version or how to install")
    for row in rows:
        status = "available" if row["available"] else "missing"
        caps = ",".join(row["capabilities"])
        print(f"{row['backend']:<{width}}  {status:<11}  {caps:<22}  {row['detail']}")
    return 0


def _spec(name: str) -> Any:
    from gaplab.models.registry import get_model

    try:
        return get_model(name)
    except KeyError as error:
        raise CommandError(error.args[0]) from None


def _load_instance(spec: Any, path: Path) -> Any:
    if path.is_dir():
        raise CommandError(f"instance {str(path)!r} is a folder; give a JSON instance file")
    if not path.is_file():
        raise CommandError(f"instance file {str(path)!r} does not exist")
    try:
        return spec.load(path)
    except (ValueError, KeyError, TypeError) as error:
        raise CommandError(
            f"invalid {spec.name} instance {str(path)!r}: {_message(error)}"
        ) from None


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def cmd_generate(args: argparse.Namespace) -> int:
    spec = _spec(args.model)
    _output_file(args.output)
    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.size is not None:
        if args.size not in spec.sizes:
            raise CommandError(
                f"unknown size {args.size!r} for {spec.name}; "
                f"expected one of {', '.join(spec.sizes)}"
            )
        kwargs["size"] = args.size
    instance = spec.generate(**kwargs)
    spec.dump(instance, args.output)
    print(f"wrote {spec.name} instance to {args.output}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    spec = _spec(args.model)
    _output_file(args.output)
    if not args.source.exists():
        raise CommandError(f"source file {str(args.source)!r} does not exist")
    try:
        importer = spec.pick_importer(args.source)
        instance = importer(args.source)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise CommandError(f"cannot import {str(args.source)!r}: {_message(error)}") from None
    spec.dump(instance, args.output)
    print(f"wrote {spec.name} instance to {args.output}", file=sys.stderr)
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from gaplab.models.registry import run_exact
    from gaplab.solvers import Termination, UnsupportedModelError

    spec = _spec(args.model)
    options = _options(args)
    _backend(args.backend)
    instance = _load_instance(spec, args.instance)
    variant = args.variant or spec.exact_default
    try:
        outcome = run_exact(spec, instance, args.instance.stem, variant, args.backend, options)
    except (UnsupportedModelError, KeyError) as error:
        raise CommandError(_message(error)) from None
    result = outcome.result
    payload = {
        "model": spec.name,
        "instance": str(args.instance),
        "variant": variant,
        "backend": result.backend if result else args.backend,
        "termination": result.termination.value if result else None,
        "solution_status": result.solution_status.value if result else None,
        "objective": outcome.objective,
        "bound": outcome.bound,
        "gap": result.gap if result else None,
        "raw_status": result.raw_status if result else None,
        "build_seconds": result.build_seconds if result else None,
        "solve_seconds": result.solve_seconds if result else outcome.seconds,
        "valid": outcome.valid,
        "violations": outcome.violations[:10],
    }
    if args.json:
        _print_json(payload)
    else:
        print(result)
        verdict = {True: "valid", False: "INVALID", None: "no solution to validate"}[outcome.valid]
        print(f"{spec.objective_name}: {_fmt(outcome.objective)}  ({verdict})")
        for violation in outcome.violations[:10]:
            print(f"  violation: {violation}")
    if result is not None and result.termination == Termination.ERROR:
        print(f"gaplab solve: error: the solver failed: {result.message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0 if outcome.valid is not False else EXIT_FAILURE


def cmd_solve_file(args: argparse.Namespace) -> int:
    from gaplab.modeling import read_model
    from gaplab.modeling.fileio import ModelFileError
    from gaplab.solvers import SolutionStatus, Termination, UnsupportedModelError

    options = _options(args)
    backend = _backend(args.backend)
    try:
        model = read_model(args.file)
        result = backend.solve(model, options)
    except (ModelFileError, UnsupportedModelError) as error:
        raise CommandError(str(error)) from None
    valid = None if result.x is None else result.solution_status == SolutionStatus.FEASIBLE_POINT
    if args.json:
        payload = {"instance": str(args.file), **result.to_dict(), "valid": valid}
        payload["model"] = model.name
        _print_json(payload)
    else:
        print(result)
    if result.termination == Termination.ERROR:
        print(f"gaplab solve-file: error: the solver failed: {result.message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def cmd_heuristic(args: argparse.Namespace) -> int:
    from gaplab.models.registry import run_heuristic

    spec = _spec(args.model)
    if args.name not in spec.heuristics:
        raise CommandError(
            f"model {spec.name!r} has no heuristic {args.name!r}; "
            f"known: {', '.join(spec.heuristics)}"
        )
    instance = _load_instance(spec, args.instance)
    outcome = run_heuristic(spec, instance, args.instance.stem, args.name)
    payload = {
        "model": spec.name,
        "instance": str(args.instance),
        "heuristic": args.name,
        "objective": outcome.objective,
        "seconds": outcome.seconds,
        "valid": outcome.valid,
        "violations": outcome.violations[:10],
    }
    if args.json:
        _print_json(payload)
    else:
        verdict = {True: "valid", False: "INVALID", None: "no solution"}[outcome.valid]
        print(
            f"{spec.name} {args.name}: {spec.objective_name} {_fmt(outcome.objective)} "
            f"in {outcome.seconds:.4f} s ({verdict})"
        )
        for violation in outcome.violations[:10]:
            print(f"  violation: {violation}")
    return 0 if outcome.valid is not False else EXIT_FAILURE


def cmd_compare(args: argparse.Namespace) -> int:
    from gaplab.experiments.compare import compare_instances, format_table

    spec = _spec(args.model)
    options = _options(args)
    _backend(args.backend)
    if args.out is not None:
        _output_file(args.out)
    if args.plots is not None:
        _output_folder(args.plots)
        args.plots.mkdir(parents=True, exist_ok=True)
    named = [(path.stem, _load_instance(spec, path)) for path in args.instances]
    rows = compare_instances(spec, named, args.backend, options, plots_dir=args.plots)
    print(format_table([r for r in rows if r.get("kind") != "extra"]))
    if args.plots is not None:
        from gaplab.experiments.report import plot_ratios

        plot_ratios(rows, spec.name, args.plots / f"{spec.name}-ratios.png")
    if args.out is not None:
        from gaplab.experiments.report import write_csv

        write_csv(rows, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    invalid_exact = [r for r in rows if r["kind"] == "exact" and r["valid"] is False]
    return EXIT_FAILURE if invalid_exact else 0


def cmd_run(args: argparse.Namespace) -> int:
    from gaplab.experiments.run import run_all

    data_dir = args.data_dir
    if data_dir is None and os.environ.get("GAPLAB_DATA"):
        data_dir = Path(os.environ["GAPLAB_DATA"])
    if data_dir is not None and not data_dir.is_dir():
        raise CommandError(
            f"data folder {str(data_dir)!r} does not exist; pass --data-dir with a folder laid "
            "out like the shared data sets, or leave it out to use only the built-in suites"
        )
    from gaplab.experiments.compare import format_table
    from gaplab.experiments.report import format_summary, summarize

    models = args.models.split(",") if args.models else None
    _output_folder(args.out)
    bar = ProgressBar()
    try:
        summary = run_all(
            args.out,
            quick=args.quick,
            data_dir=data_dir,
            time_limit=args.time_limit,
            models=models,
            progress=bar.update,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    finally:
        bar.close()
    print(format_table([r for r in summary.rows if r.get("kind") != "extra"]))
    print()
    print(format_summary(summarize(summary.rows)))
    print()
    print(
        f"{len(summary.models)} models, {len(summary.rows)} rows in {summary.seconds:.1f} s; "
        f"invalid answers: {summary.invalid_exact} exact, {summary.invalid_heuristic} heuristic; "
        f"errors: {summary.errors}"
    )
    for path in summary.files:
        print(f"wrote {path}")
    return 0 if summary.ok else EXIT_FAILURE


class ProgressBar:
    """A one-line progress bar on standard error, redrawn in place on a terminal."""

    def __init__(self, width: int = 28) -> None:
        self.width = width
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last = ""

    def update(self, done: int, total: int, message: str) -> None:
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        line = f"[{bar}] {done}/{total} {elapsed:6.1f}s {message}"[:110]
        if self.tty:
            sys.stderr.write("\r" + line.ljust(len(self.last)))
        elif message.split(" ")[:2] != self.last.split("] ")[-1].split(" ")[1:3]:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.last = line

    def close(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        from gaplab.experiments.sweep import main as sweep_main
    except ImportError as error:
        raise CommandError(f"sweeps are not available: {error}") from None
    try:
        return int(sweep_main(list(args.rest)))
    except BrokenPipeError:
        # The reader of our output (for example `head`) went away; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


COMMANDS = {
    "models": cmd_models,
    "backends": cmd_backends,
    "generate": cmd_generate,
    "import": cmd_import,
    "solve": cmd_solve,
    "solve-file": cmd_solve_file,
    "heuristic": cmd_heuristic,
    "compare": cmd_compare,
    "run": cmd_run,
    "sweep": cmd_sweep,
}


def _absorb_highs_banner() -> None:
    """Create the process's first HiGHS object silently.

    HiGHS prints its banner on standard output once per process, from whichever library
    creates the first solver object (PuLP and cvxpy included), which would break ``--json``.
    """
    try:
        from gaplab.solvers._highs_util import new_highs

        new_highs()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sweep"]:
        # The sweep command parses its own arguments, --help included.
        args = argparse.Namespace(command="sweep", rest=arguments[1:], verbose=False)
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        _absorb_highs_banner()
        try:
            return cmd_sweep(args)
        except CommandError as error:
            print(f"gaplab sweep: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _absorb_highs_banner()
    try:
        return COMMANDS[args.command](args)
    except CommandError as error:
        print(f"gaplab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # files the user named: missing, unreadable, not writable
        print(f"gaplab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"gaplab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
