"""Random event sequences through the engine (hypothesis RuleBasedStateMachine).

Invariants after every step: no exception and no ``internal_error`` (only clean
``ok: false``), statuses move only along allowed edges, entitlements are held exactly
when the status allows, every charge's figures add up, money is conserved between
decisions, revenue events and the ledger, refunds never exceed what was paid (per
subscription and per charge), credit balances never go negative and equal what was
granted less what charges used, the ledger's outstanding is the sum of the open
charges, and replaying an applied event changes nothing.

The machine also (LANGUAGE.md §5.1) pauses subscriptions across month ends and
February 29 (a resume gives back exactly the days paused), sends events dated before
the last event of their subscription or the last tick (``out_of_order``, nothing but
the id remembered), and switches mid-log to a version of the ruleset that renames a
plan and a storefront with ``formerly`` (and back again), carrying on.

``REVRULES_EXAMPLES`` sets the number of examples (default 150); with ``-s`` the test
prints what the run exercised.
"""

from __future__ import annotations

from conftest import same_but_remembered
import datetime as dt
import os
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

import revrules
from revrules import Engine, Ledger, State, wire

TEXT = (Path(__file__).parent.parent / "rulesets" / "streaming.rr").read_text(encoding="utf-8")
RULES = revrules.load_text(TEXT, "streaming.rr")
ENGINE = Engine(RULES)
# the next version renames a plan and a storefront; the one after renames them back
# (each says `formerly` of the other's names, so either can follow either)
NEW_NAMES = {"basic_monthly": "basic_month", "web_us": "web_na"}
RENAMED_TEXT = re.sub(r"\bweb_us\b", "web_na", re.sub(r"\bbasic_monthly\b", "basic_month",
                                                       TEXT))
RENAMED_TEXT = (RENAMED_TEXT.replace('version "2026.11.2"', 'version "2027.1"')
                .replace("plan basic_month {", "plan basic_month {\n  formerly basic_monthly")
                .replace("storefront web_na {", "storefront web_na { formerly web_us"))
BACK_TEXT = (TEXT.replace('version "2026.11.2"', 'version "2027.2"')
             .replace("plan basic_monthly {", "plan basic_monthly {\n  formerly basic_month")
             .replace("storefront web_us {", "storefront web_us { formerly web_na"))
RENAMED = Engine(revrules.load_text(RENAMED_TEXT, "streaming-renamed.rr"))
BACK = Engine(revrules.load_text(BACK_TEXT, "streaming-back.rr"))
assert RENAMED.rules.former_plans == {"basic_monthly": "basic_month"}
assert BACK.rules.former_storefronts == {"web_na": "web_us"}

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
# month ends of every length, a leap February, and the ordinary start
STARTS = (dt.datetime(2026, 11, 20), dt.datetime(2027, 1, 31), dt.datetime(2027, 12, 31),
          dt.datetime(2028, 1, 29), dt.datetime(2028, 2, 29))
UTC = dt.timezone.utc
START = STARTS[0].replace(tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)
#: What the runs exercised (printed with -s; docs/reliability.md records a big run).
COUNTS: Counter[str] = Counter()


def month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = ENGINE
        self.rules = RULES
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
        # charge id → (amount, tax, net) of the revenue event that opened it
        self.opened: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        self.credit_used: set[str] = set()  # charges whose credit came off the balance
        self.credit: dict[str, Decimal] = {}  # subscription → credit issued less used

    @initialize(start=st.sampled_from(STARTS))
    def start(self, start: dt.datetime) -> None:
        self.clock = start.replace(tzinfo=UTC)

    # -- names under the ruleset in force --------------------------------------------------
    def name(self, original: str) -> str:
        """The name a plan or storefront of streaming.rr has in the ruleset in force."""
        return NEW_NAMES.get(original, original) if self.engine is RENAMED else original

    def plan(self, name: str) -> revrules.model.Plan:
        """A plan by its name in the ruleset in force, or by a former name (a state not yet
        applied to under a new version still carries the old names)."""
        plans = self.rules.plans
        plan: revrules.model.Plan = plans[name] if name in plans else \
            plans[self.rules.former_plans[name]]
        return plan

    # -- driving ------------------------------------------------------------------------
    def send(self, event: dict[str, object]) -> revrules.Outcome:
        self.count += 1
        event = {"id": f"e{self.count}", "at": self.clock.isoformat(), **event}
        before = {k: self.state.subscription(k) for k in SUBS}
        outcome = self.engine.apply(self.state, event)
        COUNTS["events"] += 1
        if not outcome.ok:
            assert outcome.error is not None and outcome.error.code and outcome.error.message
            assert outcome.error.code != "internal_error", (event, outcome.error)
            COUNTS[f"refused {outcome.error.code}"] += 1
            adopted = self.engine.adopt(self.state)
            assert same_but_remembered(self.state, outcome.state) or \
                same_but_remembered(adopted, outcome.state), (event, outcome.error)
            self.state = outcome.state
            assert not outcome.events and not outcome.decisions
            return outcome
        COUNTS["applied"] += 1
        if self.engine is RENAMED:
            COUNTS["applied under the renamed version"] += 1
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
            if ev.type == "credit.issued":
                self.credit[ev.subscription] = self.credit.get(ev.subscription,
                                                               Decimal(0)) + ev.amount
        self.money_is_conserved_between_decisions_and_revenue_events(outcome, before)
        for d in outcome.decisions:
            if d.kind == "charge" and d.currency:
                sf_inclusive = self.rules.storefronts[
                    outcome.state.subscriptions[d.subscription].storefront].tax_inclusive
                paid = d.list - sum((x.amount for x in d.discounts), Decimal(0)) - d.credit
                assert (d.total == paid) if sf_inclusive else (d.total == paid + d.tax)
                assert d.net == d.total - d.tax
        self.state = outcome.state
        for sub_id in SUBS:
            sub = self.state.subscription(sub_id)
            old = before[sub_id]
            if sub is not None:
                assert sub.status in ALLOWED[old.status if old else None], (old, sub.status)
            if old is not None and sub is not None:
                self.a_resume_gives_back_the_days_paused(old, sub, event)
        return outcome

    def money_is_conserved_between_decisions_and_revenue_events(
            self, outcome: revrules.Outcome,
            before: dict[str, revrules.Subscription | None]) -> None:
        """A charge is opened once, by a revenue event; every decision about it (the one
        that opens it, a retry) states the same figures, and it is paid at exactly those;
        a refund decision is its refund event; the credit a charge uses comes off the
        balance once."""
        for e in outcome.events:
            if e.type in revrules.accounting.OPENING and e.charge is not None:
                assert e.charge not in self.opened, (e, self.opened[e.charge])
                self.opened[e.charge] = (e.amount, e.tax, e.net)
                COUNTS["charges opened"] += 1
        refunds = {e.charge: e for e in outcome.events if e.type == "payment.refunded"}
        for d in outcome.decisions:
            if d.kind in ("charge", "credit") and d.charge is not None:
                assert (d.total, d.tax, d.net) == self.opened[d.charge], (d, outcome.events)
                if d.charge not in self.credit_used:  # a retry repeats the credit it used
                    self.credit_used.add(d.charge)
                    self.credit[d.subscription] = self.credit.get(d.subscription,
                                                                  Decimal(0)) - d.credit
            elif d.kind == "refund":
                refund = refunds[d.charge]
                assert (refund.amount, refund.tax, refund.net) == (d.total, d.tax, d.net)
        for e in outcome.events:
            if e.type == "payment.succeeded":
                assert e.charge is not None
                assert (e.amount, e.tax, e.net) == self.opened[e.charge], e
                COUNTS["charges paid"] += 1
            if e.type in revrules.accounting.OPENING and e.charge is not None and \
                    e.charge not in self.credit_used:
                # a renewal the store bills (a store notification) has no charge decision:
                # the credit it used is what left the balance
                self.credit_used.add(e.charge)
                old, new = before[e.subscription], outcome.state.subscriptions[e.subscription]
                used = (old.credit_balance if old else Decimal(0)) - new.credit_balance
                assert used >= 0 and not any(x.type == "credit.issued" and
                                             x.subscription == e.subscription
                                             for x in outcome.events), (e, used)
                self.credit[e.subscription] = self.credit.get(e.subscription,
                                                              Decimal(0)) - used
                if used:
                    COUNTS["store-billed renewals that used credit"] += 1

    def a_resume_gives_back_the_days_paused(self, old: revrules.Subscription,
                                            new: revrules.Subscription,
                                            event: dict[str, object]) -> None:
        """LANGUAGE.md §5.1: the next charge is the paid-through date at the pause plus the
        calendar days paused, and that date is the new anchor."""
        if not (old.status == "paused" and old.paused_at is not None and
                new.paused_at is None and new.status == "active"):
            return
        if event["type"] == "tick":
            assert old.resume_by is not None
            day = old.resume_by
        else:
            assert event["type"] == "resume_requested", event
            day = dt.datetime.fromisoformat(str(event["at"])).date()
        paused = day - old.paused_at
        paid_through = next_charge(old, self.plan(old.plan))
        assert (new.anchor, new.index) == (paid_through + paused, 0), (old, new, event)
        COUNTS["resumes"] += 1
        if old.paused_at.month != day.month or old.paused_at.year != day.year:
            COUNTS["resumes across a month end"] += 1
        if any(dt.date(y, 2, 29) in (old.paused_at, day) or
               old.paused_at < dt.date(y, 2, 29) < day for y in (2028, 2032)):
            COUNTS["resumes across or on Feb 29"] += 1

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
        event: dict[str, object] = {"type": "checkout", "subscription": sub,
                                    "plan": self.name(sale[0]),
                                    "storefront": self.name(sale[1]), "customer": customer}
        if code:
            event["code"] = code
        self.send(event)

    @precondition(lambda self: len(self.state.subscriptions) > 0)
    @rule(sub=st.sampled_from(SUBS))
    def renew_on_time(self, sub: str) -> None:
        s = self.state.subscription(sub)
        if s is None:
            return
        due = next_charge(s, self.plan(s.plan))
        at = dt.datetime.combine(due, dt.time(), UTC)
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
        self.send({"type": "plan_change_requested", "subscription": sub,
                   "plan": self.name(plan)})

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
        outcome = self.engine.apply(self.state, event)
        assert outcome.state is self.state and not outcome.events and not outcome.decisions
        assert outcome.ok and outcome.replayed
        COUNTS["replays"] += 1

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def the_state_passes_its_own_validation(self) -> None:
        """Every state the engine makes is one a state file may hold (no false refusals)."""
        wire.validate_state(self.state)
        assert self.engine.verify(self.state) is None
        assert wire.state_from_json(wire.state_to_json(self.state)) == self.state

    @invariant()
    def entitlements_follow_status(self) -> None:
        for sub in self.state.subscriptions.values():
            plan = self.plan(sub.plan)
            if sub.status in ("trialing", "active", "past_due"):
                assert sub.entitlements == plan.entitlements, (sub.status, sub.entitlements)
            else:
                assert sub.entitlements == (), (sub.status, sub.entitlements)

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        """What the ledger reports as net equals payments' net less refunds' net, and its
        outstanding is the sum of the open charges of subscriptions not canceled."""
        expected: dict[str, Decimal] = {}
        owed: dict[str, Decimal] = {}
        for ev in self.revenue:
            if ev.type == "payment.succeeded":
                expected[ev.currency] = expected.get(ev.currency, Decimal(0)) + ev.net
            elif ev.type == "payment.refunded":
                expected[ev.currency] = expected.get(ev.currency, Decimal(0)) - ev.net
        for sub in self.state.subscriptions.values():
            if sub.charge is not None and sub.status != "canceled":
                owed[sub.charge.currency] = owed.get(sub.charge.currency, Decimal(0)) + \
                    sub.charge.net
        totals = Ledger.fold(self.revenue, self.rules).totals()
        for currency, net in expected.items():
            figures = totals[currency]
            assert figures.net == net
            assert figures.net == (figures.gross - figures.discounts - figures.refunds
                                   - figures.credits)
        for currency, figures in totals.items():
            assert figures.outstanding == owed.get(currency, Decimal(0)), (currency, owed)
        assert set(owed) <= set(totals)

    @invariant()
    def due_index_matches_the_subscriptions(self) -> None:
        """The index ``tick`` reads is exactly what the subscriptions say is pending."""
        from revrules.engine import _Tx
        from revrules.events import parse_event

        state = self.engine.adopt(self.state)
        probe = _Tx(self.engine, state, parse_event({"id": "-", "type": "tick",
                                                     "at": "2026-01-01"}))
        expected = {}
        for sub_id, sub in state.subscriptions.items():
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
            # what was issued (granted, or left over by a proration) less what charges used
            assert sub.credit_balance == self.credit.get(sub.id, Decimal(0)), sub.id
            for payment in (sub.payment, *sub.earlier_payments):
                if payment is not None:
                    assert 0 <= payment.refunded <= payment.total
                    assert 0 <= payment.refunded_tax <= payment.tax

    # -- pauses across month ends and Feb 29 (LANGUAGE.md §5.1) ----------------------------
    def renew_and_pay(self, sub_id: str) -> bool:
        """Pay what is open, then the next renewal: whether the subscription is paid up."""
        sub = self.state.subscriptions[sub_id]
        if sub.charge is not None:
            self.send({"type": "payment_succeeded", "subscription": sub_id})
            sub = self.state.subscriptions[sub_id]
        if sub.status != "active" or sub.charge is not None:
            return False
        at = dt.datetime.combine(next_charge(sub, self.plan(sub.plan)), dt.time(), UTC)
        self.clock = max(self.clock, at)
        if self.send({"type": "renewal_due", "subscription": sub_id}).ok:
            self.send({"type": "payment_succeeded", "subscription": sub_id})
        sub = self.state.subscriptions[sub_id]
        return sub.status == "active" and sub.charge is None

    @precondition(lambda self: any(s.status in ("active", "past_due")
                                   for s in self.state.subscriptions.values()))
    @rule(data=st.data())
    def renewal_paid_at_once(self, data: st.DataObject) -> None:
        """The next renewal, paid at once: subscriptions reach the cycles pauses need."""
        self.renew_and_pay(data.draw(st.sampled_from(sorted(
            k for k, s in self.state.subscriptions.items()
            if s.status in ("active", "past_due")))))

    @precondition(lambda self: any(s.status in ("active", "past_due")
                                   for s in self.state.subscriptions.values()))
    @rule(data=st.data(), before_end=st.sampled_from([0, 0, 1, 2, 3, 14]),
          hold=st.integers(1, 120), how=st.sampled_from(["request", "tick"]))
    def pause_across_a_month_end(self, data: st.DataObject, before_end: int, hold: int,
                                 how: str) -> None:
        """Pause on (or a few days before) a month end, hold across one or more month
        ends, then resume by request or let ``pause max`` end it at a tick."""
        sub_id = data.draw(st.sampled_from(sorted(
            k for k, s in self.state.subscriptions.items()
            if s.status in ("active", "past_due"))))
        for _ in range(3):  # streaming.rr pauses from the second cycle on
            if not self.renew_and_pay(sub_id) or \
                    self.state.subscriptions[sub_id].cycle >= 2:
                break
        day = month_end(self.clock.date()) - dt.timedelta(days=before_end)
        if day < self.clock.date():
            day = month_end(month_end(self.clock.date()) + dt.timedelta(days=1)) - \
                dt.timedelta(days=before_end)
        self.clock = max(self.clock, dt.datetime.combine(day, dt.time(12), UTC))
        outcome = self.send({"type": "pause_requested", "subscription": sub_id})
        if not outcome.ok or self.state.subscriptions[sub_id].status != "paused":
            COUNTS["pauses denied"] += 1
            return
        COUNTS["pauses"] += 1
        self.advance(hold)
        self.send({"type": "resume_requested", "subscription": sub_id} if how == "request"
                  else {"type": "tick"})

    # -- events out of time order (LANGUAGE.md §5.1) ---------------------------------------
    @precondition(lambda self: self.state.last_tick is not None or bool(self.state.last_event))
    @rule(data=st.data(), back=st.sampled_from([SECOND, dt.timedelta(hours=1),
                                                dt.timedelta(days=1), dt.timedelta(days=40),
                                                dt.timedelta(days=430)]),
          kind=st.sampled_from(["tick", "payment_succeeded", "refund_requested", "checkout",
                                "credit_granted", "cancel_requested", "pause_requested",
                                "store_notification", "renewal_due", "payment_failed"]))
    def out_of_order(self, data: st.DataObject, back: dt.timedelta, kind: str) -> None:
        """An event dated before the last event of its subscription, or before the last
        tick, is refused with ``out_of_order``; only its id is remembered."""
        state = self.state
        if kind == "tick" or not state.last_event:
            if state.last_tick is None:
                return
            event: dict[str, object] = {"type": "tick"}
            last = state.last_tick
        else:
            sub = data.draw(st.sampled_from(sorted(state.last_event)))
            last = max(state.last_event[sub], state.last_tick or state.last_event[sub])
            event = {"type": kind, "subscription": sub}
            if kind == "checkout":
                event.update(plan=self.name("basic_monthly"), storefront="web_eu",
                             customer={"id": f"c-{sub}", "country": "DE"})
            elif kind == "refund_requested":
                event["amount"] = "1.00"
            elif kind == "credit_granted":
                event["amount"] = "5.00"
            elif kind == "store_notification":
                event["notification"] = "DID_RENEW"
        event["at"] = (last - back).isoformat()
        outcome = self.send(event)
        assert not outcome.ok and outcome.error is not None, (event, outcome)
        assert outcome.error.code == "out_of_order", (event, outcome.error)
        seen = self.state.applied[outcome.event]
        assert (seen.code, seen.at) == ("out_of_order", last - back)
        COUNTS["out of order refused"] += 1

    # -- a ruleset renamed mid-log (LANGUAGE.md §5.1 "State against a ruleset") -------------
    @rule(now=st.integers(0, 3))
    def rename(self, now: int) -> None:
        """Carry on under the next version of the ruleset: it renames a plan and a
        storefront (``formerly``), or renames them back."""
        if now != 3:
            return
        self.engine = BACK if self.engine is RENAMED else RENAMED
        self.rules = self.engine.rules
        COUNTS["ruleset switches"] += 1


def next_charge(sub: revrules.Subscription, plan: revrules.model.Plan) -> dt.date:
    from revrules import runtime
    return runtime.add_periods(sub.anchor, plan.every, sub.index)


def ENGINE_next_charge(sub: revrules.Subscription) -> dt.date:  # noqa: N802
    return next_charge(sub, RULES.plans[sub.plan])


Lifecycle.TestCase.settings = settings(
    max_examples=int(os.environ.get("REVRULES_EXAMPLES", "150")), stateful_step_count=30,
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_lifecycle() -> None:
    COUNTS.clear()
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        Lifecycle, settings=Lifecycle.TestCase.settings)
    print("state machine:", ", ".join(f"{k}: {v}" for k, v in sorted(COUNTS.items())))
    # the run reached what it is for (each of these is common at any size)
    for key in ("pauses", "resumes", "out of order refused", "ruleset switches",
                "charges paid"):
        assert COUNTS[key] > 0, (key, COUNTS)
