"""Declarative modelling layer: index sets, variables, vectorized expressions, constraints."""

from gaplab.modeling.compiled import Block, CompiledModel
from gaplab.modeling.convex import ConvexTerm
from gaplab.modeling.expressions import Constraint, LinExpr
from gaplab.modeling.fileio import read_model
from gaplab.modeling.model import (
    DEFAULT_LOWER,
    DEFAULT_UPPER,
    ConstraintFamily,
    Model,
    Variable,
)
from gaplab.modeling.objective import ConvexExpr, exp, mm1, piecewise, power, square
from gaplab.modeling.sets import AlignmentError, IndexSet

__all__ = [
    "AlignmentError",
    "Block",
    "CompiledModel",
    "Constraint",
    "ConstraintFamily",
    "ConvexExpr",
    "ConvexTerm",
    "DEFAULT_LOWER",
    "DEFAULT_UPPER",
    "IndexSet",
    "LinExpr",
    "Model",
    "Variable",
    "exp",
    "mm1",
    "piecewise",
    "power",
    "read_model",
    "square",
]
