"""Lifecycle paths the normative scenarios do not reach, on a small ruleset."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import revrules
from revrules import Engine

from conftest import EventLog

RULES = """
ruleset life version "1"
customer { country: string }
storefront web { channel web currency EUR tax exclusive psp stripe }
product a { entitlements x }
product b { entitlements x, y }
plan weekly  { product a  every 2 weeks  price web EUR 3.00
               upgrade to monthly immediate
               upgrade to yearly immediate prorate
               downgrade to cheap at period_end }
plan yearly  { product b  every 1 year   price web EUR 100.00 }
plan monthly { product b  every 1 month  price web EUR 10.00 }
plan cheap   { product a  every 1 month  price web EUR 1.00 }
dunning strict { retry after 2 days  grace 5 days revoke entitlements  then pause }
lifecycle {
  pause max 1 month
  cancel immediate
  refund prorated
}
"""
ENGINE = Engine(revrules.load_text(RULES, "life.rr"))


class Log(EventLog):
    """Sends events to this file's engine with numbered ids and keeps the state."""

    def __init__(self) -> None:
        super().__init__(ENGINE)

    def start(self, plan: str = "weekly", at: str = "2027-01-01") -> revrules.Outcome:
        out = self.send(type="checkout", at=at, subscription="s", storefront="web", plan=plan,
                        customer={"id": "c"})
        self.send(type="payment_succeeded", at=at, subscription="s")
        return out

    @property
    def sub(self) -> revrules.Subscription:
        return self.state.subscriptions["s"]


def types(outcome: revrules.Outcome) -> list[str]:
    return [e.type for e in outcome.events]


def test_periods_of_two_weeks() -> None:
    log = Log()
    assert log.start().decisions[0].next_charge == dt.date(2027, 1, 15)
    out = log.send(type="renewal_due", at="2027-01-15", subscription="s")
    assert out.decisions[0].next_charge == dt.date(2027, 1, 29)
    bad = log.send(ok=False, type="renewal_due", at="2027-01-28", subscription="s")
    assert bad.error is not None and bad.error.code == "past_due"


def test_renewal_on_the_wrong_date_is_refused() -> None:
    log = Log()
    log.start()
    bad = log.send(ok=False, type="renewal_due", at="2027-01-14", subscription="s")
    assert bad.error is not None and bad.error.code == "not_due"
    assert "renews on 2027-01-15, not 2027-01-14" in bad.error.message


def test_pause_and_resume_move_the_anchor_by_the_paused_days() -> None:
    log = Log()
    log.start()
    out = log.send(type="pause_requested", at="2027-01-05", subscription="s")
    assert types(out) == ["subscription.paused", "entitlement.revoked"]
    assert log.sub.status == "paused" and log.sub.entitlements == ()
    out = log.send(type="resume_requested", at="2027-01-12", subscription="s")
    assert types(out) == ["subscription.resumed", "entitlement.granted"]
    assert log.sub.anchor == dt.date(2027, 1, 22)  # paid through 01-15, plus seven paused days
    assert out.decisions[0].next_charge == dt.date(2027, 1, 22)


def test_a_pause_ends_by_itself_after_max() -> None:
    log = Log()
    log.start()
    log.send(type="pause_requested", at="2027-01-05", subscription="s")
    assert log.send(type="tick", at="2027-02-04").events == ()
    out = log.send(type="tick", at="2027-02-05")
    assert types(out) == ["subscription.resumed", "entitlement.granted"]
    assert log.sub.status == "active"


def test_cancel_immediate_policy() -> None:
    log = Log()
    log.start()
    out = log.send(type="cancel_requested", at="2027-01-03", subscription="s")
    assert types(out) == ["subscription.canceled", "entitlement.revoked"]
    again = log.send(ok=False, type="cancel_requested", at="2027-01-04", subscription="s")
    assert again.error is not None and again.error.code == "already_canceled"


def test_refund_prorated_from_the_first_day() -> None:
    log = Log()
    log.start()
    out = log.send(type="refund_requested", at="2027-01-08", subscription="s")
    # 7 unused of 14 days of EUR 3.00
    assert out.decisions[0].kind == "refund" and out.decisions[0].total == Decimal("1.50")
    nothing = log.send(ok=False, type="refund_requested", at="2027-01-09", subscription="s",
                       amount="2.00")
    assert nothing.error is not None and nothing.error.code == "refund_too_large"


def test_dunning_revokes_then_pauses_and_payment_restores() -> None:
    log = Log()
    log.start()
    log.send(type="renewal_due", at="2027-01-15", subscription="s")
    out = log.send(type="payment_failed", at="2027-01-15", subscription="s")
    assert "entitlement.revoked" in types(out) and log.sub.status == "past_due"
    assert out.decisions[0].retry_at == dt.date(2027, 1, 17)
    assert out.decisions[0].grace_ends == dt.date(2027, 1, 20)
    retry = log.send(type="tick", at="2027-01-17")
    assert retry.decisions[0].kind == "charge" and retry.decisions[0].total == Decimal("3.00")
    log.send(type="payment_failed", at="2027-01-17", subscription="s")
    out = log.send(type="tick", at="2027-01-20")
    assert types(out) == ["subscription.paused"] and log.sub.status == "paused"
    out = log.send(type="payment_succeeded", at="2027-01-25", subscription="s")
    assert types(out) == ["payment.succeeded", "entitlement.granted"]
    assert log.sub.status == "active" and log.sub.entitlements == ("x",)


def test_immediate_change_without_proration_and_disallowed_change() -> None:
    log = Log()
    log.start()
    out = log.send(type="plan_change_requested", at="2027-01-05", subscription="s",
                   plan="monthly")
    assert types(out) == ["subscription.upgraded", "entitlement.granted"]
    assert out.events[0].plan == "monthly" and out.events[1].entitlements == ("y",)
    assert log.sub.charge is None and log.sub.price == Decimal("10.00")
    # the monthly cadence starts where the paid two weeks end
    assert out.decisions[0].next_charge == dt.date(2027, 1, 15)
    log.send(type="renewal_due", at="2027-01-15", subscription="s")
    assert log.sub.charge is not None and log.sub.charge.period_end == dt.date(2027, 2, 15)
    denied = log.send(type="plan_change_requested", at="2027-01-16", subscription="s",
                      plan="cheap")
    assert denied.decisions[0].kind == "deny"
    assert denied.decisions[0].reasons == ("plan monthly does not allow a change to cheap",)


@pytest.mark.parametrize("kind", ["consent_given", "consent_declined"])
def test_consent_without_a_pending_change_is_an_error(kind: str) -> None:
    log = Log()
    log.start()
    out = log.send(ok=False, type=kind, at="2027-01-02", subscription="s")
    assert out.error is not None and out.error.code == "no_consent_pending"


def test_period_end_downgrade_waits_for_the_renewal() -> None:
    log = Log()
    log.start()
    out = log.send(type="plan_change_requested", at="2027-01-05", subscription="s",
                   plan="cheap")
    assert out.decisions[0].kind == "none" and out.events == ()
    out = log.send(type="renewal_due", at="2027-01-15", subscription="s")
    assert types(out)[0] == "subscription.downgraded"
    assert out.decisions[0].total == Decimal("1.00")
    assert out.decisions[0].next_charge == dt.date(2027, 2, 15)  # monthly from the change
    assert log.sub.plan == "cheap"


def test_prorated_change_to_another_cadence_starts_a_full_new_period() -> None:
    log = Log()
    log.start()
    out = log.send(type="plan_change_requested", at="2027-01-08", subscription="s",
                   plan="yearly")
    decision = out.decisions[0]
    # 7 unused of 14 days of EUR 3.00 come back against a full year
    assert (decision.list, decision.credit, decision.total) == (
        Decimal("100.00"), Decimal("1.50"), Decimal("98.50"))
    assert decision.next_charge == dt.date(2028, 1, 8)
    assert "new billing period from 2027-01-08" in decision.reasons
