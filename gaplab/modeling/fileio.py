"""Reading and writing MPS and CPLEX LP files through HiGHS."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gaplab.modeling.compiled import Block, CompiledModel, blocks_from_names, replace_atomically

logger = logging.getLogger(__name__)

SUFFIXES = (".mps", ".lp")


class ModelFileError(ValueError):
    """A model file is missing, unreadable or not valid MPS or LP."""


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFileError(
            f"{str(path)!r} is not a model file: expected a name ending in .mps or .lp"
        )
    return suffix


def write_model(model: CompiledModel, path: Path) -> Path:
    """Write ``model`` to ``path`` as MPS or LP, through a temporary file and a rename."""
    import highspy

    from gaplab.solvers._highs_util import new_highs

    suffix = _check_suffix(path)
    if model.convex:
        raise ValueError(
            f"model {model.name!r} has convex terms, which MPS and LP files cannot hold; "
            "solve it with a backend instead"
        )
    lp = highspy.HighsLp()
    lp.num_col_ = model.num_cols
    lp.num_row_ = model.num_rows
    lp.col_cost_ = model.objective
    lp.col_lower_ = model.col_lower
    lp.col_upper_ = model.col_upper
    lp.row_lower_ = model.row_lower
    lp.row_upper_ = model.row_upper
    lp.offset_ = model.offset
    lp.sense_ = highspy.ObjSense.kMaximize if model.sense == "max" else highspy.ObjSense.kMinimize
    csc = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = model.num_cols
    lp.a_matrix_.num_row_ = model.num_rows
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    if model.is_mip:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
            for flag in model.integrality
        ]
    lp.col_names_ = _names(model.variables, model.num_cols)
    lp.row_names_ = _names(model.constraints, model.num_rows)
    lp.model_name_ = model.name

    solver = new_highs()
    status = solver.passModel(lp)
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected model {model.name!r} while writing {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        status = solver.writeModel(tmp)
        if status == highspy.HighsStatus.kError:
            raise OSError(f"HiGHS failed to write {str(path)!r}")
        replace_atomically(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    logger.info("wrote %s to %s", model, path)
    return path


def _names(blocks: tuple[Block, ...], size: int) -> list[str]:
    names = [""] * size
    for block in blocks:
        if block.scalar:
            names[block.start] = f"{block.name}[]"
            continue
        for position in range(block.size):
            names[block.start + position] = f"{block.name}[{position}]"
    return names


def read_model(path: str | os.PathLike[str]) -> CompiledModel:
    """Read an MPS or LP file into a :class:`CompiledModel`.

    Files that gaplab wrote get their variable blocks and constraint families back by name.
    Other files get one block ``x`` labelled by column name and one family ``c`` labelled by
    row name.
    """
    import highspy

    from gaplab.solvers._highs_util import new_highs

    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    solver = new_highs()
    status = solver.readModel(str(path))
    if status != highspy.HighsStatus.kOk:
        raise ModelFileError(
            f"HiGHS could not read {str(path)!r} as {path.suffix[1:].upper()} "
            f"(status {status.name}); check that the file is a valid model file"
        )
    lp = solver.getLp()
    num_col, num_row = lp.num_col_, lp.num_row_
    matrix = lp.a_matrix_
    start = np.asarray(matrix.start_, dtype=np.int64)
    index = np.asarray(matrix.index_, dtype=np.int64)
    value = np.asarray(matrix.value_, dtype=float)
    if matrix.format_ == highspy.MatrixFormat.kRowwise:
        A = sp.csr_matrix((value, index, start), shape=(num_row, num_col))
    else:
        A = sp.csc_matrix((value, index, start), shape=(num_row, num_col)).tocsr()
    A.sum_duplicates()
    integrality = np.zeros(num_col, dtype=np.int8)
    if len(lp.integrality_):
        integrality = np.array(
            [int(v == highspy.HighsVarType.kInteger) for v in lp.integrality_], dtype=np.int8
        )
    col_lower = np.asarray(lp.col_lower_, dtype=float)
    col_upper = np.asarray(lp.col_upper_, dtype=float)
    kinds = [
        ("binary" if col_lower[j] == 0 and col_upper[j] == 1 else "integer")
        if integrality[j]
        else "continuous"
        for j in range(num_col)
    ]
    col_names = list(lp.col_names_) or [f"x{j}" for j in range(num_col)]
    row_names = list(lp.row_names_) or [f"c{i}" for i in range(num_row)]
    variables = _name_blocks(blocks_from_names(col_names, kinds), "x", uniform_kind=False)
    constraints = _name_blocks(blocks_from_names(row_names), "c", uniform_kind=True)
    sense = "max" if lp.sense_ == highspy.ObjSense.kMaximize else "min"
    return CompiledModel(
        name=lp.model_name_ or path.stem,
        sense=sense,
        A=A,
        row_lower=np.asarray(lp.row_lower_, dtype=float),
        row_upper=np.asarray(lp.row_upper_, dtype=float),
        col_lower=col_lower,
        col_upper=col_upper,
        integrality=integrality,
        objective=np.asarray(lp.col_cost_, dtype=float),
        offset=float(lp.offset_),
        variables=variables,
        constraints=constraints,
    )


def _name_blocks(blocks: tuple[Block, ...], default: str, uniform_kind: bool) -> tuple[Block, ...]:
    """Name anonymous runs and give each gaplab block the kind of its first column."""
    out = []
    anonymous = 0
    for block in blocks:
        name = block.name
        if not name:
            name = default if anonymous == 0 else f"{default}{anonymous}"
            anonymous += 1
        kind = "linear" if uniform_kind else block.kind
        out.append(Block(name, block.start, block.stop, block.labels, kind, block.scalar))
    return tuple(out)
