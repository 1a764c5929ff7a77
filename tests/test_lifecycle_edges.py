"""LANGUAGE.md §5.1 lifecycle edge cases, figure by figure: the final dunning action,
tick order, pauses, refunds of a named charge, goodwill refunds and credits."""

from __future__ import annotations

from conftest import same_but_remembered
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine
from revrules.ledger import Ledger

from conftest import EventLog

D = Decimal

RULES = """
ruleset edges version "1"
customer { country: string }
storefront web { channel web currency EUR tax exclusive psp stripe }
storefront shop { channel web currency EUR tax inclusive psp stripe }
storefront ios { channel app_store currency EUR tax inclusive psp apple }
product p { entitlements hd }
plan monthly { product p  every 1 month  price web EUR 10.00  price shop EUR 11.90
               trial 14 days  not sold in ios }
plan plain   { product p  every 1 month  price web EUR 10.00  price shop EUR 11.90
               price ios EUR 11.90
               upgrade to big immediate prorate }
plan big     { product p  every 1 month  price web EUR 20.00  price shop EUR 23.80
               not sold in ios  downgrade to plain immediate prorate }
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


class Log(EventLog):
    """Sends events to this file's engine with numbered ids and keeps the state."""

    def __init__(self) -> None:
        super().__init__(ENGINE)

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
    # across Feb 29 by `pause max`: paid through 2028-02-29, 02-20 → 04-20 is 60 days
    ("2028-01-31", [], "2028-02-20", "2028-04-20", False, "2028-04-29", "2028-05-29"),
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


def test_a_period_end_cancel_moves_with_the_days_given_back() -> None:
    log = Log()
    log.start(at="2027-01-01")
    log.send(type="cancel_requested", at="2027-01-03", subscription="s")  # at 02-01
    log.send(type="pause_requested", at="2027-01-05", subscription="s")
    out = log.send(type="resume_requested", at="2027-01-12", subscription="s")
    assert out.decisions[0].next_charge == day("2027-02-08")
    assert log.sub().cancel_at == day("2027-02-08")
    assert log.send(type="tick", at="2027-02-07").events == ()
    end = log.send(type="tick", at="2027-02-08")
    assert types(end) == ["subscription.canceled", "entitlement.revoked"]


def test_a_prorated_refund_after_a_pause_counts_the_days_given_back() -> None:
    log = Log()
    log.start(at="2027-01-01")
    log.send(type="pause_requested", at="2027-01-05", subscription="s")
    log.send(type="resume_requested", at="2027-01-15", subscription="s")  # paid to 02-11
    out = log.send(type="refund_requested", at="2027-01-21", subscription="s")
    # 21 unused (01-21 → 02-11) of 31 paid days of EUR 11.90, outside the 14-day window
    assert out.decisions[0].total == D("8.06")


# -- refunds: goodwill, a named charge, never more than was paid --------------------------


def test_a_goodwill_refund_keeps_the_subscription() -> None:
    log = Log()
    log.start()  # EUR 10.00 + 1.90 tax, charge s:1
    out = log.send(type="refund_requested", at="2027-01-20", subscription="s", amount="4.00")
    d = out.decisions[0]
    # the tax in proportion: 4.00 × 1.90 / 11.90 = 0.6386…
    assert (d.kind, d.charge, d.total, d.tax, d.net) == (
        "refund", "s:1", D("4.00"), D("0.64"), D("3.36"))
    assert d.next_charge == day("2027-02-01")
    assert types(out) == ["payment.refunded"]
    assert (out.events[0].charge, out.events[0].amount, out.events[0].tax) == (
        "s:1", D("4.00"), D("0.64"))
    assert log.sub().status == "active" and log.sub().entitlements == ("hd",)
    too_much = log.send(ok=False, type="refund_requested", at="2027-01-21", subscription="s",
                        amount="7.91")
    assert too_much.error is not None and too_much.error.code == "refund_too_large"
    assert too_much.error.message == ("refund of 7.91 EUR is more than the 7.90 EUR still "
                                      "refundable of charge 's:1'")
    zero = log.send(ok=False, type="refund_requested", at="2027-01-21", subscription="s",
                    amount="0.00")
    assert zero.error is not None and zero.error.code == "bad_field"
    rest = log.send(type="refund_requested", at="2027-01-21", subscription="s", amount="7.90")
    # the last refund gives back the rest of the tax: 1.90 − 0.64
    assert (rest.decisions[0].total, rest.decisions[0].tax) == (D("7.90"), D("1.26"))
    assert log.sub().status == "active"
    none_left = log.send(ok=False, type="refund_requested", at="2027-01-22", subscription="s")
    assert none_left.error is not None and none_left.error.code == "nothing_to_refund"
    assert log.sub().payment is not None and log.sub().payment.refunded == D("11.90")


def test_a_goodwill_refund_that_says_cancel_ends_the_subscription() -> None:
    log = Log()
    log.start()
    out = log.send(type="refund_requested", at="2027-01-20", subscription="s", amount="4.00",
                   cancel=True)
    assert types(out) == ["payment.refunded", "subscription.canceled", "entitlement.revoked"]
    assert out.decisions[0].next_charge is None and log.sub().status == "canceled"


def test_a_refund_names_the_paid_charge_it_refunds() -> None:
    log = Log()
    out = log.start()
    assert out.decisions[0].charge == "s:1"
    assert [(e.type, e.charge) for e in out.events] == [
        ("subscription.started", "s:1"), ("entitlement.granted", None)]
    renewed = log.send(type="renewal_due", at="2027-02-01", subscription="s")
    assert renewed.decisions[0].charge == "s:2"
    assert [(e.type, e.charge) for e in renewed.events] == [("subscription.renewed", "s:2")]
    open_one = log.send(ok=False, type="refund_requested", at="2027-02-01", subscription="s",
                        charge="s:2", amount="1.00")
    assert open_one.error is not None and open_one.error.code == "unknown_charge"
    assert "not paid" in open_one.error.message
    paid = log.send(type="payment_succeeded", at="2027-02-01", subscription="s")
    assert paid.decisions[0].charge == "s:2" and paid.events[0].charge == "s:2"
    # the January charge, in full, as a goodwill refund: the subscription goes on
    first = log.send(type="refund_requested", at="2027-02-03", subscription="s", charge="s:1",
                     amount="11.90")
    assert (first.decisions[0].charge, first.decisions[0].total, first.decisions[0].tax) == (
        "s:1", D("11.90"), D("1.90"))
    assert log.sub().status == "active"
    again = log.send(ok=False, type="refund_requested", at="2027-02-03", subscription="s",
                     charge="s:1", amount="0.01")
    assert again.error is not None and again.error.code == "nothing_to_refund"
    unknown = log.send(ok=False, type="refund_requested", at="2027-02-03", subscription="s",
                       charge="s:9")
    assert unknown.error is not None and unknown.error.code == "unknown_charge"
    # without charge and amount: the latest paid charge, by the lifecycle rule, and the end
    last = log.send(type="refund_requested", at="2027-02-05", subscription="s")
    assert (last.decisions[0].charge, last.decisions[0].total) == ("s:2", D("11.90"))
    assert last.decisions[0].reasons == ("refund full",)
    assert log.sub().status == "canceled"


def test_a_store_refund_still_ends_the_subscription() -> None:
    log = Log()
    log.start(storefront="ios")
    out = log.send(type="store_notification", at="2027-01-05", subscription="s",
                   notification="REFUND")
    assert types(out) == ["payment.refunded", "subscription.canceled", "entitlement.revoked"]
    assert out.events[0].charge == "s:1"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1300), min_size=1, max_size=6))
def test_refunds_of_one_charge_never_exceed_what_was_paid(cents: list[int]) -> None:
    log = Log()
    log.start(storefront="shop")  # EUR 11.90, tax inclusive: 1.90 tax
    refunded = tax = D(0)
    for i, c in enumerate(cents):
        amount = D(c) / 100
        out = ENGINE.apply(log.state, {"id": f"r{i}", "type": "refund_requested",
                                       "at": "2027-01-20", "subscription": "s",
                                       "amount": str(amount)})
        if refunded + amount > D("11.90"):
            assert out.error is not None and out.error.code in (
                "refund_too_large", "nothing_to_refund")
            assert same_but_remembered(log.state, out.state)
            continue
        assert out.ok, out.error
        log.state = out.state
        refunded += amount
        tax += out.decisions[0].tax
        assert out.decisions[0].net + out.decisions[0].tax == amount
    assert tax <= D("1.90")
    assert log.sub().payment is not None
    assert (log.sub().payment.refunded, log.sub().payment.refunded_tax) == (refunded, tax)
    if refunded == D("11.90"):
        assert tax == D("1.90")


# -- credits -----------------------------------------------------------------------------


def test_a_credit_is_used_up_by_the_next_charges() -> None:
    log = Log()
    log.start()
    out = log.send(type="credit_granted", at="2027-01-10", subscription="s", amount="25.00",
                   reason="outage")
    assert [(e.type, e.amount, e.reasons) for e in out.events] == [
        ("credit.issued", D("25.00"), ("outage",))]
    d = out.decisions[0]
    assert (d.kind, d.credit, d.total, d.reasons) == (
        "credit", D("25.00"), D("0"), ("credit balance 25.00 EUR", "outage"))
    assert log.sub().credit_balance == D("25.00")
    # February: the credit covers all of it and the zero charge settles at once
    feb = log.send(type="renewal_due", at="2027-02-01", subscription="s")
    d = feb.decisions[0]
    assert (d.list, d.credit, d.tax, d.net, d.total) == (
        D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"))
    assert d.reasons == ("credit 10.00 EUR used, 15.00 EUR left",)
    assert types(feb) == ["subscription.renewed", "payment.succeeded"]
    assert log.sub().charge is None and log.sub().credit_balance == D("15.00")
    mar = log.send(type="renewal_due", at="2027-03-01", subscription="s")
    assert mar.decisions[0].credit == D("10.00") and log.sub().credit_balance == D("5.00")
    apr = log.send(type="renewal_due", at="2027-04-01", subscription="s")
    d = apr.decisions[0]
    # 10.00 − 5.00 credit, then 19% tax on the rest
    assert (d.credit, d.tax, d.net, d.total) == (D("5.00"), D("0.95"), D("5.00"), D("5.95"))
    assert log.sub().credit_balance == D("0")
    log.send(type="payment_succeeded", at="2027-04-01", subscription="s")
    may = log.send(type="renewal_due", at="2027-05-01", subscription="s")
    assert (may.decisions[0].credit, may.decisions[0].total) == (D("0"), D("11.90"))
    assert log.sub().credit_balance == D("0")


def test_the_ledger_counts_a_credit_when_it_is_used() -> None:
    log = Log()
    outcomes = [log.send(type="checkout", at="2027-01-01", subscription="s", storefront="web",
                         plan="plain", customer={"id": "c"}),
                log.send(type="payment_succeeded", at="2027-01-01", subscription="s")]
    outcomes.append(log.send(type="credit_granted", at="2027-01-10", subscription="s",
                             amount="4.00"))
    outcomes.append(log.send(type="renewal_due", at="2027-02-01", subscription="s"))
    outcomes.append(log.send(type="payment_succeeded", at="2027-02-03", subscription="s"))
    ledger = Ledger.from_outcomes(outcomes, ENGINE.rules)
    months = {month: f for (_, month), f in ledger.by_month().items()}
    # the grant itself counts nothing; the credit counts in the month of the charge's payment
    assert (months["2027-01"].gross, months["2027-01"].credits) == (D("10.00"), D("0"))
    feb = months["2027-02"]
    assert (feb.gross, feb.credits, feb.net, feb.tax) == (
        D("10.00"), D("4.00"), D("6.00"), D("1.14"))
    # cash and net stay aligned: what was paid is net plus tax
    assert feb.net + feb.tax == D("7.14") == outcomes[4].events[0].amount


def test_a_prorated_change_uses_the_balance_after_its_own_credit() -> None:
    log = Log()
    log.start()
    log.send(type="credit_granted", at="2027-01-02", subscription="s", amount="3.00")
    out = log.send(type="plan_change_requested", at="2027-01-17", subscription="s",
                   plan="big")
    d = out.decisions[0]
    # 15 unused of 31 days: 4.84 back on 10.00 against 9.68 for big; the balance pays
    # 3.00 of the 4.84 left, and 19% tax on the 1.84 that remains
    assert (d.list, d.credit, d.net, d.tax, d.total) == (
        D("9.68"), D("7.84"), D("1.84"), D("0.35"), D("2.19"))
    assert d.reasons == ("15 unused of 31 days", "credit 3.00 EUR used, 0.00 EUR left")
    assert log.sub().credit_balance == D("0")


def test_a_prorated_change_leaves_its_unused_credit_on_the_balance() -> None:
    log = Log()
    log.start(plan="big")
    out = log.send(type="plan_change_requested", at="2027-01-17", subscription="s",
                   plan="plain")
    d = out.decisions[0]
    # 9.68 back on 20.00 against 4.84 for plain: 4.84 is left as credit, and kept
    assert (d.kind, d.list, d.credit, d.total) == ("credit", D("4.84"), D("4.84"), D("0.00"))
    assert "4.84 EUR left as credit" in d.reasons
    assert log.sub().credit_balance == D("4.84")
    feb = log.send(type="renewal_due", at="2027-02-01", subscription="s")
    d = feb.decisions[0]
    assert (d.list, d.credit, d.tax, d.total) == (D("10.00"), D("4.84"), D("0.98"), D("6.14"))
    assert log.sub().credit_balance == D("0")


@pytest.mark.parametrize(("amount", "code"), [("0", "bad_field"), ("0.001", "bad_field")])
def test_a_credit_needs_a_positive_amount_in_minor_units(amount: str, code: str) -> None:
    log = Log()
    log.start()
    out = log.send(ok=False, type="credit_granted", at="2027-01-02", subscription="s",
                   amount=amount)
    assert out.error is not None and out.error.code == code
    assert out.state is log.state


def test_no_credit_for_a_canceled_or_store_billed_subscription() -> None:
    log = Log()
    log.start(storefront="ios")
    out = log.send(ok=False, type="credit_granted", at="2027-01-02", subscription="s",
                   amount="1.00")
    assert out.error is not None and out.error.code == "store_managed"
    log2 = Log()
    log2.start()
    log2.send(type="refund_requested", at="2027-01-02", subscription="s")
    out = log2.send(ok=False, type="credit_granted", at="2027-01-03", subscription="s",
                    amount="1.00")
    assert out.error is not None and out.error.code == "already_canceled"


def test_reconcile_books_a_refund_on_the_charge_it_names() -> None:
    from revrules.reconcile import Settlement, reconcile

    log = [
        {"id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s",
         "storefront": "web", "plan": "plain", "customer": {"id": "c"}},
        {"id": "e2", "type": "payment_succeeded", "at": "2027-01-01", "subscription": "s",
         "psp": "stripe", "reference": "pi_1"},
        {"id": "e3", "type": "renewal_due", "at": "2027-02-01", "subscription": "s"},
        {"id": "e4", "type": "payment_succeeded", "at": "2027-02-01", "subscription": "s",
         "psp": "stripe", "reference": "pi_2"},
        {"id": "e5", "type": "refund_requested", "at": "2027-02-03", "subscription": "s",
         "charge": "s:1", "amount": "11.90"},
        {"id": "e6", "type": "refund_requested", "at": "2027-02-04", "subscription": "s",
         "charge": "s:1", "amount": "1.00"},
    ]
    rows = [Settlement("stripe", "pi_1", day("2027-01-02"), D("11.90"), "EUR"),
            Settlement("stripe", "pi_2", day("2027-02-02"), D("11.90"), "EUR"),
            Settlement("stripe", "pi_1", day("2027-02-04"), D("-11.90"), "EUR")]
    result = reconcile(ENGINE.rules, log, rows)
    # the refund of charge s:1 settles against pi_1; the second one asks for more than is
    # left of s:1, although s:2 is still paid in full
    assert [(g.kind, g.event, g.expected, g.actual) for g in result.gaps] == [
        ("refund_above_paid", "e6", D("0.00"), D("1.00"))]
