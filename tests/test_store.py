"""Store channels: Apple and Google notifications become the web channel's events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import revrules
from revrules import Engine, State

RULES = revrules.load(Path(__file__).parent.parent / "rulesets" / "streaming.rr")
ENGINE = Engine(RULES)


class Log:
    def __init__(self) -> None:
        self.state = State()
        self.n = 0
        self.outcomes: list[revrules.Outcome] = []

    def send(self, ok: bool = True, **event: Any) -> revrules.Outcome:
        self.n += 1
        outcome = ENGINE.apply(self.state, {"id": f"e{self.n}", **event})
        assert outcome.ok is ok, outcome.error
        self.outcomes.append(outcome)
        self.state = outcome.state
        return outcome

    def store(self, at: str, notification: str, subtype: str | None = None,
              ok: bool = True) -> revrules.Outcome:
        extra = {"subtype": subtype} if subtype else {}
        return self.send(ok=ok, type="store_notification", at=at, subscription="s",
                         notification=notification, **extra)

    def status(self) -> str:
        return self.state.subscriptions["s"].status


def types(outcome: revrules.Outcome) -> list[str]:
    return [e.type for e in outcome.events]


@pytest.fixture
def ios() -> Log:
    log = Log()
    log.send(type="checkout", at="2026-12-01", subscription="s", storefront="ios",
             plan="premium_monthly", customer={"id": "c", "country": "US", "trials_used": 1})
    return log


@pytest.mark.parametrize("name", ["SUBSCRIBED", "PURCHASED", "SUBSCRIPTION_PURCHASED"])
def test_initial_purchase_settles_the_checkout_charge(ios: Log, name: str) -> None:
    out = ios.store("2026-12-01", name)
    assert types(out) == ["payment.succeeded"]
    assert out.events[0].amount == Decimal("14.99")
    assert out.events[0].commission == Decimal("2.25")
    assert out.events[0].net - out.events[0].commission == Decimal("12.74")


@pytest.mark.parametrize("name", ["DID_RENEW", "RENEWED"])
def test_renewal_notification_charges_and_settles_the_next_period(ios: Log, name: str) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    out = ios.store("2027-01-01", name)
    assert types(out) == ["subscription.renewed", "payment.succeeded"]
    assert out.decisions[-1].next_charge.isoformat() == "2027-02-01"  # type: ignore[union-attr]
    assert ios.state.subscriptions["s"].charge is None


@pytest.mark.parametrize(("fail", "over"), [("DID_FAIL_TO_RENEW", "GRACE_PERIOD_EXPIRED"),
                                            ("IN_GRACE_PERIOD", "ON_HOLD")])
def test_failure_grace_and_expiry(ios: Log, fail: str, over: str) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    out = ios.store("2027-01-01", fail, "GRACE_PERIOD")
    assert "payment.failed" in types(out)
    assert "payment.retry_scheduled" not in types(out)  # the store retries
    assert ios.status() == "past_due"
    assert ios.state.subscriptions["s"].entitlements == ("hd", "downloads", "family")
    out = ios.store("2027-01-10", over)
    assert types(out) == ["subscription.canceled", "entitlement.revoked"]
    assert ios.status() == "canceled"


def test_recovery_during_grace(ios: Log) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    ios.store("2027-01-01", "DID_FAIL_TO_RENEW", "GRACE_PERIOD")
    out = ios.store("2027-01-05", "RECOVERED")
    assert types(out) == ["payment.succeeded"]
    assert ios.status() == "active"
    assert ios.state.subscriptions["s"].anchor.isoformat() == "2026-12-01"


@pytest.mark.parametrize("name", ["REFUND", "REVOKED"])
def test_refund_notification(ios: Log, name: str) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    out = ios.store("2026-12-20", name)
    assert types(out) == ["payment.refunded", "subscription.canceled", "entitlement.revoked"]
    assert out.events[0].amount == Decimal("14.99")
    assert out.events[0].commission == Decimal("2.25")  # the store gives its share back
    revenue = [e for o in ios.outcomes for e in o.events]
    totals = revrules.Ledger.fold(revenue, RULES).totals()["USD"]
    assert (totals.net, totals.commission, totals.proceeds) == (Decimal("0.00"),) * 3


def test_expired(ios: Log) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    out = ios.store("2027-01-01", "EXPIRED")
    assert types(out) == ["subscription.canceled", "entitlement.revoked"]
    ios.store("2027-01-02", "EXPIRED", ok=False)


def test_auto_renew_off_then_on(ios: Log) -> None:
    ios.store("2026-12-01", "SUBSCRIBED")
    ios.store("2026-12-10", "DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED")
    assert ios.state.subscriptions["s"].cancel_at.isoformat() == "2027-01-01"  # type: ignore[union-attr]
    ios.store("2026-12-11", "DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_ENABLED")
    assert ios.state.subscriptions["s"].cancel_at is None
    ios.store("2026-12-12", "CANCELED")
    out = ios.send(type="tick", at="2027-01-01")
    assert types(out) == ["subscription.canceled", "entitlement.revoked"]


def test_price_increase_pending_changes_nothing(ios: Log) -> None:
    out = ios.store("2026-12-05", "PRICE_INCREASE", "PENDING")
    assert out.events == () and "consent" in out.decisions[0].reasons[0]


def test_unknown_notification_suggests(ios: Log) -> None:
    out = ios.store("2026-12-01", "DID_RENEWW", ok=False)
    assert out.error is not None and out.error.code == "unknown_notification"
    assert "DID_RENEW" in out.error.message


def test_web_storefronts_take_no_store_notifications() -> None:
    log = Log()
    log.send(type="checkout", at="2026-12-01", subscription="s", storefront="web_us",
             plan="premium_monthly", customer={"id": "c", "trials_used": 1})
    out = log.store("2026-12-01", "SUBSCRIBED", ok=False)
    assert out.error is not None and out.error.code == "not_a_store"


def test_price_change_consent_via_store() -> None:
    """web_eu's scheduled price needs consent; a consent_given event collects it."""
    log = Log()
    log.send(type="checkout", at="2027-01-10", subscription="s", storefront="web_eu",
             plan="premium_monthly", customer={"id": "c", "country": "DE", "trials_used": 1})
    log.send(type="payment_succeeded", at="2027-01-10", subscription="s")
    out = log.send(type="renewal_due", at="2027-02-10", subscription="s")
    assert "consent.requested" in types(out) and out.decisions[0].total == Decimal("12.99")
    log.send(type="payment_succeeded", at="2027-02-10", subscription="s")
    out = log.send(type="renewal_due", at="2027-03-10", subscription="s")
    assert "consent.deferred" in types(out) and out.decisions[0].total == Decimal("12.99")
    log.send(type="payment_succeeded", at="2027-03-10", subscription="s")
    log.send(type="consent_given", at="2027-03-11", subscription="s")
    out = log.send(type="renewal_due", at="2027-04-10", subscription="s")
    assert "price.changed" in types(out) and out.decisions[0].total == Decimal("13.99")
