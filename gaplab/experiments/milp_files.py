"""Standard MPS instances and their published optimal objective values."""

from __future__ import annotations

from pathlib import Path

KNOWN_OPTIMA: dict[str, float] = {
    "afiro": -464.7531429,
    "adlittle": 225494.9632,
    "small_mip": 3.236842105,
    "flugpl": 1201500.0,
    "egout": 568.1007,
    "lseu": 1120.0,
    "gt2": 21166.0,
    "rgn": 82.2,
    "bell5": 8966406.49,
    "p0548": 8691.0,
    "sp150x300d": 69.0,
    "enigma": 0.0,
}
"""Optima of the Netlib and MIPLIB 3 files in the shared ``milp/`` folder, as published with
those test sets (MIPLIB 3.0, Bixby et al. 1998; Netlib LP) and as listed in HiGHS' own test
list. The values have 7 to 10 significant digits, so compare with a relative tolerance of
about 1e-6."""


def milp_files(data_dir: Path) -> list[Path]:
    """The MPS files under ``data_dir/milp``, sorted by name; empty when the folder is absent."""
    folder = Path(data_dir) / "milp"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.mps"))
