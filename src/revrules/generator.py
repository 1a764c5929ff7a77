"""Example data: a realistic, reproducible event log for a ruleset.

:func:`generate` simulates customers of a ruleset's storefronts over some months and
returns the input events (WIRE.md) of their lives: checkouts (some with a promotion
code, many in its window), trials, renewals on the exact next charge dates, payments
(with the settled amount, currency, PSP and a reference), failures recovered through
dunning retries or lost when grace runs out, upgrades and downgrades, pauses,
price-change consents, cancellations and refunds.

The simulation asks the engine at every step — each event is applied before the next
is chosen, and dates such as the next charge, retry or grace end come from the
decisions — so the log applies cleanly (every outcome ``ok``). Randomness comes only
from ``random.Random(seed)``: the same ruleset, counts and seed always give the same
log, byte for byte.

>>> import revrules
>>> from revrules.generator import generate
>>> events = generate(revrules.load("rulesets/streaming.rr"), customers=3, months=2, seed=1)
... # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta

from . import model as m
from .engine import Engine
from .results import Decision, Outcome
from .ruleset import Ruleset
from .runtime import in_context, money_str
from .state import State, Subscription

__all__ = ["generate"]

_COUNTRIES = {"EU": ("DE", "DE", "DE", "FR", "FR", "AT", "NL", "ES", "IT"),
              "US": ("US",), "JP": ("JP",),
              "ALL": ("US", "US", "DE", "FR", "GB", "JP", "BR", "CA")}
_DECLINES = ("card_declined", "card_declined", "card_declined", "insufficient_funds",
             "insufficient_funds", "expired_card", "stolen_card")
_LIVE = ("active", "trialing")

# behaviour, per billing period unless said otherwise
P_PAY_FIRST = 0.93       # a due charge is paid at the first attempt
P_PAY_RETRY = 0.45       # … at a dunning retry
P_RECOVER = 0.4          # a store or hard-declined customer pays within grace
P_CHURN_MONTHLY = 0.045  # asks to cancel during a monthly period
P_CHURN_YEARLY = 0.18
P_TRIAL_CANCEL = 0.3     # cancels during the trial
P_UPGRADE = 0.04
P_DOWNGRADE = 0.015
P_PAUSE = 0.01
P_REFUND = 0.015         # asks for a refund after paying
P_CODE = 0.5             # uses a valid promotion code at checkout
P_IN_WINDOW = 0.08       # a customer arrives during a promotion window
P_USED_TRIAL = 0.35      # a customer who had a trial before


@in_context
def generate(ruleset: Ruleset, customers: int, months: int, seed: int = 0,
             start: dt.date | None = None) -> list[dict[str, Any]]:
    """The input events of ``customers`` customers over ``months`` months from
    ``start`` (default: 2026-01-01), in time order, ready for ``Engine.apply``."""
    if customers < 0 or months < 0:
        raise ValueError("customers and months must not be negative")
    return _Simulation(ruleset, customers, months, seed,
                       start or dt.date(2026, 1, 1)).run()


# actions are queued as (time, priority, sequence, kind, subscription, detail):
# renewals run before the day's tick, so a tick never charges what a renewal would
_RENEWAL, _TICK, _OTHER = 0, 1, 2


class _Simulation:
    def __init__(self, ruleset: Ruleset, customers: int, months: int, seed: int,
                 start: dt.date):
        self.rules = ruleset
        self.engine = Engine(ruleset)
        self.rng = random.Random(seed)
        self.customers = customers
        self.start = _at(start)
        self.end = _at(start + relativedelta(months=months))
        self.state = State()
        self.log: list[dict[str, Any]] = []
        self.queue: list[tuple[dt.datetime, int, int, str, str, Any]] = []
        self.seq = 0
        self.next_charge: dict[str, dt.date] = {}
        self.renewal: dict[str, dt.date] = {}  # renewal already queued, by date
        self.attempt: set[str] = set()  # a payment attempt is queued
        self.ticks: set[dt.date] = set()
        self.offers = self._offers()

    # -- the catalogue ---------------------------------------------------------------------
    def _offers(self) -> list[tuple[m.Storefront, list[m.Plan]]]:
        offers = []
        for sf in self.rules.model.storefronts:
            plans = [p for p in self.rules.model.plans
                     if sf.name not in p.not_sold and (p.name, sf.name) in self.rules.prices]
            if plans:
                offers.append((sf, plans))
        return offers

    def _promotion_windows(self) -> list[m.Promotion]:
        return [p for p in self.rules.model.promotions if p.code and p.valid_from
                and p.valid_to and _at(p.valid_from) < self.end
                and _at(p.valid_to) >= self.start]

    # -- the run -------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        if not self.offers:
            return []
        windows = self._promotion_windows()
        span = (self.end - self.start).total_seconds()
        for n in range(1, self.customers + 1):
            at = self.start + dt.timedelta(seconds=int(span * self.rng.random() ** 1.4))
            promo = None
            if windows and self.rng.random() < P_IN_WINDOW:
                promo = self.rng.choice(windows)
                assert promo.valid_from is not None and promo.valid_to is not None
                first = max(_at(promo.valid_from), self.start)
                last = min(_at(promo.valid_to) + dt.timedelta(days=1), self.end)
                at = first + dt.timedelta(
                    seconds=int((last - first).total_seconds() * self.rng.random()))
            self.push(at, _OTHER, "checkout", f"sub-{n:05d}", (n, promo))
        while self.queue:
            at, _, _, kind, sub, detail = heapq.heappop(self.queue)
            if at >= self.end:
                break
            getattr(self, "do_" + kind)(at, sub, detail)
        return self.log

    def push(self, at: dt.datetime, priority: int, kind: str, sub: str, detail: Any = None) -> None:
        if at >= self.end:
            return
        self.seq += 1
        heapq.heappush(self.queue, (at, priority, self.seq, kind, sub, detail))

    def apply(self, event: dict[str, Any]) -> Outcome | None:
        event = {"id": f"e{len(self.log) + 1:07d}", **event}
        outcome = self.engine.apply(self.state, event)
        if not outcome.ok:  # a choice the engine refuses is left out of the log
            return None
        self.state = outcome.state
        self.log.append(event)
        return outcome

    def sub(self, sub_id: str) -> Subscription | None:
        return self.state.subscription(sub_id)

    # -- follow-ups ------------------------------------------------------------------------
    def follow(self, sub_id: str, outcome: Outcome, at: dt.datetime) -> None:
        """Queue what happens next to ``sub_id`` after ``outcome``."""
        for decision in outcome.decisions:
            if decision.subscription == sub_id and decision.next_charge is not None:
                self.next_charge[sub_id] = decision.next_charge
        for event in outcome.events:
            if event.subscription == sub_id and event.type == "consent.requested":
                roll = self.rng.random()
                when = at + dt.timedelta(days=self.rng.randint(1, 12), hours=self.rng.randint(0, 23))
                if roll < 0.75:
                    self.push(when, _OTHER, "consent", sub_id, "consent_given")
                elif roll < 0.85:
                    self.push(when, _OTHER, "consent", sub_id, "consent_declined")
        sub = self.sub(sub_id)
        if sub is None or sub.status in ("canceled", "unpaid"):
            return
        if sub.charge is not None:
            if sub.dunning is None and sub_id not in self.attempt:
                self.attempt.add(sub_id)
                self.push(at + self.payment_delay(sub), _OTHER, "pay", sub_id)
            return
        if sub.status in _LIVE:
            self.queue_renewal(sub_id)

    def payment_delay(self, sub: Subscription) -> dt.timedelta:
        if self.rules.storefronts[sub.storefront].terms is not None:
            return dt.timedelta(days=self.rng.randint(3, 28), hours=self.rng.randint(8, 17))
        return dt.timedelta(seconds=self.rng.randint(5, 900))

    def queue_renewal(self, sub_id: str) -> None:
        day = self.next_charge.get(sub_id)
        if day is None or self.renewal.get(sub_id) == day:
            return
        at = _at(day)
        if at < self.end:
            self.renewal[sub_id] = day
            self.push(at, _RENEWAL, "renewal", sub_id, day)

    def tick_on(self, day: dt.date) -> None:
        if day not in self.ticks:
            self.ticks.add(day)
            self.push(_at(day), _TICK, "tick", "", day)

    def period_choices(self, sub_id: str, at: dt.datetime) -> None:
        """What the customer does during the period just paid for."""
        sub = self.sub(sub_id)
        day = self.next_charge.get(sub_id)
        if sub is None or day is None or sub.status != "active":
            return
        end = _at(day)
        if end <= at:
            return
        rng = self.rng
        plan = self.rules.plans[sub.plan]
        yearly = plan.every.unit == "year" or (plan.every.unit == "month"
                                               and plan.every.count >= 12)

        def some_time() -> dt.datetime:
            return at + dt.timedelta(seconds=int((end - at).total_seconds() * rng.uniform(0.05,
                                                                                          0.95)))

        roll = rng.random()
        churn = P_CHURN_YEARLY if yearly else P_CHURN_MONTHLY
        upgrades = [c.target for c in plan.changes if c.kind == "upgrade"]
        downgrades = [c.target for c in plan.changes if c.kind == "downgrade"]
        if roll < churn:
            self.push(some_time(), _OTHER, "cancel", sub_id)
        elif roll < churn + P_UPGRADE and upgrades:
            self.push(some_time(), _OTHER, "change", sub_id, rng.choice(upgrades))
        elif roll < churn + P_UPGRADE + P_DOWNGRADE and downgrades:
            self.push(some_time(), _OTHER, "change", sub_id, rng.choice(downgrades))
        elif roll < churn + P_UPGRADE + P_DOWNGRADE + P_PAUSE and sub.cycle >= 2:
            self.push(some_time(), _OTHER, "pause", sub_id)
        if rng.random() < P_REFUND:
            self.push(at + dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 23)),
                      _OTHER, "refund", sub_id)

    # -- actions ---------------------------------------------------------------------------
    def do_checkout(self, at: dt.datetime, sub_id: str, detail: Any) -> None:
        n, promo = detail
        rng = self.rng
        offers = self.offers
        if promo is not None and promo.storefronts is not None:
            offers = [o for o in offers if o[0].name in promo.storefronts] or offers
        weights = [3 if sf.channel == "web" else 2 if sf.channel == "app_store" else 1
                   for sf, _ in offers]
        sf, plans = rng.choices(offers, weights)[0]
        if promo is not None and promo.plans is not None:
            plans = [p for p in plans if p.name in promo.plans] or plans
        plan = rng.choices(plans, [4 if "premium" in p.name else 2 for p in plans])[0] \
            if len(plans) > 1 else plans[0]
        customer: dict[str, Any] = {"id": f"cus-{n:05d}"}
        for attr in self.rules.model.attributes:
            if attr.name == "country" and attr.type == "string":
                customer["country"] = rng.choice(_COUNTRIES.get(sf.region, ("US",)))
            elif attr.name == "trials_used" and attr.type == "int":
                customer["trials_used"] = 1 if rng.random() < P_USED_TRIAL else 0
            elif attr.default is None:
                customer[attr.name] = _placeholder(attr.type)
        event: dict[str, Any] = {"type": "checkout", "at": _iso(at), "subscription": sub_id,
                                 "storefront": sf.name, "plan": plan.name, "customer": customer}
        code = promo.code if promo is not None else None
        if code is None:
            valid = [p.code for p in self.rules.model.promotions if p.code
                     and (p.plans is None or plan.name in p.plans)
                     and (p.storefronts is None or sf.name in p.storefronts)
                     and (p.valid_from is None or p.valid_from <= at.date())
                     and (p.valid_to is None or at.date() <= p.valid_to)]
            if valid and rng.random() < P_CODE:
                code = rng.choice(valid)
        if code is not None:
            event["code"] = code
        outcome = self.apply(event)
        if outcome is None:
            return
        decision = outcome.decisions[0]
        self.follow(sub_id, outcome, at)
        if decision.trial_days and rng.random() < P_TRIAL_CANCEL:
            end = at + dt.timedelta(days=decision.trial_days)
            self.push(at + (end - at) * rng.uniform(0.1, 0.9), _OTHER, "cancel", sub_id)

    def do_renewal(self, at: dt.datetime, sub_id: str, day: dt.date) -> None:
        sub = self.sub(sub_id)
        self.renewal.pop(sub_id, None)
        if sub is None or sub.status not in _LIVE or sub.charge is not None \
                or self.next_charge.get(sub_id) != day:
            return
        outcome = self.apply({"type": "renewal_due", "at": _iso(at), "subscription": sub_id})
        if outcome is not None:
            self.follow(sub_id, outcome, at)

    def do_pay(self, at: dt.datetime, sub_id: str, _: Any) -> None:
        self.attempt.discard(sub_id)
        sub = self.sub(sub_id)
        if sub is None or sub.charge is None or sub.status in ("canceled", "unpaid", "paused"):
            return
        rng = self.rng
        chance = P_PAY_RETRY if sub.dunning is not None else P_PAY_FIRST
        if sub.dunning is not None and not sub.dunning.retries and sub.dunning.attempts:
            chance = P_RECOVER
        if rng.random() < chance:
            charge = sub.charge
            psp = sub.dunning.via if sub.dunning is not None and sub.dunning.via else charge.psp
            event: dict[str, Any] = {
                "type": "payment_succeeded", "at": _iso(at), "subscription": sub_id,
                "amount": money_str(charge.total, charge.currency), "currency": charge.currency}
            if psp:
                event["psp"] = psp
                event["reference"] = f"{psp[:2]}_{rng.getrandbits(48):012x}"
            outcome = self.apply(event)
            if outcome is not None:
                self.follow(sub_id, outcome, at)
                self.period_choices(sub_id, at)
            return
        reason = rng.choice(_DECLINES)
        outcome = self.apply({"type": "payment_failed", "at": _iso(at), "subscription": sub_id,
                              "reason": reason})
        if outcome is None:
            return
        decision = _decision(outcome, sub_id)
        if decision is not None:
            if decision.retry_at is not None:
                self.tick_on(decision.retry_at)
            if decision.grace_ends is not None:
                self.tick_on(decision.grace_ends)
                if decision.retry_at is None and rng.random() < P_RECOVER:
                    # no retry to wait for: the customer may fix the card within grace
                    days = max(1, (decision.grace_ends - at.date()).days)
                    self.attempt.add(sub_id)
                    self.push(at + dt.timedelta(days=rng.randint(0, days - 1),
                                                hours=rng.randint(1, 20)), _OTHER, "pay", sub_id)
            elif decision.retry_at is None:
                self.tick_on(at.date() + dt.timedelta(days=1))
        self.follow(sub_id, outcome, at)

    def do_tick(self, at: dt.datetime, _: str, day: dt.date) -> None:
        self.ticks.discard(day)
        outcome = self.apply({"type": "tick", "at": _iso(at)})
        if outcome is None:
            return
        for decision in outcome.decisions:
            sub_id = decision.subscription
            sub = self.sub(sub_id)
            if decision.next_charge is not None:
                self.next_charge[sub_id] = decision.next_charge
            if sub is None or sub.charge is None or sub_id in self.attempt:
                continue
            if decision.kind == "charge" and decision.retry_at is not None:
                self.attempt.add(sub_id)
                self.push(at + dt.timedelta(hours=self.rng.randint(1, 20)), _OTHER, "pay", sub_id)
            elif sub.dunning is None:
                self.follow(sub_id, outcome, at)
        for sub_id in sorted({d.subscription for d in outcome.decisions}):
            sub = self.sub(sub_id)
            if sub is not None and sub.charge is None and sub.status in _LIVE:
                self.queue_renewal(sub_id)

    def do_cancel(self, at: dt.datetime, sub_id: str, _: Any) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.status not in _LIVE or sub.cancel_at is not None:
            return
        outcome = self.apply({"type": "cancel_requested", "at": _iso(at), "subscription": sub_id})
        if outcome is not None:
            self.follow(sub_id, outcome, at)

    def do_change(self, at: dt.datetime, sub_id: str, target: str) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.status != "active" or sub.charge is not None \
                or sub.cancel_at is not None:
            return
        outcome = self.apply({"type": "plan_change_requested", "at": _iso(at),
                              "subscription": sub_id, "plan": target})
        if outcome is not None:
            self.follow(sub_id, outcome, at)

    def do_pause(self, at: dt.datetime, sub_id: str, _: Any) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.status != "active" or sub.charge is not None \
                or sub.cancel_at is not None:
            return
        outcome = self.apply({"type": "pause_requested", "at": _iso(at), "subscription": sub_id})
        if outcome is None:
            return
        paused = self.sub(sub_id)
        if paused is not None and paused.status == "paused":
            self.renewal.pop(sub_id, None)
            back = at + dt.timedelta(days=self.rng.randint(10, 60), hours=self.rng.randint(0, 23))
            if paused.resume_by is not None and back >= _at(paused.resume_by):
                self.tick_on(paused.resume_by)
            else:
                self.push(back, _OTHER, "resume", sub_id)

    def do_resume(self, at: dt.datetime, sub_id: str, _: Any) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.status != "paused":
            return
        outcome = self.apply({"type": "resume_requested", "at": _iso(at), "subscription": sub_id})
        if outcome is not None:
            self.follow(sub_id, outcome, at)

    def do_consent(self, at: dt.datetime, sub_id: str, kind: str) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.consent != "requested" or sub.status in ("canceled", "unpaid"):
            return
        outcome = self.apply({"type": kind, "at": _iso(at), "subscription": sub_id})
        if outcome is not None:
            self.follow(sub_id, outcome, at)

    def do_refund(self, at: dt.datetime, sub_id: str, _: Any) -> None:
        sub = self.sub(sub_id)
        if sub is None or sub.payment is None or sub.status in ("canceled", "unpaid") \
                or sub.payment.total - sub.payment.refunded <= 0:
            return
        self.apply({"type": "refund_requested", "at": _iso(at), "subscription": sub_id})


def _decision(outcome: Outcome, sub_id: str) -> Decision | None:
    return next((d for d in outcome.decisions if d.subscription == sub_id), None)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


_PLACEHOLDERS: dict[str, Callable[[], Any]] = {
    "int": lambda: 0, "decimal": lambda: str(Decimal(0)), "string": lambda: "",
    "bool": lambda: False, "date": lambda: "2000-01-01"}


def _placeholder(kind: str) -> Any:
    return _PLACEHOLDERS.get(kind, lambda: None)()
