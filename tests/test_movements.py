"""MRR movements (revrules.movements): exact figures on the bundled log, and the identity
opening + movements = closing = the ledger's MRR, per month and per breakdown row, over
bundled and generated logs."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, Ledger
from revrules.generator import generate
from revrules.movements import movements
from revrules.testing import event_sequences, rulesets

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")
D = Decimal


def bundled_ledger() -> Ledger:
    with open(ROOT / "examples" / "events.jsonl", encoding="utf-8") as log:
        events = [json.loads(line) for line in log if line.strip()]
    _, outcomes = Engine(STREAMING).run(events)
    return Ledger.from_outcomes(outcomes, STREAMING)


def test_bundled_log_movements() -> None:
    rows = {(c, m): (mv.opening, mv.new, mv.churned, mv.closing)
            for c, _, m, mv in movements(bundled_ledger()).rows()}
    assert rows == {
        ("EUR", "2026-11"): (D("0.00"), D("10.92"), D("0"), D("10.92")),
        ("EUR", "2026-12"): (D("10.92"), D("19.17"), D("0"), D("30.09")),
        ("EUR", "2027-01"): (D("30.09"), D("0"), D("10.92"), D("19.17")),
        ("USD", "2026-12"): (D("0"), D("26.98"), D("0"), D("26.98")),
        ("USD", "2027-01"): (D("26.98"), D("0"), D("0"), D("26.98")),
    }
    plans = {(c, k, m): mv.closing for c, k, m, mv in movements(bundled_ledger()).rows("plan")}
    assert plans[("EUR", "business_annual", "2026-12")] == D("8.25")  # 99.00 / 12


def check(ledger: Ledger) -> int:
    result = movements(ledger)
    mrr = ledger.by_month()
    opening: dict[str, Decimal] = {}
    for currency, _, month, mv in result.rows():
        assert mv.ties_out, (currency, month, mv)
        assert mv.closing == mrr[(currency, month)].mrr, (currency, month)
        assert mv.opening == opening.get(currency, D(0)), (currency, month)
        assert mv.moved_in == mv.moved_out == 0
        opening[currency] = mv.closing
    for by in ("plan", "storefront", "channel"):
        totals: dict[tuple[str, str], Decimal] = {}
        for currency, _, month, mv in result.rows(by):
            assert mv.ties_out, (by, currency, month, mv)
            totals[(currency, month)] = totals.get((currency, month), D(0)) + mv.closing
        for (currency, month), closing in totals.items():
            assert closing == mrr[(currency, month)].mrr, (by, currency, month)
    return len(result.rows())


def test_bundled_log_ties_out() -> None:
    assert check(bundled_ledger()) == 5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_logs_tie_out_month_by_month(seed: int) -> None:
    _, outcomes = Engine(STREAMING).run(generate(STREAMING, customers=40, months=12, seed=seed))
    ledger = Ledger.from_outcomes(outcomes, STREAMING)
    assert check(ledger) > 20
    result = movements(ledger)
    kinds = {f for _, _, _, mv in result.rows() for f in ("expansion", "contraction",
                                                          "churned", "reactivated")
             if getattr(mv, f)}
    assert {"expansion", "churned"} <= kinds


def test_movements_of_a_merged_ledger_are_those_of_the_whole() -> None:
    _, outcomes = Engine(STREAMING).run(generate(STREAMING, customers=20, months=8, seed=4))
    events = [e for o in outcomes for e in o.events]
    subs = sorted({e.subscription for e in events})
    half = set(subs[::2])
    a = Ledger.fold([e for e in events if e.subscription in half], STREAMING)
    b = Ledger.fold([e for e in events if e.subscription not in half], STREAMING)
    assert movements(a + b) == movements(Ledger.fold(events, STREAMING))


def test_the_ledger_gives_its_movements() -> None:
    ledger = bundled_ledger()
    assert ledger.movements() == movements(ledger)


@settings(max_examples=int(os.environ.get("REVRULES_EXAMPLES", "15")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_logs_tie_out(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(max_depth=2), label="ruleset"), "gen.rr")
    log = data.draw(event_sequences(rules, max_size=10), label="events")
    _, outcomes = Engine(rules).run(log)
    check(Ledger.from_outcomes(outcomes, rules))
