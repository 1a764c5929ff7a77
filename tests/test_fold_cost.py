"""The streamed reports do the same work per event however long the log is
(issue 10, point 4: time per event constant from 10k to 1M events).

Not timed: the lines of Python each fold executes, outside the engine, are counted
(``sys.settrace``) on a log of 60 customers and on one of 360, and the count per event
must not grow by more than 10%. A check that looks back over everything paid so far, on
every refund, grows with the log; it was there in ``reconcile`` (its 1M-event run took
four times the time per event of its 100k one).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import revrules
from revrules import reports, whatif
from revrules.accrual import Accrual
from revrules.generator import generate
from revrules.growth import growth_of_outcomes
from revrules.reconcile import reconcile
from revrules.taxes import Taxes

ROOT = Path(__file__).resolve().parent.parent
RULES = revrules.load(ROOT / "rulesets" / "streaming.rr")
PACKAGE = os.path.dirname(revrules.__file__)
#: what applies an event: its cost per event is the engine's, measured elsewhere
ENGINE = ("engine", "transaction", "pricing", "emission", "drafts", "events", "runtime",
          "decision", "state", "results", "compiler", "transitions")


def _fold_file(name: str) -> bool:
    if not name.startswith(PACKAGE):
        return False
    inside = os.path.relpath(name, PACKAGE).split(os.sep)[0].removesuffix(".py")
    return inside not in ENGINE


def _lines(run: Callable[[], Any]) -> int:
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if _fold_file(frame.f_code.co_filename) else None

    sys.settrace(calls)
    try:
        run()
    finally:
        sys.settrace(None)
    return count


def _views(log: list[dict[str, Any]]) -> None:
    fold = reports.Fold(RULES)
    accrual, taxes = Accrual.fold((), RULES), Taxes()
    outcomes: Iterator[Any] = fold.outcomes(log)
    while chunk := list(itertools.islice(outcomes, 256)):
        accrual = accrual.extend(e for o in chunk if o.ok for e in o.events)
        taxes = taxes.extend(chunk, RULES)


FOLDS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "replay": lambda log: reports.stream(RULES, log),
    "replay --basis accrual --tax": _views,
    "growth": lambda log: growth_of_outcomes(reports.Fold(RULES, ledger=False).outcomes(log),
                                             RULES),
    "diff": lambda log: whatif.diff(RULES, RULES, log),
    "reconcile": lambda log: reconcile(RULES, log),
}


@pytest.fixture(scope="module")
def logs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    small, large = ([dict(e) for e in generate(RULES, customers, 12, 3)]
                    for customers in (60, 360))
    assert sum(e["type"] == "refund_requested" for e in large) >= 20  # refunds to check
    return small, large


@pytest.mark.parametrize("name", list(FOLDS))
def test_work_per_event_does_not_grow_with_the_log(name: str, logs: Any) -> None:
    small, large = logs
    run = FOLDS[name]
    per_event = [_lines(lambda log=log: run(log)) / len(log) for log in (small, large)]
    assert per_event[0] > 10  # the fold's own lines were counted
    assert per_event[1] <= 1.1 * per_event[0], per_event
