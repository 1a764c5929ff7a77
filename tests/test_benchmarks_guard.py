"""The benchmark guard: the quick benchmarks, as ratios to the hand-written baseline of
the same run, against the committed table (benchmarks/baseline.json). It fails only
when a ratio grows more than three times its committed value; it never looks at an
absolute time."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
assert _spec is not None and _spec.loader is not None
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)

#: a loaded machine slows one run more than another: each attempt reruns the quick
#: benchmarks, and a case counts with the best ratio it reached
ATTEMPTS = 3


def committed() -> dict[str, float]:
    table: dict[str, float] = json.loads(run_all.BASELINE_FILE.read_text("utf-8"))["ratios"]
    return table


def test_the_committed_table_holds_ratios_of_the_quick_cases() -> None:
    table = committed()
    assert {"quote", "apply checkout", "apply renewal", "eval 3,000 events", "load 0.02×",
            "load 0.05×"} <= set(table)
    assert all(isinstance(v, float) and 0 < v < math.inf for v in table.values())


def test_regressions_are_ratios_more_than_three_times_the_committed_ones() -> None:
    table = {"quote": 10.0, "load 1×": 1000.0}
    assert run_all.regressions({"quote": 30.0, "load 1×": 2999.0}, table) == []
    assert run_all.regressions({"quote": 30.1, "load 1×": 400.0, "new": 9e9}, table) == [
        "quote: 30.1× baseline, committed 10× (limit 30×)"]


def test_quick_benchmarks_stay_within_three_times_the_committed_ratios() -> None:
    table = committed()
    best: dict[str, float] = {}
    for _ in range(ATTEMPTS):
        for case, ratio in run_all.ratios(run_all.run(quick=True)).items():
            best[case] = min(best.get(case, math.inf), ratio)
        found = run_all.regressions(best, table)
        if not found:
            return
    pytest.fail("slower than the committed ratios allow:\n" + "\n".join(found))
