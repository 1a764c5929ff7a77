"""Store notifications: App Store Server Notifications V2 and Google Play RTDN
mapped to the transitions the web channel's events make (a renewal paid or failed, the
end of grace, an expiry, a refund, a price-increase consent, auto-renew on or off)."""

from __future__ import annotations

from ..diagnostics import did_you_mean
from ..state import Subscription, evolve
from ..transaction import Tx, fail
from . import pauses, payments, refunds, renewals


# store notification (Apple V2 / Google Play RTDN, prefix SUBSCRIPTION_ dropped) → action
_STORE_ACTIONS = {
    "SUBSCRIBED": "paid", "DID_RENEW": "paid", "PURCHASED": "paid", "RENEWED": "paid",
    "RECOVERED": "paid", "RESTARTED": "paid",
    "DID_FAIL_TO_RENEW": "failed", "IN_GRACE_PERIOD": "failed",
    "GRACE_PERIOD_EXPIRED": "grace_over", "ON_HOLD": "grace_over",
    "EXPIRED": "expired", "REVOKED": "refund", "REFUND": "refund",
    "PRICE_INCREASE": "consent", "PRICE_CHANGE_CONFIRMED": "consent",
    "DID_CHANGE_RENEWAL_STATUS": "cancel_at_end", "CANCELED": "cancel_at_end",
}


def on_store_notification(tx: Tx) -> None:
    """App Store Server Notifications V2 and Google Play RTDN, as the web channel's events."""
    sub = tx.subscription()
    sf = tx.rules.storefronts[sub.storefront]
    if sf.channel in ("web", "direct"):
        raise fail("not_a_store", f"storefront '{sf.name}' is a {sf.channel} storefront; "
                   "store notifications come from app stores, carriers and partners")
    assert tx.event.notification is not None
    name = tx.event.notification.upper().removeprefix("SUBSCRIPTION_")
    subtype = (tx.event.subtype or "").upper()
    action = _STORE_ACTIONS.get(name)
    if action is None:
        raise fail("unknown_notification", f"unknown store notification '{name}'"
                   f"{did_you_mean(name, _STORE_ACTIONS)}")
    if name == "PRICE_INCREASE":
        action = "consent" if subtype == "ACCEPTED" else "consent_pending"
    elif name == "DID_CHANGE_RENEWAL_STATUS":
        action = "resume_renewal" if subtype == "AUTO_RENEW_ENABLED" else "cancel_at_end"
    if sub.status == "canceled" and action != "refund":
        raise fail("already_canceled", f"subscription '{sub.id}' is already canceled")
    globals()["store_" + action](tx, sub)


def store_paid(tx: Tx, sub: Subscription) -> None:
    if sub.charge is None:
        renewals.require_renewable(tx, sub)
        renewals.renew(tx, sub, tx.next_charge(sub))
        sub = tx.subs[sub.id]
        if sub.charge is None:  # a zero charge settled itself
            return
        tx.decisions.pop()
    payments.on_payment_succeeded(tx)


def store_failed(tx: Tx, sub: Subscription) -> None:
    if sub.charge is None:
        renewals.require_renewable(tx, sub)
        renewals.renew(tx, sub, tx.next_charge(sub))
        tx.decisions.pop()
        if tx.subs[sub.id].charge is None:
            return
    payments.on_payment_failed(tx)


def store_grace_over(tx: Tx, sub: Subscription) -> None:
    policy, _ = payments.dunning_policy(tx, sub)
    then = policy.then if policy else "cancel"
    sf = tx.rules.storefronts[sub.storefront]
    rule = f"dunning {policy.name}" if policy else f"storefront {sf.name}"
    pauses.cancel(tx, sub, tx.event.at, rule, policy.span if policy else sf.span,
                  status={"cancel": "canceled", "pause": "paused", "unpaid": "unpaid"}[then])


def store_expired(tx: Tx, sub: Subscription) -> None:
    # the store ended it: the storefront whose store speaks for the subscription
    sf = tx.rules.storefronts[sub.storefront]
    pauses.cancel(tx, sub, tx.event.at, f"storefront {sf.name}", sf.span)


def store_refund(tx: Tx, sub: Subscription) -> None:
    refunds.on_refund_requested_full(tx)


def store_consent(tx: Tx, sub: Subscription) -> None:
    if sub.consent == "requested":
        pauses.on_consent_given(tx)
    else:
        tx.decision(sub, "none", reasons=("no price change waiting for consent",))


def store_consent_pending(tx: Tx, sub: Subscription) -> None:
    tx.decision(sub, "none", reasons=("price increase pending the customer's consent",))


def store_cancel_at_end(tx: Tx, sub: Subscription) -> None:
    pauses.on_cancel_requested(tx)


def store_resume_renewal(tx: Tx, sub: Subscription) -> None:
    sub = tx.put(evolve(sub, cancel_at=None))
    tx.decision(sub, "none")
