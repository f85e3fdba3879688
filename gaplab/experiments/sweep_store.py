"""Result storage of a sweep: one Parquet file per finished task, named by the task id.

Each file is written under a temporary name that starts with a dot and then renamed. Readers that
skip hidden files, as pyarrow datasets and ``pandas.read_parquet`` do by default, therefore see a
valid dataset at any moment, and a task never has more than one file. A task whose file exists
is finished, whether it succeeded or failed, and a rerun skips it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gaplab.experiments.sweep_task import ROW_COLUMNS
from gaplab.modeling.compiled import replace_atomically

logger = logging.getLogger(__name__)

SUFFIX = ".parquet"
_ARROW_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
SCHEMA = pa.schema([pa.field(name, _ARROW_TYPES[kind]) for name, kind in ROW_COLUMNS.items()])
"""Arrow schema of every result file, so that the files of a folder form one dataset."""


class ResultStore:
    """A folder of per-task Parquet files.

    Parameters
    ----------
    folder
        Output folder; created on the first write, not before.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(
                f"sweep output {str(self.folder)!r} exists and is not a folder; pass a folder path"
            )

    def finished_ids(self) -> set[str]:
        """Ids of the tasks that have a result file."""
        if not self.folder.is_dir():
            return set()
        return {
            entry.name[: -len(SUFFIX)]
            for entry in os.scandir(self.folder)
            if entry.name.endswith(SUFFIX) and not entry.name.startswith((".", "_"))
        }

    def write(self, row: dict[str, Any]) -> Path:
        """Write one row as ``<task_id>.parquet`` through a temporary file and a rename."""
        unknown = set(row) - set(SCHEMA.names)
        if unknown:
            raise ValueError(f"row has columns outside the sweep schema: {sorted(unknown)}")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{row['task_id']}{SUFFIX}"
        table = pa.Table.from_pylist([row], schema=SCHEMA)

        fd, temporary = tempfile.mkstemp(
            prefix=f".{row['task_id']}.", suffix=".tmp", dir=self.folder
        )
        os.close(fd)
        try:
            pq.write_table(table, temporary)
            replace_atomically(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    def read_rows(self, task_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Read the rows of ``task_ids`` as dicts; ids without a file are skipped."""
        return _read_table(self.folder, task_ids).to_pylist()


def read_results(
    folder: str | os.PathLike[str], task_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """Read the result files of a sweep folder into one DataFrame with the sweep's columns.

    Parameters
    ----------
    folder
        A folder written by a sweep.
    task_ids
        Read only these tasks; ids without a file are skipped.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sweep results folder {str(folder)!r} not found")
    return _read_table(folder, task_ids).to_pandas()


def rows_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn result rows into a DataFrame with the same column types as :func:`read_results`."""
    return pa.Table.from_pylist(rows, schema=SCHEMA).to_pandas()


def _read_table(folder: Path, task_ids: Iterable[str] | None) -> pa.Table:
    if task_ids is None:
        paths = sorted(p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith((".", "_")))
    else:
        paths = [folder / f"{i}{SUFFIX}" for i in task_ids]
        paths = [p for p in paths if p.is_file()]
    if not paths:
        return SCHEMA.empty_table()
    return ds.dataset([str(p) for p in paths], schema=SCHEMA, format="parquet").to_table()
