"""Random event sequences through the engine (hypothesis RuleBasedStateMachine).

Invariants after every step: no exception (only clean ``ok: false``), statuses move
only along allowed edges, entitlements are held exactly when the status allows,
every charge's figures add up, refunds never exceed what was paid (per subscription
and per charge), credit balances never go negative, and replaying an applied event
changes nothing.
"""

from __future__ import annotations

from conftest import same_but_remembered
import datetime as dt
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import revrules
from revrules import Engine, Ledger, State, wire

RULES = revrules.load(Path(__file__).parent.parent / "rulesets" / "streaming.rr")
ENGINE = Engine(RULES)
SUBS = ("s1", "s2", "s3", "s4")
SALES = sorted({(plan.name, entry.storefront) for plan in RULES.model.plans
                for entry in plan.prices})
NOTIFICATIONS = ("SUBSCRIBED", "DID_RENEW", "DID_FAIL_TO_RENEW", "GRACE_PERIOD_EXPIRED",
                 "EXPIRED", "REFUND", "PRICE_INCREASE", "DID_CHANGE_RENEWAL_STATUS", "RENEWED",
                 "IN_GRACE_PERIOD", "ON_HOLD", "RECOVERED", "CANCELED", "REVOKED")
ALLOWED = {
    None: {"trialing", "active"},
    "trialing": {"trialing", "active", "canceled", "past_due"},  # a store: trial end + failure
    "active": {"active", "past_due", "paused", "canceled"},
    "past_due": {"past_due", "active", "canceled", "paused", "unpaid"},
    "paused": {"paused", "active", "canceled"},
    "unpaid": {"unpaid", "active", "canceled"},
    "canceled": {"canceled"},
}
START = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = State()
        self.clock = START
        self.count = 0
        self.applied: list[dict[str, object]] = []
        self.last_status: dict[str, str | None] = {}
        self.paid: dict[str, Decimal] = {}
        self.refunded: dict[str, Decimal] = {}
        self.revenue: list[revrules.RevenueEvent] = []
        self.paid_charge: dict[str, Decimal] = {}  # charge id → paid
        self.refunded_charge: dict[str, Decimal] = {}  # charge id → refunded

    # -- driving ------------------------------------------------------------------------
    def send(self, event: dict[str, object]) -> revrules.Outcome:
        self.count += 1
        event = {"id": f"e{self.count}", "at": self.clock.isoformat(), **event}
        before = {k: (v.status if v else None) for k, v in
                  ((s, self.state.subscription(s)) for s in SUBS)}
        outcome = ENGINE.apply(self.state, event)
        if not outcome.ok:
            assert outcome.error is not None and outcome.error.code and outcome.error.message
            assert same_but_remembered(self.state, outcome.state)
            self.state = outcome.state
            assert not outcome.events and not outcome.decisions
            return outcome
        self.applied.append(event)
        self.revenue.extend(outcome.events)
        for ev in outcome.events:
            if ev.type == "payment.succeeded":
                assert ev.gross - ev.discount - ev.credit == ev.net
                self.paid[ev.subscription] = self.paid.get(ev.subscription, Decimal(0)) + ev.amount
            if ev.type == "payment.refunded":
                self.refunded[ev.subscription] = (self.refunded.get(ev.subscription, Decimal(0))
                                                  + ev.amount)
            if ev.charge is not None and ev.type in ("payment.succeeded", "payment.refunded"):
                book = self.paid_charge if ev.type == "payment.succeeded" else \
                    self.refunded_charge
                assert ev.type == "payment.refunded" or ev.charge not in book  # paid once
                book[ev.charge] = book.get(ev.charge, Decimal(0)) + ev.amount
        for d in outcome.decisions:
            if d.kind == "charge" and d.currency:
                sf_inclusive = RULES.storefronts[
                    outcome.state.subscriptions[d.subscription].storefront].tax_inclusive
                paid = d.list - sum((x.amount for x in d.discounts), Decimal(0)) - d.credit
                assert (d.total == paid) if sf_inclusive else (d.total == paid + d.tax)
                assert d.net == d.total - d.tax
        self.state = outcome.state
        for sub_id in SUBS:
            sub = self.state.subscription(sub_id)
            if sub is not None:
                assert sub.status in ALLOWED[before[sub_id]], (before[sub_id], sub.status)
        return outcome

    def advance(self, days: int) -> None:
        self.clock += dt.timedelta(days=days)

    @rule(sub=st.sampled_from(SUBS), sale=st.sampled_from(SALES),
          country=st.sampled_from(["DE", "FR", "US", "JP", None]), used=st.integers(0, 1),
          code=st.sampled_from([None, "BF2026", "NOPE"]), days=st.integers(0, 3))
    def checkout(self, sub: str, sale: tuple[str, str], country: str | None, used: int,
                 code: str | None, days: int) -> None:
        self.advance(days)
        customer: dict[str, object] = {"id": f"c-{sub}", "trials_used": used}
        if country:
            customer["country"] = country
        event: dict[str, object] = {"type": "checkout", "subscription": sub, "plan": sale[0],
                                    "storefront": sale[1], "customer": customer}
        if code:
            event["code"] = code
        self.send(event)

    @precondition(lambda self: len(self.state.subscriptions) > 0)
    @rule(sub=st.sampled_from(SUBS))
    def renew_on_time(self, sub: str) -> None:
        s = self.state.subscription(sub)
        if s is None:
            return
        due = ENGINE_next_charge(s)
        at = dt.datetime.combine(due, dt.time(), dt.timezone.utc)
        if at >= self.clock:
            self.clock = at
            self.send({"type": "renewal_due", "subscription": sub})

    @rule(sub=st.sampled_from(SUBS), kind=st.sampled_from(
        ["payment_succeeded", "payment_failed", "cancel_requested", "pause_requested",
         "resume_requested", "refund_requested", "consent_given", "consent_declined",
         "renewal_due"]),
        reason=st.sampled_from([None, "card_declined", "stolen_card"]), days=st.integers(0, 5))
    def request(self, sub: str, kind: str, reason: str | None, days: int) -> None:
        self.advance(days)
        event: dict[str, object] = {"type": kind, "subscription": sub}
        if kind == "payment_failed" and reason:
            event["reason"] = reason
        self.send(event)

    @rule(sub=st.sampled_from(SUBS), plan=st.sampled_from(sorted(RULES.plans)),
          days=st.integers(0, 10))
    def change_plan(self, sub: str, plan: str, days: int) -> None:
        self.advance(days)
        self.send({"type": "plan_change_requested", "subscription": sub, "plan": plan})

    @rule(sub=st.sampled_from(SUBS), name=st.sampled_from(NOTIFICATIONS),
          subtype=st.sampled_from([None, "ACCEPTED", "PENDING", "AUTO_RENEW_DISABLED",
                                   "AUTO_RENEW_ENABLED"]), days=st.integers(0, 20))
    def store(self, sub: str, name: str, subtype: str | None, days: int) -> None:
        self.advance(days)
        event: dict[str, object] = {"type": "store_notification", "subscription": sub,
                                    "notification": name}
        if subtype:
            event["subtype"] = subtype
        self.send(event)

    @rule(days=st.integers(1, 40))
    def tick(self, days: int) -> None:
        self.advance(days)
        self.send({"type": "tick"})

    @precondition(lambda self: bool(self.applied))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.applied))
        outcome = ENGINE.apply(self.state, event)
        assert outcome.state is self.state and not outcome.events and not outcome.decisions
        assert outcome.ok and outcome.replayed

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def the_state_passes_its_own_validation(self) -> None:
        """Every state the engine makes is one a state file may hold (no false refusals)."""
        wire.validate_state(self.state)
        assert ENGINE.verify(self.state) is None
        assert wire.state_from_json(wire.state_to_json(self.state)) == self.state

    @invariant()
    def entitlements_follow_status(self) -> None:
        for sub in self.state.subscriptions.values():
            plan = RULES.plans[sub.plan]
            if sub.status in ("trialing", "active", "past_due"):
                assert sub.entitlements == plan.entitlements, (sub.status, sub.entitlements)
            else:
                assert sub.entitlements == (), (sub.status, sub.entitlements)

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        """What the ledger reports as net equals payments' net less refunds' net."""
        expected: dict[str, Decimal] = {}
        for ev in self.revenue:
            if ev.type == "payment.succeeded":
                expected[ev.currency] = expected.get(ev.currency, Decimal(0)) + ev.net
            elif ev.type == "payment.refunded":
                expected[ev.currency] = expected.get(ev.currency, Decimal(0)) - ev.net
        totals = Ledger.fold(self.revenue, RULES).totals()
        for currency, net in expected.items():
            figures = totals[currency]
            assert figures.net == net
            assert figures.net == (figures.gross - figures.discounts - figures.refunds
                                   - figures.credits)

    @invariant()
    def due_index_matches_the_subscriptions(self) -> None:
        """The index ``tick`` reads is exactly what the subscriptions say is pending."""
        from revrules.engine import _Tx
        from revrules.events import parse_event

        probe = _Tx(ENGINE, self.state, parse_event({"id": "-", "type": "tick",
                                                     "at": "2026-01-01"}))
        expected = {}
        for sub_id, sub in self.state.subscriptions.items():
            item = probe.next_due(sub)
            if item is not None:
                expected[sub_id] = item[0]
        assert dict(self.state.due.items()) == expected

    @invariant()
    def refunds_never_exceed_payments(self) -> None:
        for sub_id, refunded in self.refunded.items():
            assert refunded <= self.paid.get(sub_id, Decimal(0))


    # -- goodwill refunds and credits (LANGUAGE.md §5.1) -----------------------------------
    @rule(sub=st.sampled_from(SUBS), amount=st.sampled_from(["0.50", "1.00", "5.00", "20.00",
                                                           "300"]),
          charge=st.sampled_from([None, 1, 2, 3]), cancel=st.sampled_from([None, True, False]),
          days=st.integers(0, 5))
    def goodwill_refund(self, sub: str, amount: str, charge: int | None, cancel: bool | None,
                        days: int) -> None:
        self.advance(days)
        event: dict[str, object] = {"type": "refund_requested", "subscription": sub,
                                    "amount": amount}
        if charge is not None:
            event["charge"] = f"{sub}:{charge}"
        if cancel is not None:
            event["cancel"] = cancel
        self.send(event)

    @rule(sub=st.sampled_from(SUBS), amount=st.sampled_from(["1.00", "5.00", "25.00", "100"]),
          days=st.integers(0, 5))
    def grant_credit(self, sub: str, amount: str, days: int) -> None:
        self.advance(days)
        self.send({"type": "credit_granted", "subscription": sub, "amount": amount,
                   "reason": "goodwill"})

    @precondition(lambda self: any(s.charge is not None
                                   for s in self.state.subscriptions.values()))
    @rule(data=st.data(), days=st.integers(0, 2))
    def pay_an_open_charge(self, data: st.DataObject, days: int) -> None:
        """Pay some open charge, so that refunds and credits have paid charges to act on."""
        sub = data.draw(st.sampled_from(sorted(
            k for k, s in self.state.subscriptions.items() if s.charge is not None)))
        self.advance(days)
        self.send({"type": "payment_succeeded", "subscription": sub})

    @invariant()
    def refunds_never_exceed_the_charge_they_refund(self) -> None:
        for charge, refunded in self.refunded_charge.items():
            assert refunded <= self.paid_charge.get(charge, Decimal(0)), charge

    @invariant()
    def credit_balances_are_never_negative(self) -> None:
        for sub in self.state.subscriptions.values():
            assert sub.credit_balance >= 0, sub.id
            for payment in (sub.payment, *sub.earlier_payments):
                if payment is not None:
                    assert 0 <= payment.refunded <= payment.total
                    assert 0 <= payment.refunded_tax <= payment.tax


def ENGINE_next_charge(sub: revrules.Subscription) -> dt.date:  # noqa: N802
    from revrules import runtime
    return runtime.add_periods(sub.anchor, RULES.plans[sub.plan].every, sub.index)


Lifecycle.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestLifecycle = Lifecycle.TestCase
