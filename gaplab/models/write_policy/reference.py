"""Published reference values for the write-policy model."""

from __future__ import annotations

REFERENCE_OPTIMA: dict[tuple[str, int], tuple[float, float]] = {
    ("default", 1): (30.1, 31.3),
    ("default", 4): (91.4, 107.6),
    ("default", 10): (130.3, 151.5),
    ("redundancy", 1): (29.6, 30.2),
    ("redundancy", 4): (90.8, 97.5),
    ("redundancy", 10): (109.8, 121.7),
    ("burst_drift", 1): (35.7, 36.8),
    ("burst_drift", 4): (135.9, 136.6),
    ("burst_drift", 10): (216.5, 239.8),
}
"""Mean hindsight optimum over WritePolicyBench's ten published seed-0 episodes (unprivileged
costs), solved exactly with HiGHS: (mode, budget KiB) -> (WRITE-only optimum, MERGE-aware
optimum). The values are rounded to one decimal."""
