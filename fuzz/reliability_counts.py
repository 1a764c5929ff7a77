"""Run the reliability tests and print the counts that docs/reliability.md records.

    python fuzz/reliability_counts.py                 # the CI sizes
    REVRULES_FUZZ_EXAMPLES=2000 REVRULES_STATE_MUTATIONS=2000 REVRULES_EXAMPLES=1000 \\
        REVRULES_KILLS=200 python fuzz/reliability_counts.py   # a bigger run

It runs pytest in this process on the test files below, with counters on the library's
entry points: rule texts parsed, rulesets that checked and compiled, events applied
(and how many of them ended in ``internal_error``: only the fault-injection test may
cause any), state files decoded. It adds what the tests print (faults injected, kills
survived, the state machine's tally) and the outcome of the differential test
(disagreements: failures of tests/test_differential.py). Extra arguments go to pytest.
Processes the tests start (the CLI in a child) are not counted, except the kills.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))

FILES = ["test_codegen_safety.py", "test_fuzz.py", "test_fuzz_engine.py", "test_event_edges.py",
         "test_guards.py", "test_limits.py", "test_context.py", "test_exactly_once.py",
         "test_state_files.py", "test_psps.py", "test_scale.py", "test_io.py", "test_kill.py",
         "test_differential.py", "test_state_machine.py", "test_ledger_identities.py"]
PRINTED = re.compile(r"^(faults injected: .*|kills survived: .*|state machine: .*)$", re.M)


class Counts:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.printed: list[str] = []
        self.failed: list[str] = []
        self.current = ""
        self.seen: set[tuple[str, str]] = set()
        self.internal: Counter[str] = Counter()  # test → internal_error outcomes

    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> None:
        self.current = item.nodeid

    def pytest_sessionstart(self, session: Any) -> None:
        import revrules
        from revrules import compiler, parser, ruleset, wire

        counts, owner = self.counts, self
        parse_tree, compile_model = parser._parse_tree, compiler.compile_model
        apply, state_from_json = revrules.Engine.apply, wire.state_from_json

        def parse_tree_(text: str, file: str, start: str) -> Any:
            counts["rule texts parsed" if start == "start" else "expressions parsed"] += 1
            return parse_tree(text, file, start)

        def compile_model_(model: Any) -> Any:
            counts["rulesets checked and compiled"] += 1
            return compile_model(model)

        def apply_(self: Any, state: Any, event: Any) -> Any:
            outcome = apply(self, state, event)
            counts["events applied"] += 1
            if outcome.error is not None and outcome.error.code == "internal_error":
                counts["internal_error outcomes"] += 1
                owner.internal[owner.current.split("[")[0]] += 1
            return outcome

        def state_from_json_(text: str, *args: Any, **kwargs: Any) -> Any:
            counts["state files decoded"] += 1
            return state_from_json(text, *args, **kwargs)

        for owner_, name, counted in ((parser, "_parse_tree", parse_tree_),
                                      (ruleset, "compile_model", compile_model_),
                                      (revrules.Engine, "apply", apply_),
                                      (wire, "state_from_json", state_from_json_)):
            setattr(owner_, name, counted)

    def pytest_runtest_logreport(self, report: Any) -> None:
        for line in PRINTED.findall(report.capstdout):  # a teardown repeats the call's
            if (report.nodeid, line) not in self.seen:
                self.seen.add((report.nodeid, line))
                self.printed.append(line)
        if report.failed:
            self.failed.append(report.nodeid)
        if report.when == "call" and report.passed and "test_differential" in report.nodeid:
            self.counts["differential tests passed"] += 1


def main() -> int:
    counts = Counts()
    started = time.process_time()
    status = pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:],
                          *(str(ROOT / "tests" / f) for f in FILES)], plugins=[counts])
    print()
    print("sizes:", ", ".join(f"{k}={os.environ.get(k, '(default)')}" for k in (
        "REVRULES_FUZZ_EXAMPLES", "REVRULES_STATE_MUTATIONS", "REVRULES_EXAMPLES",
        "REVRULES_KILLS")))
    for key, value in sorted(counts.counts.items()):
        print(f"{key}: {value}")
    for line in counts.printed:
        print(line)
    for test, n in sorted(counts.internal.items()):
        print(f"internal_error outcomes in {test}: {n}")
    disagreements = sum("test_differential" in n for n in counts.failed)
    print(f"disagreements found: {disagreements}")
    print(f"failed tests: {len(counts.failed)}")
    print(f"cpu seconds: {time.process_time() - started:.0f} (this process)")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
