"""Promotion selection and limits on a small ruleset written for the purpose."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import revrules
from revrules import Engine, State

RULES = """
ruleset promos version "1"
customer { country: string  vip: bool = false }
storefront web { channel web currency EUR tax exclusive psp stripe }
product p { entitlements e }
plan monthly { product p  every 1 month  price web EUR 20.00 }
plan yearly  { product p  every 1 year   price web EUR 200.00 }

promotion half_vip { automatic    percent 50 off once  plans monthly  if customer.vip }
promotion also50   { automatic    percent 50 off once  plans monthly  if customer.vip }
promotion tenner   { code "TEN"   amount EUR 10.00 off once  limit 2 total }
promotion quarter  { code "Q25"   percent 25 off for 2 cycles  limit 1 per customer }
promotion stack    { automatic    amount EUR 1.00 off forever  plans yearly  stackable }
promotion yearly10 { automatic    percent 10 off once  plans yearly }
route { stripe otherwise }
"""
ENGINE = Engine(revrules.load_text(RULES, "promos.rr"))


class Log:
    def __init__(self) -> None:
        self.state = State()
        self.n = 0

    def send(self, **event: Any) -> revrules.Outcome:
        self.n += 1
        outcome = ENGINE.apply(self.state, {"id": f"e{self.n}", **event})
        assert outcome.ok, outcome.error
        self.state = outcome.state
        return outcome

    def checkout(self, sub: str, customer: str, code: str | None = None, plan: str = "monthly",
                 vip: bool = False, at: str = "2027-01-01") -> revrules.Outcome:
        extra = {"code": code} if code else {}
        return self.send(type="checkout", at=at, subscription=sub, storefront="web", plan=plan,
                         customer={"id": customer, "vip": vip}, **extra)


def discounts(outcome: revrules.Outcome) -> list[tuple[str, Decimal]]:
    return [(d.rule, d.amount) for d in outcome.decisions[0].discounts]


def types(outcome: revrules.Outcome) -> list[str]:
    return [e.type for e in outcome.events]


def test_total_limit_and_exhaustion_event_once() -> None:
    log = Log()
    first = log.checkout("s1", "c1", "TEN")
    assert discounts(first) == [("tenner", Decimal("10.00"))]
    assert "promo.exhausted" not in types(first)
    second = log.checkout("s2", "c2", "ten")  # codes match case-insensitively
    assert types(second).count("promo.exhausted") == 1
    third = log.checkout("s3", "c3", "TEN")
    assert discounts(third) == [] and "promo.exhausted" not in types(third)
    assert "tenner is exhausted (2 redemptions)" in third.decisions[0].reasons
    assert third.decisions[0].total == Decimal("20.00")


def test_per_customer_limit_and_cycles() -> None:
    log = Log()
    out = log.checkout("s1", "c1", "Q25")
    assert discounts(out) == [("quarter", Decimal("5.00"))]
    log.send(type="payment_succeeded", at="2027-01-01", subscription="s1")
    out = log.send(type="renewal_due", at="2027-02-01", subscription="s1")
    assert discounts(out) == [("quarter", Decimal("5.00"))]  # cycle 2 of 2
    log.send(type="payment_succeeded", at="2027-02-01", subscription="s1")
    out = log.send(type="renewal_due", at="2027-03-01", subscription="s1")
    assert discounts(out) == []
    again = log.checkout("s2", "c1", "Q25")
    assert discounts(again) == [] and "quarter already redeemed by c1" in again.decisions[0].reasons


def test_best_discount_wins_ties_go_to_source_order_and_outbid_code_is_not_consumed() -> None:
    log = Log()
    out = log.checkout("s1", "c1", "TEN", vip=True)
    # half_vip, also50 and the code all give 10.00: half_vip comes first in the file
    assert discounts(out) == [("half_vip", Decimal("10.00"))]
    assert "tenner outbid by half_vip" in out.decisions[0].reasons
    assert "campaign.applied" in types(out)
    assert log.state.redemptions.get("tenner") is None  # the outbid code consumed nothing
    assert log.state.redemptions["half_vip"] == 1


def test_stackable_applies_on_top_and_once_lasts_one_cycle() -> None:
    log = Log()
    out = log.checkout("s1", "c1", plan="yearly")
    assert discounts(out) == [("stack", Decimal("1.00")), ("yearly10", Decimal("20.00"))]
    assert out.decisions[0].total == Decimal("179.00")
    log.send(type="payment_succeeded", at="2027-01-01", subscription="s1")
    out = log.send(type="renewal_due", at="2028-01-01", subscription="s1")
    assert discounts(out) == [("stack", Decimal("1.00"))]


def test_unknown_code_is_a_reason_not_an_error() -> None:
    out = Log().checkout("s1", "c1", "TENN")
    assert out.decisions[0].reasons == ('unknown promotion code "TENN" (did you mean \'TEN\'?)',)
    assert out.decisions[0].total == Decimal("20.00")
