"""Ratios against the exact reference in compare and run."""

from __future__ import annotations

import pytest

from gaplab.experiments.compare import add_ratios


def row(method, kind, objective, status="optimal", valid=True):
    return {
        "method": method,
        "kind": kind,
        "objective": objective,
        "status": status,
        "valid": valid,
    }


def test_ratio_uses_default_variant():
    rows = [
        row("exact:bundled", "exact", 100.0),
        row("exact:separate", "exact", 110.0),
        row("greedy", "heuristic", 90.0, status="heuristic"),
    ]
    add_ratios(rows, "max", preferred="exact:bundled")
    assert rows[2]["ratio"] == pytest.approx(0.9)
    assert rows[1]["ratio"] == pytest.approx(1.1)
    assert rows[2]["reference"] == "optimal"


def test_ratio_falls_back_to_best_valid_exact():
    rows = [
        row("exact:milp", "exact", None, status="time_limit", valid=None),
        row("exact:plain", "exact", 12.0, status="time_limit"),
        row("exact:other", "exact", 10.0, status="time_limit"),
        row("rule", "heuristic", 15.0, status="heuristic"),
        row("broken", "exact", 1.0, valid=False),
    ]
    add_ratios(rows, "min", preferred="exact:milp")
    assert rows[3]["ratio"] == pytest.approx(1.5)
    assert rows[3]["reference"] == "incumbent"


def test_ratio_with_zero_reference():
    rows = [row("exact:milp", "exact", 0.0), row("rule", "heuristic", 0.0, status="heuristic")]
    add_ratios(rows, "min")
    assert rows[1]["ratio"] == 1.0
