"""The normative scenarios S1–S19 of streaming.scenarios.md, figure by figure.

Each figure the spec states is asserted exactly. Conventions of the engine used here:
renewals are explicit ``renewal_due`` events on the exact next charge date; a trial's
first charge is a ``renewal_due`` at the trial end (or a ``tick`` past it); a payment
event settles the open charge; dunning retries, grace ends and period-end cancels come
due through ``tick``.
"""

from __future__ import annotations

from conftest import same_but_remembered
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import revrules
from revrules import Outcome, RevenueEvent

RULES = revrules.load(Path(__file__).parent.parent / "rulesets" / "streaming.rr")

D = Decimal
ZERO2 = D("0.00")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# -- helpers -----------------------------------------------------------------------------


class Run:
    """Feeds events to one engine, numbering ids and keeping the state."""

    def __init__(self) -> None:
        self.engine = revrules.Engine(RULES)
        self.state = revrules.State()
        self.count = 0
        self.sent: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any], ok: bool = True) -> Outcome:
        if "id" not in event:
            self.count += 1
            event = {"id": f"e{self.count}", **event}
        self.sent.append(event)
        outcome = self.engine.apply(self.state, event)
        if ok:
            assert outcome.ok, f"{event} failed: {outcome.error}"
        else:
            assert not outcome.ok, f"{event} unexpectedly applied"
        self.state = outcome.state
        return outcome

    def checkout(self, sub: str, at: str, storefront: str, plan: str, customer_id: str,
                 attrs: dict[str, Any], code: str | None = None, ok: bool = True) -> Outcome:
        event: dict[str, Any] = {"type": "checkout", "at": at, "subscription": sub,
                                 "storefront": storefront, "plan": plan,
                                 "customer": {"id": customer_id, **attrs}}
        if code is not None:
            event["code"] = code
        return self.send(event, ok)

    def pay(self, sub: str, at: str) -> Outcome:
        return self.send({"type": "payment_succeeded", "at": at, "subscription": sub})

    def fail(self, sub: str, at: str, reason: str | None = None) -> Outcome:
        event = {"type": "payment_failed", "at": at, "subscription": sub}
        if reason is not None:
            event["reason"] = reason
        return self.send(event)

    def renew(self, sub: str, at: str) -> Outcome:
        return self.send({"type": "renewal_due", "at": at, "subscription": sub})

    def tick(self, at: str) -> Outcome:
        return self.send({"type": "tick", "at": at})

    def request(self, kind: str, sub: str, at: str, **fields: Any) -> Outcome:
        return self.send({"type": kind, "at": at, "subscription": sub, **fields})

    def sub(self, sub_id: str) -> revrules.Subscription:
        found = self.state.subscription(sub_id)
        assert found is not None
        return found


def types(outcome: Outcome) -> list[str]:
    return [e.type for e in outcome.events]


def assert_events_in_order(outcome: Outcome, expected: list[str]) -> None:
    """``expected`` appears in the outcome's events as a subsequence (others may be between)."""
    actual = types(outcome)
    it = iter(actual)
    missing = [t for t in expected if t not in it]
    assert not missing, f"expected {expected} in order within {actual}; missing {missing}"


def event(outcome: Outcome, kind: str) -> RevenueEvent:
    found = [e for e in outcome.events if e.type == kind]
    assert found, f"no {kind} in {types(outcome)}"
    return found[0]


def events(outcome: Outcome, kind: str) -> list[RevenueEvent]:
    return [e for e in outcome.events if e.type == kind]


def only_decision(outcome: Outcome) -> revrules.Decision:
    assert len(outcome.decisions) == 1, outcome.decisions
    return outcome.decisions[0]


def charge_decision(outcome: Outcome, sub: str) -> revrules.Decision:
    found = [d for d in outcome.decisions if d.subscription == sub and d.kind == "charge"]
    assert len(found) == 1, outcome.decisions
    return found[0]


def reasons_text(outcome: Outcome) -> str:
    parts = [r for d in outcome.decisions for r in d.reasons]
    parts += [r for e in outcome.events for r in e.reasons]
    return " | ".join(parts)


def discount_total(decision: revrules.Decision) -> Decimal:
    return sum((d.amount for d in decision.discounts), Decimal(0))


DE_USED = {"country": "DE", "trials_used": 1}
US_USED = {"country": "US", "trials_used": 1}
PREMIUM = ("hd", "downloads", "family")


# -- S1 ----------------------------------------------------------------------------------


def test_s1_web_inclusive_vat_trial_blocked() -> None:
    run = Run()
    out = run.checkout("s1", "2026-11-15", "web_eu", "premium_monthly", "c1", DE_USED)
    d = only_decision(out)
    assert d.kind == "charge"
    assert d.currency == "EUR"
    assert d.list == D("12.99")
    assert d.discounts == ()
    assert d.tax == D("2.07")
    assert d.net == D("10.92")
    assert d.total == D("12.99")
    assert d.psp == "stripe"
    assert d.trial_days == 0
    assert d.next_charge == day("2026-12-15")

    assert_events_in_order(out, ["trial.blocked", "subscription.started", "entitlement.granted"])
    blocked = event(out, "trial.blocked")
    assert any("trial already used" in r for r in blocked.reasons)
    assert "trial already used" in reasons_text(out)
    assert set(event(out, "entitlement.granted").entitlements) == set(PREMIUM)
    assert "trial.granted" not in types(out)

    paid = run.pay("s1", "2026-11-15")
    ps = event(paid, "payment.succeeded")
    assert ps.currency == "EUR"
    assert ps.amount == D("12.99")


# -- S2 ----------------------------------------------------------------------------------


def s2_checkout(run: Run) -> Outcome:
    return run.checkout("s2", "2026-11-28T12:00:00Z", "web_us", "premium_monthly", "c2",
                        {"country": "US", "trials_used": 0}, code="BF2026")


def test_s2_trial_with_black_friday_code_checkout() -> None:
    run = Run()
    out = s2_checkout(run)
    d = only_decision(out)
    assert d.kind == "charge"
    assert d.trial_days == 14
    assert d.currency == "USD"
    assert d.total == ZERO2
    assert d.next_charge == day("2026-12-12")
    assert_events_in_order(out, ["trial.granted", "campaign.applied", "subscription.started",
                                 "entitlement.granted"])
    assert event(out, "campaign.applied").rule == "black_friday"
    assert run.sub("s2").status == "trialing"


def test_s2_discounted_cycles_then_full_price() -> None:
    run = Run()
    s2_checkout(run)
    first = run.renew("s2", "2026-12-12")
    d = charge_decision(first, "s2")
    assert d.currency == "USD"
    assert d.list == D("13.99")
    assert [(x.rule, x.amount) for x in d.discounts] == [("black_friday", D("7.00"))]
    assert d.tax == ZERO2
    assert d.total == D("6.99")
    assert d.psp == "stripe"
    run.pay("s2", "2026-12-12")

    for when in ("2027-01-12", "2027-02-12"):
        d = charge_decision(run.renew("s2", when), "s2")
        assert d.total == D("6.99"), when
        assert discount_total(d) == D("7.00"), when
        run.pay("s2", when)

    d = charge_decision(run.renew("s2", "2027-03-12"), "s2")
    assert d.list == D("13.99")
    assert d.discounts == ()
    assert d.total == D("13.99")


def test_s2_trial_end_charged_by_tick() -> None:
    run = Run()
    s2_checkout(run)
    out = run.tick("2026-12-13")
    assert "trial.expired" in types(out)
    d = charge_decision(out, "s2")
    assert d.list == D("13.99")
    assert discount_total(d) == D("7.00")
    assert d.total == D("6.99")
    assert d.psp == "stripe"
    assert d.next_charge == day("2027-01-12")


# -- S3 ----------------------------------------------------------------------------------


def test_s3_code_outside_its_window() -> None:
    run = Run()
    out = run.checkout("s3", "2026-12-02", "web_us", "premium_monthly", "c3", US_USED,
                       code="BF2026")
    d = only_decision(out)
    assert d.discounts == ()
    assert "black_friday not valid on 2026-12-02" in reasons_text(out)
    assert d.currency == "USD"
    assert d.total == D("13.99")
    assert "campaign.applied" not in types(out)


# -- S4 ----------------------------------------------------------------------------------


def test_s4_one_redemption_per_customer() -> None:
    run = Run()
    s2_checkout(run)
    out = run.checkout("s4", "2026-11-29", "web_eu", "premium_monthly", "c2", DE_USED,
                       code="BF2026")
    d = only_decision(out)
    assert d.discounts == ()
    text = reasons_text(out)
    assert "black_friday" in text and "already redeemed" in text and "c2" in text
    assert d.currency == "EUR"
    assert d.total == D("12.99")
    assert "campaign.applied" not in types(out)


# -- S5 ----------------------------------------------------------------------------------


def s5_until_february(run: Run, sub: str = "s5") -> Outcome:
    d = only_decision(run.checkout(sub, "2026-12-10", "web_eu", "premium_monthly", "c5",
                                   DE_USED))
    assert d.total == D("12.99")
    run.pay(sub, "2026-12-10")
    d = charge_decision(run.renew(sub, "2027-01-10"), sub)
    assert d.list == D("12.99") and d.total == D("12.99")
    run.pay(sub, "2027-01-10")
    feb = run.renew(sub, "2027-02-10")
    run.pay(sub, "2027-02-10")
    return feb


def test_s5_price_change_with_consent() -> None:
    run = Run()
    feb = s5_until_february(run)
    d = charge_decision(feb, "s5")
    assert d.list == D("12.99") and d.total == D("12.99")
    assert "consent.requested" in types(feb)
    assert "price.changed" not in types(feb)

    consent = run.request("consent_given", "s5", "2027-02-15")
    assert "consent.collected" in types(consent)

    march = run.renew("s5", "2027-03-10")
    d = charge_decision(march, "s5")
    assert d.list == D("13.99")
    assert d.total == D("13.99")
    assert d.tax == D("2.23")
    assert "price.changed" in types(march)


def test_s5_new_checkout_after_the_date_pays_the_new_price() -> None:
    run = Run()
    d = only_decision(run.checkout("s5n", "2027-02-01", "web_eu", "premium_monthly", "c5n",
                                   DE_USED))
    assert d.currency == "EUR"
    assert d.list == D("13.99")
    assert d.total == D("13.99")


def test_s5_variant_no_consent_then_declined() -> None:
    run = Run()
    s5_until_february(run)
    march = run.renew("s5", "2027-03-10")
    d = charge_decision(march, "s5")
    assert d.list == D("12.99") and d.total == D("12.99")
    assert "consent.deferred" in types(march)
    assert "price.changed" not in types(march)
    run.pay("s5", "2027-03-10")

    declined = run.request("consent_declined", "s5", "2027-03-15")
    assert "subscription.canceled" not in types(declined)
    assert run.sub("s5").status == "active"

    end = run.tick("2027-04-10")
    assert "subscription.canceled" in types(end)
    assert run.sub("s5").status == "canceled"


def test_s5_variant_declined_cancel_executed_by_renewal_due() -> None:
    run = Run()
    s5_until_february(run)
    run.renew("s5", "2027-03-10")
    run.pay("s5", "2027-03-10")
    run.request("consent_declined", "s5", "2027-03-15")
    end = run.renew("s5", "2027-04-10")
    assert "subscription.canceled" in types(end)
    assert not [d for d in end.decisions if d.kind == "charge"]
    assert run.sub("s5").status == "canceled"


# -- S6 ----------------------------------------------------------------------------------


def s6_failed_renewal(run: Run, reason: str | None = None) -> Outcome:
    run.checkout("s6", "2026-12-10", "web_eu", "premium_monthly", "c6", DE_USED)
    run.pay("s6", "2026-12-10")
    run.renew("s6", "2027-01-10")
    return run.fail("s6", "2027-01-10", reason)


def test_s6_dunning_schedules_retries() -> None:
    run = Run()
    out = s6_failed_renewal(run)
    assert run.sub("s6").status == "past_due"
    assert "payment.failed" in types(out)
    retries = events(out, "payment.retry_scheduled")
    assert [r.date for r in retries] == [day("2027-01-11"), day("2027-01-13"),
                                         day("2027-01-17")]
    assert [r.psp for r in retries] == ["stripe"] * 3
    assert "entitlement.revoked" not in types(out)
    assert set(run.sub("s6").entitlements) == set(PREMIUM)


def test_s6a_recovered_payment() -> None:
    run = Run()
    s6_failed_renewal(run)
    out = run.pay("s6", "2027-01-13")
    assert run.sub("s6").status == "active"
    assert "payment.succeeded" in types(out)
    assert only_decision(out).next_charge == day("2027-02-10")
    assert set(run.sub("s6").entitlements) == set(PREMIUM)


def test_s6b_retries_exhausted_then_grace_ends() -> None:
    run = Run()
    s6_failed_renewal(run)
    for when in ("2027-01-11", "2027-01-13", "2027-01-17"):
        retry = run.tick(when)
        d = charge_decision(retry, "s6")
        assert d.retry_at == day(when)
        assert d.psp == "stripe"
        failed = run.fail("s6", when)
        assert "payment.failed" in types(failed)
        assert "subscription.canceled" not in types(failed)
    before = run.tick("2027-01-19")
    assert "subscription.canceled" not in types(before)
    assert run.sub("s6").status == "past_due"
    assert set(run.sub("s6").entitlements) == set(PREMIUM)

    end = run.tick("2027-01-20")
    assert_events_in_order(end, ["subscription.canceled", "entitlement.revoked"])
    assert set(event(end, "entitlement.revoked").entitlements) == set(PREMIUM)
    assert run.sub("s6").status == "canceled"


def test_s6c_hard_decline_schedules_no_retry() -> None:
    run = Run()
    out = s6_failed_renewal(run, reason="stolen_card")
    assert "payment.failed" in types(out)
    assert "payment.retry_scheduled" not in types(out)
    assert run.sub("s6").status == "past_due"
    quiet = run.tick("2027-01-19")
    assert "subscription.canceled" not in types(quiet)
    end = run.tick("2027-01-20")
    assert "subscription.canceled" in types(end)
    assert "entitlement.revoked" in types(end)
    assert run.sub("s6").status == "canceled"


# -- S7 ----------------------------------------------------------------------------------


def test_s7_month_end_anchor() -> None:
    run = Run()
    out = run.checkout("s7", "2027-01-31", "web_us", "premium_monthly", "c7", US_USED)
    assert only_decision(out).next_charge == day("2027-02-28")
    run.pay("s7", "2027-01-31")
    expected_next = {"2027-02-28": "2027-03-31", "2027-03-31": "2027-04-30",
                     "2027-04-30": "2027-05-31"}
    for when, nxt in expected_next.items():
        d = charge_decision(run.renew("s7", when), "s7")
        assert d.total == D("13.99"), when
        assert d.next_charge == day(nxt), when
        run.pay("s7", when)


# -- S8 ----------------------------------------------------------------------------------


def test_s8_zero_decimal_currency() -> None:
    run = Run()
    d = only_decision(run.checkout("s8", "2026-12-01", "web_jp", "premium_monthly", "c8",
                                   {"country": "JP", "trials_used": 1}))
    assert d.currency == "JPY"
    assert d.list == D("1200")
    assert d.tax == D("109")
    assert d.net == D("1091")
    assert d.total == D("1200")
    assert d.total.as_tuple().exponent == 0  # no minor units


# -- S9 ----------------------------------------------------------------------------------


def test_s9_business_contract_exclusive_tax_net_terms() -> None:
    run = Run()
    out = run.checkout("s9", "2026-12-01", "b2b", "business_annual", "c9", {"country": "FR"})
    d = only_decision(out)
    assert d.currency == "EUR"
    assert d.list == D("99.00")
    assert d.tax == D("19.80")
    assert d.total == D("118.80")
    assert d.psp == "transfer"
    assert d.due == day("2026-12-31")
    assert d.next_charge == day("2027-12-01")
    granted = event(out, "entitlement.granted")
    assert set(granted.entitlements) == {"hd", "downloads", "family", "live_sports"}


# -- S10 ---------------------------------------------------------------------------------


def test_s10_immediate_prorated_upgrade() -> None:
    run = Run()
    d = only_decision(run.checkout("s10", "2027-03-01", "web_us", "premium_monthly", "c10",
                                   US_USED))
    assert d.total == D("13.99")
    run.pay("s10", "2027-03-01")

    out = run.request("plan_change_requested", "s10", "2027-03-11",
                      plan="premium_plus_monthly")
    d = only_decision(out)
    assert d.currency == "USD"
    assert d.credit == D("9.48")
    assert d.list == D("13.54")
    assert d.total == D("4.06")
    assert d.next_charge == day("2027-04-01")
    assert any("21 unused of 31 days" in r for r in d.reasons)
    assert_events_in_order(out, ["subscription.upgraded", "credit.issued"])
    assert event(out, "credit.issued").amount == D("9.48")
    assert "entitlement.granted" in types(out)
    assert set(event(out, "entitlement.granted").entitlements) == {"live_sports"}
    assert "entitlement.revoked" not in types(out)

    run.pay("s10", "2027-03-11")
    d = charge_decision(run.renew("s10", "2027-04-01"), "s10")
    assert d.list == D("19.99")
    assert d.total == D("19.99")


# -- S11 ---------------------------------------------------------------------------------


def test_s11_downgrade_at_period_end() -> None:
    run = Run()
    run.checkout("s11", "2027-03-01", "web_us", "premium_monthly", "c11", US_USED)
    run.pay("s11", "2027-03-01")
    out = run.request("plan_change_requested", "s11", "2027-03-11", plan="basic_monthly")
    d = only_decision(out)
    assert d.kind != "charge"
    assert d.total == ZERO2
    assert "subscription.downgraded" not in types(out)
    assert not [e for e in out.events if e.type.startswith("payment.")]
    assert run.sub("s11").plan == "premium_monthly"

    apr = run.renew("s11", "2027-04-01")
    assert "subscription.downgraded" in types(apr)
    d = charge_decision(apr, "s11")
    assert d.list == D("7.99")
    assert d.total == D("7.99")
    assert set(event(apr, "entitlement.revoked").entitlements) == set(PREMIUM)
    assert set(event(apr, "entitlement.granted").entitlements) == {"sd"}


# -- S12 ---------------------------------------------------------------------------------


def test_s12a_full_refund_within_14_days() -> None:
    run = Run()
    run.checkout("s12a", "2027-03-01", "web_us", "premium_monthly", "c12a", {"trials_used": 1})
    paid = run.pay("s12a", "2027-03-01")
    assert event(paid, "payment.succeeded").amount == D("13.99")
    out = run.request("refund_requested", "s12a", "2027-03-05")
    refunded = event(out, "payment.refunded")
    assert refunded.currency == "USD"
    assert refunded.amount == D("13.99")
    assert "subscription.canceled" in types(out)
    assert set(event(out, "entitlement.revoked").entitlements) == set(PREMIUM)
    d = only_decision(out)
    assert d.kind == "refund"
    assert d.total == D("13.99")


def test_s12b_prorated_refund_after_14_days() -> None:
    run = Run()
    run.checkout("s12b", "2027-03-01", "web_us", "premium_monthly", "c12b", {"trials_used": 1})
    run.pay("s12b", "2027-03-01")
    d = charge_decision(run.renew("s12b", "2027-04-01"), "s12b")
    assert d.total == D("13.99")
    run.pay("s12b", "2027-04-01")
    out = run.request("refund_requested", "s12b", "2027-04-21")
    refunded = event(out, "payment.refunded")
    assert refunded.currency == "USD"
    assert refunded.amount == D("4.66")
    assert only_decision(out).total == D("4.66")


# -- S13 ---------------------------------------------------------------------------------


def test_s13_carrier_billing() -> None:
    run = Run()
    out = run.checkout("s13", "2026-12-01", "telco_de", "premium_monthly", "c13",
                       {"country": "DE", "trials_used": 0})
    assert any("no trials via carrier" in r for r in event(out, "trial.blocked").reasons)
    assert "trial.granted" not in types(out)
    d = only_decision(out)
    assert d.currency == "EUR"
    assert d.total == D("12.99")
    assert d.tax == D("2.07")
    assert d.psp == "carrier"


# -- S14 ---------------------------------------------------------------------------------


def test_s14_loyalty_from_cycle_12() -> None:
    run = Run()
    d = only_decision(run.checkout("s14", "2026-01-15", "web_eu", "premium_monthly", "c14",
                                   DE_USED))
    assert d.total == D("12.99") and d.discounts == ()
    run.pay("s14", "2026-01-15")
    for month in range(2, 12):  # cycles 2..11: 2026-02-15 … 2026-11-15
        when = f"2026-{month:02d}-15"
        d = charge_decision(run.renew("s14", when), "s14")
        assert d.total == D("12.99"), when
        assert d.discounts == (), when
        run.pay("s14", when)
    assert run.sub("s14").cycle == 11

    d = charge_decision(run.renew("s14", "2026-12-15"), "s14")
    assert d.list == D("12.99")
    assert [(x.rule, x.amount) for x in d.discounts] == [("loyalty", D("2.00"))]
    assert d.total == D("10.99")
    assert d.tax == D("1.75")


# -- S15 ---------------------------------------------------------------------------------


def test_s15_app_store() -> None:
    run = Run()
    out = run.checkout("s15", "2026-12-01", "ios", "premium_monthly", "c15", US_USED)
    d = only_decision(out)
    assert d.currency == "USD"
    assert d.total == D("14.99")
    assert d.tax == ZERO2
    assert d.psp == "apple"

    paid = event(run.pay("s15", "2026-12-01"), "payment.succeeded")
    assert paid.commission == D("2.25")
    assert paid.net - paid.commission == D("12.74")

    run.renew("s15", "2027-01-01")
    failed = run.fail("s15", "2027-01-01")
    assert "payment.failed" in types(failed)
    assert "payment.retry_scheduled" not in types(failed)
    assert "entitlement.revoked" not in types(failed)
    assert set(run.sub("s15").entitlements) == set(PREMIUM)

    quiet = run.tick("2027-01-16")
    assert "subscription.canceled" not in types(quiet)
    end = run.tick("2027-01-17")
    assert "subscription.canceled" in types(end)
    assert set(event(end, "entitlement.revoked").entitlements) == set(PREMIUM)


# -- S16 ---------------------------------------------------------------------------------


def test_s16_pause_denied_in_first_cycle() -> None:
    run = Run()
    run.checkout("s16", "2027-03-01", "web_us", "premium_monthly", "c16", US_USED)
    run.pay("s16", "2027-03-01")
    before = run.state
    out = run.request("pause_requested", "s16", "2027-03-05")
    d = only_decision(out)
    assert d.kind == "deny"
    assert any("cycle >= 2" in r for r in d.reasons)
    assert out.events == ()
    assert out.state.subscriptions == before.subscriptions
    assert run.sub("s16").status == "active"


# -- S17 ---------------------------------------------------------------------------------


def test_s17_replay_is_idempotent() -> None:
    run = Run()
    checkout = {"id": "c-1", "type": "checkout", "at": "2026-11-15", "subscription": "s17",
                "storefront": "web_eu", "plan": "premium_monthly",
                "customer": {"id": "c17", **DE_USED}}
    run.send(checkout)
    paid = {"id": "p-1", "type": "payment_succeeded", "at": "2026-11-15",
            "subscription": "s17"}
    run.send(paid)
    for again in (checkout, paid):
        before = run.state
        out = run.send(again)
        assert out.replayed is True
        assert out.decisions == ()
        assert out.events == ()
        assert out.state is before
        assert out.state == before


# -- S18 ---------------------------------------------------------------------------------


def test_s18_bad_storefront() -> None:
    run = Run()
    run.checkout("s1", "2026-11-15", "web_eu", "premium_monthly", "c1", DE_USED)
    before = run.state
    out = run.checkout("s18", "2026-11-16", "web_xx", "premium_monthly", "c18", DE_USED,
                       ok=False)
    assert out.error is not None
    assert out.error.code == "unknown_storefront"
    assert "web_xx" in out.error.message
    assert "did you mean" in out.error.message
    assert same_but_remembered(before, out.state)
    assert out.events == ()
    assert out.decisions == ()


# -- S19 ---------------------------------------------------------------------------------


def test_s19_enterprise_contract() -> None:
    run = Run()
    out = run.checkout("s19", "2027-01-10", "b2b", "business_annual", "c-acme",
                       {"country": "DE"})
    d = only_decision(out)
    assert d.currency == "EUR"
    assert d.list == D("79.00")
    assert d.tax == D("15.01")
    assert d.total == D("94.01")
    assert d.psp == "transfer"
    assert d.due == day("2027-02-09")
    assert d.next_charge == day("2028-01-10")
    run.pay("s19", "2027-01-10")

    again = run.renew("s19", "2028-01-10")
    d = charge_decision(again, "s19")
    assert d.list == D("79.00")
    assert d.total == D("94.01")
    assert "price.changed" not in types(again)
    run.pay("s19", "2028-01-10")

    listed = run.renew("s19", "2029-01-10")
    d = charge_decision(listed, "s19")
    assert d.list == D("99.00")
    assert "price.changed" in types(listed)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
