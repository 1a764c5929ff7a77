"""Ruleset settings: the rounding mode and the timezone that dates are read in."""

from __future__ import annotations

from decimal import Decimal

import revrules
from revrules import Engine, State

BASE = """
ruleset settings version "1"
{settings}
storefront web {{ channel web currency EUR tax exclusive psp stripe }}
product p {{ entitlements e }}
plan m {{ product p  every 1 month  price web EUR 0.05 }}
promotion half {{ code "HALF" percent 50 off once valid 2026-11-01 to 2026-11-30 }}
"""


def checkout(settings: str, at: str) -> revrules.Decision:
    engine = Engine(revrules.load_text(BASE.format(settings=settings), "settings.rr"))
    outcome = engine.apply(State(), {
        "id": "e1", "type": "checkout", "at": at, "subscription": "s", "storefront": "web",
        "plan": "m", "customer": {"id": "c"}, "code": "HALF"})
    assert outcome.ok, outcome.error
    return outcome.decisions[0]


def test_half_even_is_the_default() -> None:
    decision = checkout("", "2026-11-15")
    assert [d.amount for d in decision.discounts] == [Decimal("0.02")]  # 0.025 → 0.02
    assert decision.total == Decimal("0.03")


def test_rounding_half_up() -> None:
    decision = checkout("rounding half_up", "2026-11-15")
    assert [d.amount for d in decision.discounts] == [Decimal("0.03")]  # 0.025 → 0.03
    assert decision.total == Decimal("0.02")


def test_dates_are_read_in_the_ruleset_timezone() -> None:
    late = "2026-11-30T23:30:00Z"  # still 30 November in UTC, 1 December in Berlin
    assert checkout("", late).discounts
    berlin = checkout('timezone "Europe/Berlin"', late)
    assert not berlin.discounts
    assert "half not valid on 2026-12-01" in berlin.reasons
    assert berlin.next_charge is not None and berlin.next_charge.isoformat() == "2027-01-01"
