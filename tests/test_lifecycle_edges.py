"""LANGUAGE.md §5.1 lifecycle edge cases, figure by figure: the final dunning action,
tick order, pauses, refunds of a named charge, goodwill refunds and credits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import revrules
from revrules import Engine, State

D = Decimal

RULES = """
ruleset edges version "1"
customer { country: string }
storefront web { channel web currency EUR tax exclusive psp stripe }
storefront shop { channel web currency EUR tax inclusive psp stripe }
product p { entitlements hd }
plan monthly { product p  every 1 month  price web EUR 10.00  price shop EUR 11.90
               trial 14 days }
plan plain   { product p  every 1 month  price web EUR 10.00  price shop EUR 11.90
               upgrade to big immediate prorate }
plan big     { product p  every 1 month  price web EUR 20.00  price shop EUR 23.80 }
tax vat { rate 19% }
dunning standard {
  retry after 1 day, 3 days, 7 days
  grace 7 days keep entitlements
  then cancel
}
lifecycle {
  pause max 2 months
  cancel at period_end
  refund full within 14 days, prorated after
}
"""
ENGINE = Engine(revrules.load_text(RULES, "edges.rr"))


class Log:
    """Sends events with numbered ids and keeps the state."""

    def __init__(self) -> None:
        self.state = State()
        self.n = 0

    def send(self, ok: bool = True, **event: Any) -> revrules.Outcome:
        self.n += 1
        outcome = ENGINE.apply(self.state, {"id": f"e{self.n}", **event})
        assert outcome.ok is ok, outcome.error
        self.state = outcome.state
        return outcome

    def start(self, sub: str = "s", at: str = "2027-01-01", plan: str = "plain",
              storefront: str = "web") -> revrules.Outcome:
        out = self.send(type="checkout", at=at, subscription=sub, storefront=storefront,
                        plan=plan, customer={"id": "c-" + sub})
        if self.state.subscriptions[sub].charge is not None:
            self.send(type="payment_succeeded", at=at, subscription=sub)
        return out

    def sub(self, sub: str = "s") -> revrules.Subscription:
        return self.state.subscriptions[sub]


def types(outcome: revrules.Outcome) -> list[str]:
    return [e.type for e in outcome.events]


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# -- the final dunning action never pre-empts a retry --------------------------------------


def failed_renewal(log: Log) -> None:
    log.start()
    log.send(type="renewal_due", at="2027-02-01", subscription="s")
    out = log.send(type="payment_failed", at="2027-02-01", subscription="s")
    # retries on 02-02, 02-04 and 02-08; grace ends 02-08
    assert out.decisions[0].retry_at == day("2027-02-02")
    assert out.decisions[0].grace_ends == day("2027-02-08")


def test_the_last_retry_can_be_paid_on_its_day() -> None:
    log = Log()
    failed_renewal(log)
    for when in ("2027-02-02", "2027-02-04"):
        log.send(type="tick", at=when)
        log.send(type="payment_failed", at=when, subscription="s")
    last = log.send(type="tick", at="2027-02-08")
    # the last retry is asked for; the `then` action waits for 02-09
    assert [(d.kind, d.retry_at) for d in last.decisions] == [("charge", day("2027-02-08"))]
    assert last.decisions[0].total == D("11.90")
    assert "subscription.canceled" not in types(last)
    assert log.sub().status == "past_due"
    paid = log.send(type="payment_succeeded", at="2027-02-08T18:00:00Z", subscription="s")
    assert types(paid) == ["payment.succeeded"]
    assert paid.events[0].amount == D("11.90")
    assert log.sub().status == "active" and log.sub().dunning is None
    assert log.send(type="tick", at="2027-02-09").events == ()
    assert log.sub().status == "active"


def test_the_then_action_is_due_the_day_after_the_last_retry() -> None:
    log = Log()
    failed_renewal(log)
    for when in ("2027-02-02", "2027-02-04", "2027-02-08"):
        log.send(type="tick", at=when)
    assert log.sub().status == "past_due"
    end = log.send(type="tick", at="2027-02-09")
    assert types(end) == ["subscription.canceled", "entitlement.revoked"]
    assert end.events[0].at == dt.datetime(2027, 2, 9, tzinfo=dt.UTC)
    assert log.sub().status == "canceled"


def test_a_failed_last_retry_after_the_grace_end_runs_the_then_action_at_once() -> None:
    log = Log()
    failed_renewal(log)
    for when in ("2027-02-02", "2027-02-04", "2027-02-08"):
        log.send(type="tick", at=when)
    out = log.send(type="payment_failed", at="2027-02-08T12:00:00Z", subscription="s")
    assert types(out) == ["payment.failed", "subscription.canceled", "entitlement.revoked"]
    assert log.sub().status == "canceled"
    assert log.state.due.get("s") is None


def test_a_failed_retry_before_the_grace_end_waits_for_it() -> None:
    log = Log()
    log.start()
    log.send(type="renewal_due", at="2027-02-01", subscription="s")
    log.send(type="payment_failed", at="2027-02-01", subscription="s")
    log.send(type="tick", at="2027-02-02")
    out = log.send(type="payment_failed", at="2027-02-02", subscription="s")
    assert types(out) == ["payment.failed"]
    assert log.sub().status == "past_due"


# -- tick order ------------------------------------------------------------------------------


def test_one_tick_settles_by_due_date_then_subscription_id() -> None:
    log = Log()
    log.start("c", "2026-11-01")
    log.send(type="pause_requested", at="2026-11-15", subscription="c")  # resumes 01-15
    log.start("d", "2026-12-09")
    log.start("b", "2026-12-15")
    log.start("a", "2027-01-01", plan="monthly")  # the trial ends 01-15
    log.send(type="cancel_requested", at="2027-01-02", subscription="b")  # at 01-15
    log.send(type="renewal_due", at="2027-01-09", subscription="d")
    log.send(type="payment_failed", at="2027-01-09", subscription="d")  # retries 10, 12, 16
    out = log.send(type="tick", at="2027-01-20")
    assert [(d.subscription, d.kind, d.retry_at) for d in out.decisions] == [
        ("d", "charge", day("2027-01-10")),
        ("d", "charge", day("2027-01-12")),
        ("a", "charge", None),  # the first charge after the trial
        ("b", "none", None),  # canceled at period end
        ("c", "none", None),  # the pause ran out
        ("d", "charge", day("2027-01-16")),
        ("d", "none", None),  # the then action, the day after the last retry
    ]
    assert [(e.id, e.subscription, e.type) for e in out.events] == [
        ("e12.1", "a", "trial.expired"),
        ("e12.2", "a", "subscription.renewed"),
        ("e12.3", "b", "subscription.canceled"),
        ("e12.4", "b", "entitlement.revoked"),
        ("e12.5", "c", "subscription.resumed"),
        ("e12.6", "c", "entitlement.granted"),
        ("e12.7", "d", "subscription.canceled"),
        ("e12.8", "d", "entitlement.revoked"),
    ]


def test_items_of_one_subscription_on_one_date_keep_their_kind_order() -> None:
    log = Log()
    log.start("a", "2027-01-01", plan="monthly")
    log.send(type="cancel_requested", at="2027-01-02", subscription="a")  # the trial end
    out = log.send(type="tick", at="2027-01-15")
    # the period-end cancel comes before the trial's first charge: nothing is charged
    assert types(out) == ["subscription.canceled", "entitlement.revoked"]
    assert [d.kind for d in out.decisions] == ["none"]


# -- a pause keeps the paid-up days -----------------------------------------------------------


@pytest.mark.parametrize(("start", "renewals", "pause", "resume", "by_request", "next_charge",
                          "after"), [
    # the case: paid through 03-01, paused 02-15, resumed by `pause max` on 04-15
    ("2027-01-01", ["2027-02-01"], "2027-02-15", "2027-04-15", False, "2027-04-29",
     "2027-05-29"),
    # inside one month, by request: 7 days
    ("2027-01-01", [], "2027-01-05", "2027-01-12", True, "2027-02-08", "2027-03-08"),
    # across months of different lengths, a month-end anchor: paid through 03-31, 31 days
    ("2027-01-31", ["2027-02-28"], "2027-03-20", "2027-04-20", True, "2027-05-01",
     "2027-06-01"),
    # across Feb 29: paid through 2028-02-15, 29 days
    ("2028-01-15", [], "2028-02-10", "2028-03-10", True, "2028-03-15", "2028-04-15"),
    # across Feb 29 by `pause max`: paid through 2028-03-31, 02-20 → 04-20 is 60 days
    ("2028-01-31", ["2028-02-29"], "2028-02-20", "2028-04-20", False, "2028-05-30",
     "2028-06-30"),
    # the same day: nothing moves
    ("2027-01-31", [], "2027-02-10", "2027-02-10", True, "2027-02-28", "2027-03-28"),
])
def test_resume_gives_back_exactly_the_days_paused(start: str, renewals: list[str], pause: str,
                                                   resume: str, by_request: bool,
                                                   next_charge: str, after: str) -> None:
    log = Log()
    log.start(at=start)
    for when in renewals:
        log.send(type="renewal_due", at=when, subscription="s")
        log.send(type="payment_succeeded", at=when, subscription="s")
    log.send(type="pause_requested", at=pause, subscription="s")
    if by_request:
        out = log.send(type="resume_requested", at=resume, subscription="s")
    else:
        assert log.send(type="tick", at=str(day(resume) - dt.timedelta(days=1))).events == ()
        out = log.send(type="tick", at=resume)
    assert types(out) == ["subscription.resumed", "entitlement.granted"]
    assert out.events[0].date == day(next_charge)
    assert out.decisions[0].next_charge == day(next_charge)
    assert log.sub().anchor == day(next_charge) and log.sub().status == "active"
    renewed = log.send(type="renewal_due", at=next_charge, subscription="s")
    assert renewed.decisions[0].next_charge == day(after)
    assert log.sub().charge is not None
    assert (log.sub().charge.period_start, log.sub().charge.period_end) == (
        day(next_charge), day(after))


def test_a_prorated_refund_after_a_pause_counts_the_days_given_back() -> None:
    log = Log()
    log.start(at="2027-01-01")
    log.send(type="pause_requested", at="2027-01-05", subscription="s")
    log.send(type="resume_requested", at="2027-01-15", subscription="s")  # paid to 02-11
    out = log.send(type="refund_requested", at="2027-01-21", subscription="s")
    # 21 unused (01-21 → 02-11) of 31 paid days of EUR 11.90, outside the 14-day window
    assert out.decisions[0].total == D("8.06")
