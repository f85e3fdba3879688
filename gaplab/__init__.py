"""gaplab: optimization models for systems research, with heuristics measured against optima."""

from gaplab.modeling import Model, read_model
from gaplab.solvers import Result, SolveOptions, solve

__version__ = "0.1.0"

__all__ = ["Model", "Result", "SolveOptions", "read_model", "solve", "__version__"]
