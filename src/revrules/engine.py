"""The evaluator: ``Engine.apply(state, event) -> Outcome``.

Each event runs in a transaction (:class:`_Tx`) over the immutable state; it either
commits a new state with its decisions and revenue events, or fails with a clean
error and leaves the state exactly as it was. Rules run as compiled functions
(:mod:`revrules.compiler`); prices, promotions and contracts come from tables the
:class:`~revrules.ruleset.Ruleset` built once. Time comes only from events.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import immutables

from . import model as m
from . import runtime as rt
from .compiler import Ctx
from .diagnostics import did_you_mean, json_text, one_edit_away
from .events import EVENT_TYPES, Event, EventError, check_date, check_decimal, parse_event
from .results import Decision, Discount, Error, Outcome, RevenueEvent, Trace
from .ruleset import Ruleset
from .state import (AttachedPromotion, Charge, Dunning, Payment, Seen, State, Subscription,
                    evolve)

__all__ = ["Engine"]

ZERO = Decimal(0)
_NO_DISCOUNTS: tuple[Discount, ...] = ()


@attrs.frozen
class Quote:
    """A priced charge before it becomes a decision."""

    currency: str
    list: Decimal
    discounts: tuple[Discount, ...]
    credit: Decimal
    tax: Decimal
    net: Decimal
    total: Decimal
    psp: str | None
    gross_ex: Decimal
    discount_ex: Decimal
    credit_ex: Decimal
    trace: tuple[Trace, ...]
    # the recurring price this charge implies: list less recurring discounts, tax-exclusive
    # (what MRR counts; meaningless for a proration, whose list is a part of a period)
    recurring: Decimal = ZERO

    @property
    def discount(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)


class Engine:
    """Applies events to a state under one ruleset.

    >>> import revrules
    >>> rules = revrules.load_text('''
    ... ruleset demo
    ... storefront web { channel web currency EUR tax inclusive psp stripe }
    ... product p { entitlements hd }
    ... plan monthly { product p  every 1 month  price web EUR 9.99 }
    ... tax vat { rate 19% }
    ... ''')
    >>> engine = revrules.Engine(rules)
    >>> out = engine.apply(revrules.State(), {
    ...     "id": "e1", "type": "checkout", "at": "2027-01-31", "subscription": "s1",
    ...     "storefront": "web", "plan": "monthly", "customer": {"id": "c1"}})
    >>> d = out.decisions[0]
    >>> d.total, d.tax, d.net, d.next_charge
    (Decimal('9.99'), Decimal('1.60'), Decimal('8.39'), datetime.date(2027, 2, 28))
    >>> [e.type for e in out.events]
    ['subscription.started', 'entitlement.granted']
    >>> again = engine.apply(out.state, {
    ...     "id": "e1", "type": "checkout", "at": "2027-01-31T00:00:00Z", "subscription": "s1",
    ...     "storefront": "web", "plan": "monthly", "customer": {"id": "c1"}})
    >>> again.replayed, again.state is out.state
    (True, True)
    >>> engine.apply(out.state, {"id": "e1", "type": "tick", "at": "2027-02-01"}).error.code
    'id_conflict'
    """

    #: How far back from the newest applied event ids are remembered (docs/semantics.md).
    REPLAY_WINDOW = dt.timedelta(days=400)

    def __init__(self, ruleset: Ruleset, *, payment_tolerance: Decimal = ZERO,
                 replay_window: dt.timedelta | None = None):
        """``payment_tolerance``: how far a payment event's ``amount`` may be from the open
        charge's total and still settle it (for the decided total); 0 by default.
        ``replay_window``: how long event ids are surely remembered (400 days)."""
        if not isinstance(payment_tolerance, Decimal) or not payment_tolerance.is_finite() \
                or payment_tolerance < 0:
            raise ValueError("payment_tolerance is a non-negative Decimal")
        self.payment_tolerance = payment_tolerance
        self.rules = ruleset
        self.replay_window = self.REPLAY_WINDOW if replay_window is None else replay_window
        if self.replay_window < dt.timedelta(0):
            raise ValueError("the replay window cannot be negative")
        self.model = ruleset.model
        self.tz = ruleset.model.timezone
        self.rounding = ruleset.rounding
        self.attributes = {a.name: a for a in ruleset.model.attributes}
        self._traces: dict[tuple[str, int], Trace] = {}

    def trace(self, rule: str, span: m.Span) -> Trace:
        """The (shared, immutable) trace entry citing ``rule`` at ``span``."""
        key = (rule, id(span))  # spans live as long as the ruleset this engine holds
        found = self._traces.get(key)
        if found is None:
            found = self._traces[key] = Trace(rule, _where(span))
        return found

    def apply(self, state: State, event: Event | Mapping[str, Any]) -> Outcome:
        """Apply one event; never raises (the outcome says what was wrong).

        An exception that is not a clean error of the event (a defect, or input nothing
        else caught) becomes ``ok: false`` with the code ``internal_error``, a message
        naming the exception's type, and the state exactly as it was.
        """
        try:
            return self._apply(state, event)
        except Exception as exc:  # noqa: BLE001 - the safety net: nothing escapes apply
            return Outcome(_event_id(event), False, state, error=Error(
                "internal_error", f"internal error ({type(exc).__name__}) while applying "
                "this event; nothing was changed"))

    def _apply(self, state: State, event: Event | Mapping[str, Any]) -> Outcome:
        if not isinstance(event, Event):
            try:
                event = parse_event(event)
            except EventError as exc:
                event_id = event.get("id") if isinstance(event, Mapping) else None
                return Outcome(str(event_id) if event_id is not None else "", False, state,
                               error=Error(exc.code, exc.message))
        digest = payload_digest(event)
        seen = state.applied.get(event.id)
        if seen is not None:
            if seen.digest and seen.digest != digest:  # "": from a state without digests
                return Outcome(event.id, False, state, error=Error(
                    "id_conflict", f"event id '{event.id}' was already used for another "
                    f"event (at {_when(seen.at)}); a replay must repeat the event exactly"))
            if seen.code is None:
                return Outcome(event.id, True, state, replayed=True)
            return Outcome(event.id, False, state,
                           error=Error(seen.code, seen.message or seen.code))
        state = self.adopt(state)
        try:
            # every Decimal operation uses the engine's explicit context, never the caller's
            with decimal.localcontext(rt.CONTEXT):
                tx = _Tx(self, state, event)
                tx.run()
                new_state = tx.commit(digest)
        except _Unserved as exc:
            # not remembered: the ruleset, not the event, is at fault, and a version that
            # serves the subscription (`formerly`) must be able to apply the event
            return Outcome(event.id, False, state, error=Error(exc.code, exc.message))
        except (EventError, rt.EvaluationError) as exc:
            error = Error(exc.code, exc.message)
            # the refusal is remembered, so that a replay of the event is refused the same way
            return Outcome(event.id, False, self.remember(
                state, event.id, Seen(digest, event.at, exc.code, exc.message), state.clock),
                error=error)
        return Outcome(event.id, True, new_state, tuple(tx.decisions), tuple(tx.events))

    def remember(self, state: State, event_id: str, seen: Seen,
                 clock: dt.datetime | None) -> State:
        """``state`` with ``event_id`` remembered, pruned to the replay window when it is due."""
        applied, limit = _remember(state.applied, state.applied_limit, event_id, seen, clock,
                                   self.replay_window)
        return evolve(state, applied=applied, applied_limit=limit)

    def adopt(self, state: State) -> State:
        """``state`` under this ruleset: subscriptions of renamed (``formerly``) plans and
        storefronts carry the new names, and the state carries this ruleset's stamp."""
        stamp = self.rules.stamp
        if state.ruleset is stamp:
            return state
        subs = state.subscriptions
        plans, storefronts = self.rules.former_plans, self.rules.former_storefronts
        if plans or storefronts:
            with subs.mutate() as changed:
                for sub in subs.values():
                    renamed = _renamed(sub, plans, storefronts)
                    if renamed is not sub:
                        changed[sub.id] = renamed
                subs = changed.finish()
        return evolve(state, subscriptions=subs, ruleset=stamp)

    def cannot_serve(self, sub: Subscription) -> Error | None:
        """Why this ruleset cannot serve ``sub`` (an unknown plan, storefront, ...), or None."""
        rules = self.rules
        if sub.storefront not in rules.storefronts:
            return Error("unknown_storefront", f"subscription '{sub.id}' is on storefront "
                         f"'{sub.storefront}', which ruleset {rules.name} does not have"
                         f"{did_you_mean(sub.storefront, rules.storefronts)} (a storefront "
                         f"that replaces it can say 'formerly {sub.storefront}')")
        for plan in (sub.plan, sub.pending_plan):
            if plan is not None and plan not in rules.plans:
                return Error("unknown_plan", f"subscription '{sub.id}' is on plan '{plan}', "
                             f"which ruleset {rules.name} does not have"
                             f"{did_you_mean(plan, rules.plans)} (a plan that replaces it "
                             f"can say 'formerly {plan}')")
        if sub.dunning is not None and not any(p.name == sub.dunning.policy
                                               for p, _, _ in rules.dunning):
            return Error("unknown_dunning", f"subscription '{sub.id}' is in dunning policy "
                         f"'{sub.dunning.policy}', which ruleset {rules.name} does not have")
        for promo in sub.promotions:
            if promo.name not in rules.promotions:
                return Error("unknown_promotion", f"subscription '{sub.id}' has promotion "
                             f"'{promo.name}', which ruleset {rules.name} does not have")
        return None

    def verify(self, state: State) -> str | None:
        """The first inconsistency between ``state`` and this ruleset, or None: the due
        index must name exactly the date ``tick`` would find for every subscription the
        ruleset can serve (:func:`revrules.wire.validate_state` checks the rest)."""
        state = self.adopt(state)
        tx = _Tx(self, state, Event("verify", "tick", state.clock or _EPOCH))
        with decimal.localcontext(rt.CONTEXT):
            for sub_id in sorted(state.subscriptions.keys()):
                sub = state.subscriptions[sub_id]
                if self.cannot_serve(sub) is not None:
                    continue
                try:
                    item = tx.next_due(sub)
                    upcoming = tx.next_charge(sub)
                except (ArithmeticError, ValueError, OverflowError, rt.EvaluationError) as exc:
                    return f"$.subscriptions.{sub_id}: its dates cannot be computed ({exc})"
                if not _FIRST_DAY <= upcoming <= _LAST_DAY:
                    return (f"$.subscriptions.{sub_id}.index: the next charge would be on "
                            f"{upcoming.isoformat()}")
                expected = item[0] if item is not None else None
                if state.due.get(sub_id) != expected:
                    found = state.due.get(sub_id)
                    return (f"$.due.{sub_id}: {found.isoformat() if found else 'missing'}, but "
                            f"{'nothing is due' if expected is None else expected.isoformat()}"
                            " for that subscription")
        return None

    def unservable(self, state: State) -> list[tuple[str, Error]]:
        """Every subscription of ``state`` this ruleset cannot serve, by id, with the reason."""
        state = self.adopt(state)
        out = []
        for sub_id in sorted(state.subscriptions.keys()):
            error = self.cannot_serve(state.subscriptions[sub_id])
            if error is not None:
                out.append((sub_id, error))
        return out

    def run(self, events: Iterable[Event | Mapping[str, Any]],
            state: State | None = None) -> tuple[State, list[Outcome]]:
        """Apply events in order; return the final state and every outcome."""
        current = state if state is not None else State()
        outcomes = []
        for event in events:
            outcome = self.apply(current, event)
            current = outcome.state
            outcomes.append(outcome)
        return current, outcomes


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIRST_DAY, _LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)  # as a state file holds
#: ``applied`` is never pruned below this many ids (pruning is a scan: amortised over them)
_PRUNE_MIN = 4096


def _remember(applied: immutables.Map[str, Seen], limit: int, event_id: str, seen: Seen,
              clock: dt.datetime | None,
              window: dt.timedelta) -> tuple[immutables.Map[str, Seen], int]:
    """``applied`` with ``event_id``; when it has grown past ``limit``, the ids of events
    dated before ``clock - window`` are dropped
    and the next limit is twice what is left, so the scans cost O(1) per event. An id
    dated within ``window`` of the newest event is always kept."""
    applied = applied.set(event_id, seen)
    if len(applied) <= max(limit, _PRUNE_MIN) or clock is None:
        return applied, limit
    cutoff, ahead = clock - window, clock + window
    with applied.mutate() as kept:
        for key, value in applied.items():
            # a refusal dated more than a window after every applied event is dropped too,
            # or refused events from the far future would be kept for ever
            if value.at < cutoff or (value.code is not None and value.at > ahead):
                del kept[key]
        applied = kept.finish()
    return applied, max(_PRUNE_MIN, 2 * len(applied))


def payload_digest(event: Event) -> str:
    """The digest of an event's canonical payload: every field but its id, as parsed (so a
    date and its midnight UTC datetime, or ``"4.0"`` and ``"4.00"``, are the same)."""
    parts: list[Any] = []
    for field in attrs.fields(Event):
        if field.name == "id":
            continue
        value = getattr(event, field.name)
        if value is None:
            continue
        parts.append([field.name, _canonical(value)])
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      default=_canonical)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        number = "".join(map(str, digits)).lstrip("0")
        stripped = number.rstrip("0")
        exponent += len(number) - len(stripped)
        return f"{'-' if sign else ''}{stripped or '0'}e{exponent if stripped else 0}"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def _renamed(sub: Subscription, plans: Mapping[str, str],
             storefronts: Mapping[str, str]) -> Subscription:
    plan = plans.get(sub.plan, sub.plan)
    pending = plans.get(sub.pending_plan, sub.pending_plan) if sub.pending_plan else None
    storefront = storefronts.get(sub.storefront, sub.storefront)
    if plan == sub.plan and pending == sub.pending_plan and storefront == sub.storefront:
        return sub
    return evolve(sub, plan=plan, pending_plan=pending, storefront=storefront)


class _Unserved(EventError):
    """An event about a subscription the ruleset cannot serve (:meth:`Engine.cannot_serve`)."""


def _fail(code: str, message: str) -> EventError:
    return EventError(code, message)


def _event_id(event: object) -> str:
    """The id of an event for an outcome, whatever the event is."""
    try:
        found = event.id if isinstance(event, Event) else (
            event.get("id") if isinstance(event, Mapping) else None)
        return "" if found is None else str(found)
    except Exception:  # noqa: BLE001 - a mapping whose get raises
        return ""


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Tx:
    """One event's work over a copy-on-write view of the state."""

    def __init__(self, engine: Engine, state: State, event: Event):
        self.engine = engine
        self.rules = engine.rules
        self.state = state
        self.event = event
        self.tz = engine.tz
        self.rounding = engine.rounding
        self.subs = state.subscriptions
        self.due = state.due
        self.redemptions = state.redemptions
        self.customer_redemptions = state.customer_redemptions
        self.decisions: list[Decision] = []
        self.events: list[RevenueEvent] = []
        self.day = rt.local_date(event.at, self.tz)

    # -- plumbing ----------------------------------------------------------------------
    def run(self) -> None:
        self.check_order()
        _HANDLERS[self.event.type](self)

    def check_order(self) -> None:
        """LANGUAGE.md §5.1 "Time order": nothing before the last tick, nothing before the
        last event of its subscription; a tick is compared only with the last tick."""
        ev = self.event
        last_tick = self.state.last_tick
        if last_tick is not None and ev.at < last_tick:
            raise _fail("out_of_order", f"{ev.type} at {_time(ev.at)} is before the last "
                        f"tick, at {_time(last_tick)}")
        if ev.subscription is None or ev.type == "tick":
            return
        last = self.state.last_event.get(ev.subscription)
        if last is not None and ev.at < last:
            raise _fail("out_of_order", f"{ev.type} at {_time(ev.at)} is before the last "
                        f"event of subscription '{ev.subscription}', at {_time(last)}")

    def commit(self, digest: str) -> State:
        ev = self.event
        clock = self.state.clock
        if clock is None or ev.at > clock:
            clock = ev.at
        last_tick = ev.at if ev.type == "tick" else self.state.last_tick
        last_event = self.state.last_event
        if ev.subscription is not None and ev.subscription in self.subs and \
                last_event.get(ev.subscription) != ev.at:
            last_event = last_event.set(ev.subscription, ev.at)
        applied, limit = _remember(self.state.applied, self.state.applied_limit, ev.id,
                                   Seen(digest, ev.at), clock, self.engine.replay_window)
        return State(self.subs, self.redemptions, self.customer_redemptions, applied, clock,
                     self.due, last_event, last_tick, self.state.ruleset, limit)

    def check_precision(self, amount: Decimal, currency: str) -> None:
        if rt.quantize(amount, currency) != amount:
            places = -int(rt.exponent(currency).as_tuple().exponent)
            raise _fail("bad_precision", f"{currency} amounts have at most {places} decimals, "
                        f"found {amount}")

    def check_payment(self, sub: Subscription, charge: Charge) -> None:
        """A payment event's ``currency``, ``amount`` and ``psp``, where given, must be
        the open charge's: its currency, its total (within the engine's tolerance, 0 by
        default: partial payments are refused) and its PSP or dunning's `retry via` PSP."""
        ev = self.event
        if ev.currency is not None and ev.currency.upper() != charge.currency:
            raise _fail("currency_mismatch", f"the payment is in {ev.currency} but the open "
                        f"charge of subscription '{sub.id}' is in {charge.currency}")
        if ev.amount is not None:
            self.check_precision(ev.amount, charge.currency)
            if abs(ev.amount - charge.total) > self.engine.payment_tolerance:
                raise _fail("amount_mismatch", f"the payment of "
                            f"{rt.money_str(ev.amount, charge.currency)} {charge.currency} "
                            f"does not match the open charge of subscription '{sub.id}', "
                            f"{rt.money_str(charge.total, charge.currency)} "
                            f"{charge.currency} (partial payments are not supported)")
        if ev.psp is not None:
            psps = [charge.psp] if charge.psp is not None else list(
                self.rules.storefronts[sub.storefront].psps)
            if sub.dunning is not None and sub.dunning.via and sub.dunning.via not in psps:
                psps.append(sub.dunning.via)
            if ev.psp not in psps:
                expected = " or ".join(psps) if psps else "no PSP"
                raise _fail("unknown_psp", f"the payment came through '{ev.psp}', but the open "
                            f"charge of subscription '{sub.id}' goes through {expected}")

    def put(self, sub: Subscription) -> Subscription:
        """Store ``sub`` and keep the due index (what ``tick`` looks at) in step."""
        self.subs = self.subs.set(sub.id, sub)
        item = self.next_due(sub)
        day = item[0] if item is not None else None
        if self.due.get(sub.id) != day:
            self.due = self.due.delete(sub.id) if day is None else self.due.set(sub.id, day)
        return sub

    def emit(self, kind: str, sub: Subscription, *, at: dt.datetime | None = None,
             rule: str | None = None, source: Any = None, **fields: Any) -> None:
        sf = self.rules.storefronts[sub.storefront]
        self.events.append(RevenueEvent(
            id=f"{self.event.id}.{len(self.events) + 1}", type=kind, at=at or self.event.at,
            subscription=sub.id, customer=sub.customer_id, storefront=sf.name,
            channel=sf.channel, plan=sub.plan, currency=sf.currency, rule=rule,
            source=_where(source) if source is not None else None,
            ruleset=self.rules.name, version=self.rules.version, **fields))

    def subscription(self) -> Subscription:
        sub_id = self.event.subscription
        assert sub_id is not None
        sub = self.subs.get(sub_id)
        if sub is None:
            raise _fail("unknown_subscription", f"unknown subscription '{sub_id}'"
                        f"{did_you_mean(sub_id, self._nearby_ids(sub_id))}")
        error = self.engine.cannot_serve(sub)
        if error is not None:
            raise _Unserved(error.code, error.message)
        return sub

    def _nearby_ids(self, sub_id: str) -> list[str]:
        # bounded: look up the ids one typo away, never scan (or sort) every id
        return one_edit_away(sub_id, self.subs.__contains__)

    def at_time(self, day: dt.date) -> dt.datetime:
        return rt.start_of(day, self.tz)

    def ctx(self, sub: Subscription, cycle: int | None = None) -> Ctx:
        """What rules see: ``subscription.cycle`` is ``cycle`` when pricing a charge (the
        cycle being charged), else the charged periods so far."""
        return Ctx(sub.customer, sub.customer_id, self.rules.storefronts[sub.storefront],
                   self.rules.plans[sub.plan], sub.cycle if cycle is None else cycle,
                   sub.status, self.event.at, self.event.type, None, self.event.reason,
                   self.event.attempt or 0, self.event.psp)

    def next_charge(self, sub: Subscription) -> dt.date:
        return rt.add_periods(sub.anchor, self.rules.plans[sub.plan].every, sub.index)

    def period(self, sub: Subscription, index: int) -> tuple[dt.date, dt.date]:
        every = self.rules.plans[sub.plan].every
        return rt.add_periods(sub.anchor, every, index), rt.add_periods(sub.anchor, every,
                                                                          index + 1)

    # -- pricing -----------------------------------------------------------------------
    def price_entry(self, plan: str, storefront: str, day: dt.date,
                    existing: bool) -> m.PriceEntry | None:
        found = None
        for entry in self.rules.prices.get((plan, storefront), ()):
            start = entry.existing if existing else entry.effective
            if start is None or start <= day:
                found = entry
        return found

    def contract(self, customer_id: str, plan: str, day: dt.date) -> m.Contract | None:
        for c in self.rules.contracts.get((customer_id, plan), ()):
            if c.valid_from <= day <= c.valid_to:
                return c
        return None

    def quote(self, sub: Subscription, list_amount: Decimal, discounts: tuple[Discount, ...],
              credit: Decimal, cycle: int, trace: list[Trace]) -> Quote:
        rules = self.rules
        sf = rules.storefronts[sub.storefront]
        currency, mode = sf.currency, self.rounding
        # quantize the inputs once; every figure below is then a sum or difference of
        # amounts in the currency's minor units, or rounded to them where it is computed
        zero = rt.quantize(ZERO, currency)
        list_amount = rt.quantize(list_amount, currency)
        credit = rt.quantize(credit, currency)
        discount = sum((d.amount for d in discounts), zero)
        amount = list_amount - discount - credit
        if amount < 0:
            amount = zero
        ctx = self.ctx(sub, cycle)
        rates = self.tax_rates(ctx, trace)
        if sf.tax_inclusive:
            # the tax is computed once, on the amount charged; the discount and the credit
            # are split with the same rate, and gross is their sum with the net, so that a
            # rounding residue never shows as a discount (LANGUAGE.md §5.1)
            tax = self._inner_tax(amount, rates, currency) or zero
            net, total = amount - tax, amount
            discount_ex = discount - self._inner_tax(discount, rates, currency)
            credit_ex = credit - self._inner_tax(credit, rates, currency)
            gross_ex = net + discount_ex + credit_ex
        else:
            tax = zero
            for r in rates:
                tax += rt.percent_of(amount, r, currency, mode)
            net, total = amount, amount + tax
            gross_ex, credit_ex, discount_ex = list_amount, credit, discount
        recurring = self.recurring_net(list_amount, discounts, rates, sub.storefront)
        ctx.total = rt.Money(currency, total)
        psp = None
        for route, test in rules.route:
            if route.psp in sf.psps and (test is None or test(ctx)):
                psp = route.psp
                trace.append(self.engine.trace(route.rule.name, route.rule.span))
                break
        if psp is None and sf.psps:
            psp = sf.psps[0]
            trace.append(self.engine.trace(f"storefront {sf.name} psp", sf.span))
        return Quote(currency, list_amount, discounts, credit, tax, net, total, psp, gross_ex,
                     discount_ex, credit_ex, tuple(trace), recurring)

    def tax_rates(self, ctx: Ctx, trace: list[Trace]) -> list[Decimal]:
        """Each tax table's first rate whose condition holds (cited in ``trace``)."""
        rates: list[Decimal] = []
        for table in self.rules.taxes:
            for rate, test in table:
                if test is None or test(ctx):
                    rates.append(rate.rate)
                    trace.append(self.engine.trace(rate.rule.name, rate.rule.span))
                    break
        return rates

    def tax_exclusive(self, amount: Decimal, rates: list[Decimal], storefront: str) -> Decimal:
        """``amount`` as the ruleset states it, without tax (split out on an inclusive
        storefront with the rates of the charge, exactly as a charge of it is split)."""
        sf = self.rules.storefronts[storefront]
        amount = rt.quantize(amount, sf.currency)
        if not sf.tax_inclusive:
            return amount
        return amount - self._inner_tax(amount, rates, sf.currency)

    def recurring_net(self, list_amount: Decimal, discounts: tuple[Discount, ...],
                      rates: list[Decimal], storefront: str) -> Decimal:
        """The recurring price per period: the list price less the discounts that recur (a
        promotion for more than one cycle, or forever), tax-exclusive."""
        promotions = self.rules.promotions
        off = sum((d.amount for d in discounts if _recurs(promotions.get(d.rule))), ZERO)
        return self.tax_exclusive(max(list_amount - off, ZERO), rates, storefront)

    def recurring_price(self, sub: Subscription, day: dt.date) -> Decimal:
        """What ``sub`` will recur at from its next charge, as known now (its price and the
        promotions attached to it): what MRR counts after a plan change."""
        cycle = sub.cycle + 1
        discounts: tuple[Discount, ...] = _NO_DISCOUNTS
        if sub.contract is None:
            chosen = self.choose_promotions(sub, sub.price, cycle, day, None, [],
                                            automatic=False)
            discounts = tuple(Discount(p.name, amount) for p, amount, _ in chosen)
        rates = self.tax_rates(self.ctx(sub, cycle), [])
        return self.recurring_net(sub.price, discounts, rates, sub.storefront)

    def _inner_tax(self, amount: Decimal, rates: list[Decimal], currency: str) -> Decimal:
        """The tax inside a tax-inclusive amount: Σ round(amount × r / (1 + Σr)), one
        rounding per tax table."""
        if not rates or not amount:
            return ZERO
        if len(rates) == 1:
            return rt.split_inclusive(amount, rates[0], currency, self.rounding)
        combined = sum(rates, ZERO)
        return sum((rt.split_inclusive(amount, r, currency, self.rounding, combined)
                    for r in rates), ZERO)

    # -- promotions --------------------------------------------------------------------
    def promotion_refusal(self, p: m.Promotion, sub: Subscription, cycle: int,
                          day: dt.date) -> str | None:
        """Why promotion ``p`` cannot be redeemed now, or None."""
        sf = self.rules.storefronts[sub.storefront]
        if p.plans is not None and sub.plan not in p.plans:
            return f"{p.name} does not apply to plan {sub.plan}"
        if p.storefronts is not None and sub.storefront not in p.storefronts:
            return f"{p.name} is not offered in storefront {sub.storefront}"
        if p.currency is not None and p.currency != sf.currency:
            return f"{p.name} takes {p.currency} off but {sf.name} sells in {sf.currency}"
        if (p.valid_from and day < p.valid_from) or (p.valid_to and day > p.valid_to):
            return f"{p.name} not valid on {day}"
        test = self.rules.promotion_tests[p.name]
        if test is not None and p.condition is not None and not test(self.ctx(sub, cycle)):
            return f"{p.name} requires {self.rules.source_text(p.condition)}"
        if p.limit_total is not None and self.redemptions.get(p.name, 0) >= p.limit_total:
            return f"{p.name} is exhausted ({p.limit_total} redemptions)"
        if p.limit_per_customer is not None and self.customer_redemptions.get(
                _redemption_key(p.name, sub.customer_id), 0) >= p.limit_per_customer:
            return f"{p.name} already redeemed by {sub.customer_id}"
        return None

    def discount_of(self, p: m.Promotion, list_amount: Decimal, currency: str) -> Decimal:
        if p.kind == "percent":
            return rt.percent_of(list_amount, p.value, currency, self.rounding)
        return min(p.value, list_amount)

    def choose_promotions(self, sub: Subscription, list_amount: Decimal, cycle: int,
                          day: dt.date, code: str | None, reasons: list[str],
                          automatic: bool = True) -> list[tuple[m.Promotion, Decimal, bool]]:
        """The promotions that discount this charge: (promotion, amount, newly redeemed)."""
        rules = self.rules
        currency = rules.storefronts[sub.storefront].currency
        candidates: list[tuple[m.Promotion, Decimal, bool]] = []
        attached = {a.name: a for a in sub.promotions}
        for a in sub.promotions:
            p = rules.promotions[a.name]
            if p.plans is not None and sub.plan not in p.plans:
                continue  # the subscription changed to a plan the promotion does not cover
            if a.first_cycle <= cycle and (a.last_cycle is None or cycle <= a.last_cycle):
                test = rules.promotion_tests[p.name]
                if p.automatic and test is not None and not test(self.ctx(sub, cycle)):
                    continue
                candidates.append((p, self.discount_of(p, list_amount, currency), False))
        code_promo = None
        if code is not None:
            code_promo = rules.codes.get(code.upper())
            if code_promo is None:
                reasons.append(f"unknown promotion code \"{code}\""
                               f"{did_you_mean(code.upper(), rules.codes)}")
            elif code_promo.name in attached:
                reasons.append(f"{code_promo.name} is already applied")
                code_promo = None
            else:
                refusal = self.promotion_refusal(code_promo, sub, cycle, day)
                if refusal:
                    reasons.append(refusal)
                    code_promo = None
                else:
                    candidates.append((code_promo, self.discount_of(
                        code_promo, list_amount, currency), True))
        for p in rules.automatic.get((sub.plan, sub.storefront), ()) if automatic else ():
            if p.name in attached:
                continue
            if self.promotion_refusal(p, sub, cycle, day) is None:
                candidates.append((p, self.discount_of(p, list_amount, currency), True))
        if not candidates:
            return []
        single = [c for c in candidates if not c[0].stackable]
        chosen = [c for c in candidates if c[0].stackable]
        if single:
            best = min(single, key=lambda c: (-c[1], c[0].order))
            chosen.append(best)
            for c in single:
                # a rejected candidate: the code, or an automatic promotion that lost to it
                if c is not best and c[2] and code_promo is not None and (
                        c[0] is code_promo or best[0] is code_promo):
                    reasons.append(f"{c[0].name} outbid by {best[0].name}")
        chosen.sort(key=lambda c: c[0].order)
        # never discount below zero
        remaining = list_amount
        result = []
        for p, amount, new in chosen:
            amount = min(amount, remaining)
            remaining -= amount
            result.append((p, amount, new))
        return result

    def redeem(self, sub: Subscription, p: m.Promotion, cycle: int) -> AttachedPromotion:
        count = self.redemptions.get(p.name, 0) + 1
        self.redemptions = self.redemptions.set(p.name, count)
        key = _redemption_key(p.name, sub.customer_id)
        self.customer_redemptions = self.customer_redemptions.set(
            key, self.customer_redemptions.get(key, 0) + 1)
        self.emit("campaign.applied", sub, rule=p.name, source=p.span)
        if p.limit_total is not None and count == p.limit_total:
            self.emit("promo.exhausted", sub, rule=p.name, source=p.span)
        last = None if p.cycles is None else cycle + p.cycles - 1
        return AttachedPromotion(p.name, cycle, last)

    def apply_promotions(self, sub: Subscription, list_amount: Decimal, cycle: int,
                         day: dt.date, code: str | None, reasons: list[str],
                         trace: list[Trace],
                         automatic: bool = True) -> tuple[Subscription, tuple[Discount, ...]]:
        chosen = self.choose_promotions(sub, list_amount, cycle, day, code, reasons, automatic)
        attached = list(sub.promotions)
        discounts = []
        for p, amount, new in chosen:
            if new:
                attached.append(self.redeem(sub, p, cycle))
            discounts.append(Discount(p.name, amount))
            trace.append(self.engine.trace(p.name, p.span))
        if len(attached) != len(sub.promotions):
            sub = evolve(sub, promotions=tuple(attached))
        return sub, tuple(discounts)

    # -- charges -----------------------------------------------------------------------
    def open_charge(self, sub: Subscription, quote: Quote, kind: str, start: dt.date,
                    end: dt.date, rule: str, source: Any, **changes: Any) -> Subscription:
        """Record a decided charge (settled at once when it is zero); apply ``changes``.

        The charge gets the id :meth:`charge_id` gave before it was opened."""
        charge = Charge(kind, self.event.at, start, end, quote.currency, quote.list,
                        quote.discount, quote.credit, quote.tax, quote.net, quote.total,
                        quote.psp, quote.gross_ex, quote.discount_ex, quote.credit_ex, rule,
                        _where(source), quote.discounts, self.charge_id(sub))
        changes["charge_count"] = sub.charge_count + 1
        if quote.total == 0:
            return self.settle(evolve(sub, **changes) if changes else sub, charge,
                               self.event.at, quote.psp)
        return evolve(sub, charge=charge, **changes)

    def charge_id(self, sub: Subscription) -> str:
        """The id the next charge of ``sub`` gets: ``SUB:N`` for its N-th charge."""
        return f"{sub.id}:{sub.charge_count + 1}"

    def settle(self, sub: Subscription, charge: Charge, at: dt.datetime,
               psp: str | None) -> Subscription:
        sf = self.rules.storefronts[sub.storefront]
        commission = rt.percent_of(charge.net, sf.commission, sf.currency, self.rounding)
        self.emit("payment.succeeded", sub, at=at, rule=charge.rule, source=charge.source,
                  gross=charge.gross_ex, discount=charge.discount_ex, credit=charge.credit_ex,
                  tax=charge.tax, net=charge.net, amount=charge.total, commission=commission,
                  psp=psp or charge.psp, charge=charge.id)
        payment = Payment(at, charge.period_start, charge.period_end, charge.currency,
                          charge.total, charge.tax, ZERO, psp or charge.psp,
                          charge.list - charge.discount, charge.id)
        # every paid charge stays refundable by its id; the latest is ``payment``
        earlier = sub.earlier_payments if sub.payment is None else (
            *sub.earlier_payments, sub.payment)
        return evolve(sub, charge=None, payment=payment, dunning=None, earlier_payments=earlier)

    def decision(self, sub: Subscription, kind: str, quote: Quote | None = None,
                 **fields: Any) -> None:
        if quote is not None:
            fields.update(currency=quote.currency, list=quote.list, discounts=quote.discounts,
                          credit=quote.credit, tax=quote.tax, net=quote.net, total=quote.total,
                          psp=quote.psp, trace=quote.trace + tuple(fields.pop("trace", ())))
        else:
            fields.setdefault("currency", self.rules.storefronts[sub.storefront].currency)
        fields.setdefault("next_charge", None if sub.status == "canceled"
                          else self.next_charge(sub))
        self.decisions.append(Decision(sub.id, kind, **fields))  # type: ignore[arg-type]

    def set_entitlements(self, sub: Subscription, wanted: tuple[str, ...], rule: str,
                         source: Any, at: dt.datetime | None = None) -> Subscription:
        revoked = tuple(e for e in sub.entitlements if e not in wanted)
        granted = tuple(e for e in wanted if e not in sub.entitlements)
        if revoked:
            self.emit("entitlement.revoked", sub, at=at, rule=rule, source=source,
                      entitlements=revoked)
        if granted:
            self.emit("entitlement.granted", sub, at=at, rule=rule, source=source,
                      entitlements=granted)
        return evolve(sub, entitlements=wanted)

    # -- checkout ----------------------------------------------------------------------
    def on_checkout(self) -> None:
        ev, rules = self.event, self.rules
        assert ev.storefront and ev.plan and ev.subscription and ev.customer is not None
        sf = rules.storefronts.get(ev.storefront)
        if sf is None:
            raise _fail("unknown_storefront", f"unknown storefront '{ev.storefront}'"
                        f"{did_you_mean(ev.storefront, rules.storefronts)}")
        plan = rules.plans.get(ev.plan)
        if plan is None:
            raise _fail("unknown_plan", f"unknown plan '{ev.plan}'"
                        f"{did_you_mean(ev.plan, rules.plans)}")
        if ev.subscription in self.subs:
            raise _fail("duplicate_subscription",
                        f"subscription '{ev.subscription}' already exists")
        customer = self.customer(ev.customer)
        customer_id = ev.customer["id"]
        day = self.day
        contract = self.contract(customer_id, plan.name, day)
        if contract is not None and contract.currency != sf.currency:
            contract = None
        trace: list[Trace] = []
        reasons: list[str] = []
        if contract is not None:
            list_amount = contract.amount
            trace.append(self.engine.trace(f"contract {contract.name}", contract.span))
        else:
            if sf.name in plan.not_sold or (plan.name, sf.name) not in rules.prices:
                raise _fail("not_sold", f"plan '{plan.name}' is not sold in storefront "
                            f"'{sf.name}'")
            entry = self.price_entry(plan.name, sf.name, day, existing=False)
            if entry is None:
                first = rules.prices[(plan.name, sf.name)][0].effective
                raise _fail("not_sold", f"plan '{plan.name}' is not sold in storefront "
                            f"'{sf.name}' before {first}")
            list_amount = entry.amount
            trace.append(self.engine.trace(f"price {plan.name} {sf.name}", entry.span))
        sub = Subscription(ev.subscription, customer_id, immutables.Map(customer), sf.name,
                           plan.name, "active", day, 0, 0, list_amount,
                           contract.name if contract else None, started=day)

        trial_days, trial_granted = 0, False
        if plan.trial is not None:
            denied = self.eligibility(plan.trial.eligibility, sub, 1, trace)
            if denied:
                reasons.extend(f"{plan.trial.eligibility}: {r}" for r, _ in denied)
                rule = denied[0][1]
                self.emit("trial.blocked", sub, rule=plan.trial.eligibility, source=rule.span,
                          reasons=tuple(r for r, _ in denied))
            else:
                trial_granted = True
                anchor = rt.add(day, plan.trial.length)
                trial_days = (anchor - day).days
                sub = evolve(sub, status="trialing", anchor=anchor, trial_end=anchor)
                self.emit("trial.granted", sub, rule=f"plan {plan.name} trial",
                          source=plan.trial.span, date=anchor)
                trace.append(self.engine.trace(f"plan {plan.name} trial", plan.trial.span))

        if contract is not None:
            if ev.code:
                reasons.append(f"promotions do not apply to contract {contract.name}")
            discounts = _NO_DISCOUNTS
        elif trial_granted:
            # a code is redeemed at checkout and discounts the first charged cycles;
            # automatic promotions wait for the first charge
            sub, _ = self.apply_promotions(sub, list_amount, 1, day, ev.code, reasons, trace,
                                           automatic=False)
            discounts = _NO_DISCOUNTS
        else:
            sub, discounts = self.apply_promotions(sub, list_amount, 1, day, ev.code, reasons,
                                                   trace)
        if trial_granted:
            quote = self.quote(sub, ZERO, _NO_DISCOUNTS, ZERO, 1, trace)
        else:
            quote = self.quote(sub, list_amount, discounts, ZERO, 1, trace)
        charge_id = None if trial_granted else self.charge_id(sub)
        self.emit("subscription.started", sub, rule=f"plan {plan.name}", source=plan.span,
                  **({} if trial_granted else dict(_charged(quote, charge_id),
                                                    recurring=quote.recurring)))
        self.emit("entitlement.granted", sub, rule=f"plan {plan.name}", source=plan.span,
                  entitlements=plan.entitlements)
        due = rt.add(day, sf.terms) if sf.terms else None
        if trial_granted:
            sub = self.put(evolve(sub, entitlements=plan.entitlements))
            self.decision(sub, "charge", quote, trial_days=trial_days, reasons=tuple(reasons))
            return
        start, end = self.period(sub, 0)
        sub = self.open_charge(sub, quote, "checkout", start, end, trace[0].rule,
                               trace[0].source, index=1, cycle=1,
                               entitlements=plan.entitlements)
        self.put(sub)
        self.decision(sub, "charge", quote, due=due, reasons=tuple(reasons), charge=charge_id)

    def customer(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate customer attributes against the schema; apply defaults."""
        result: dict[str, Any] = {}
        for key in given:  # input order: the first unknown attribute is the one reported
            if key == "id":
                continue
            attr = self.engine.attributes.get(key)
            if attr is None:
                raise _fail("unknown_field", f"unknown customer attribute '{key}'"
                            f"{did_you_mean(key, self.engine.attributes)}")
            result[key] = _attribute_value(attr, given[key])
        for name, attr in self.engine.attributes.items():
            if name not in result:
                result[name] = attr.default
        return result

    def eligibility(self, name: str | None, sub: Subscription, cycle: int,
                    trace: list[Trace]) -> list[tuple[str, m.Rule]]:
        """Every deny reason that holds (all are collected, not only the first)."""
        if name is None:
            return []
        ctx = self.ctx(sub, cycle)
        denied = []
        for deny, test in self.rules.eligibility[name]:
            if test(ctx):
                denied.append((deny.reason, deny.rule))
                trace.append(self.engine.trace(name, deny.rule.span))
        return denied

    # -- payments ----------------------------------------------------------------------
    def on_payment_succeeded(self) -> None:
        sub = self.subscription()
        if sub.charge is None:
            raise _fail("no_open_charge", f"subscription '{sub.id}' has no open charge to pay")
        self.check_payment(sub, sub.charge)
        # paying a charge that dunning left open brings the subscription back; a pause the
        # customer asked for (paused_at set) stays a pause
        recovers = sub.status in ("past_due", "unpaid") or (
            sub.status == "paused" and sub.paused_at is None)
        charge_id = sub.charge.id
        sub = self.settle(sub, sub.charge, self.event.at, self.event.psp)
        if recovers:
            sub = evolve(sub, status="active")
            plan = self.rules.plans[sub.plan]
            sub = self.set_entitlements(sub, plan.entitlements, f"plan {plan.name}", plan.span)
        self.put(sub)
        self.decision(sub, "none", charge=charge_id)

    def dunning_policy(self, sub: Subscription) -> tuple[m.DunningPolicy | None, Any]:
        ctx = self.ctx(sub)
        fallback = None
        for policy, applies, no_retry in self.rules.dunning:
            if applies is None:
                if fallback is None:
                    fallback = (policy, no_retry)
            elif applies(ctx):
                return policy, no_retry
        return fallback if fallback else (None, None)

    def on_payment_failed(self) -> None:
        sub = self.subscription()
        charge = sub.charge
        if charge is None:
            raise _fail("no_open_charge", f"subscription '{sub.id}' has no open charge")
        self.check_payment(sub, charge)
        self.emit("payment.failed", sub, rule=charge.rule, source=charge.source,
                  amount=charge.total, psp=self.event.psp or charge.psp,
                  reasons=(self.event.reason,) if self.event.reason else (), charge=charge.id)
        if sub.dunning is not None:
            dunning = evolve(sub.dunning, attempts=sub.dunning.attempts + 1)
            sub = evolve(sub, dunning=dunning)
            if dunning.scheduled and not dunning.retries and (
                    dunning.grace_end is None or self.day >= dunning.grace_end):
                # the last retry failed and grace is over: nothing is left to wait for
                self.dunning_end(sub, self.event.at)
                return
            sub = self.put(sub)
            self.decision(sub, "none", retry_at=dunning.retries[0] if dunning.retries else None,
                          grace_ends=dunning.grace_end, charge=charge.id)
            return
        policy, no_retry = self.dunning_policy(sub)
        day = self.day
        sf = self.rules.storefronts[sub.storefront]
        reasons: list[str] = []
        trace: list[Trace] = []
        if policy is None:
            sub = self.put(evolve(sub, status="past_due"))
            self.decision(sub, "none", reasons=("no dunning policy applies",), charge=charge.id)
            return
        trace.append(self.engine.trace(f"dunning {policy.name}", policy.span))
        retries: tuple[dt.date, ...] = ()
        if sf.store_managed:
            reasons.append(f"{sf.channel}: the store retries the payment")
        elif no_retry is not None and no_retry(self.ctx(sub)):
            assert policy.no_retry is not None
            reasons.append(f"dunning {policy.name}: no retry when "
                           f"{self.rules.source_text(policy.no_retry)}")
            trace.append(self.engine.trace(f"dunning {policy.name} no retry",
                                           policy.no_retry.span))
        else:
            retries = tuple(rt.add(day, d) for d in policy.retries)
        grace_end = rt.add(day, policy.grace) if policy.grace else None
        # the `then` action never pre-empts a retry: a retry asked for on day D may be
        # paid on day D, so the action is due at the later of the grace end and D + 1
        ends = max([day, *([retries[-1] + dt.timedelta(days=1)] if retries else []),
                    *([grace_end] if grace_end else [])])
        # a 'retry via' PSP the storefront does not list is skipped, as route lines are
        via = policy.via if policy.via in sf.psps else charge.psp
        dunning = Dunning(policy.name, day, retries, grace_end, ends, 1, via, len(retries))
        sub = evolve(sub, status="past_due", dunning=dunning)
        for retry in retries:
            self.emit("payment.retry_scheduled", sub, rule=f"dunning {policy.name}",
                      source=policy.span, date=retry, psp=via, amount=charge.total,
                      charge=charge.id)
        if not policy.keep_entitlements:
            sub = self.set_entitlements(sub, (), f"dunning {policy.name}", policy.span)
        self.put(sub)
        self.decision(sub, "none", retry_at=retries[0] if retries else None,
                      grace_ends=grace_end, reasons=tuple(reasons), trace=tuple(trace),
                      charge=charge.id)

    # -- renewals ----------------------------------------------------------------------
    def on_renewal_due(self) -> None:
        sub = self.subscription()
        self.require_renewable(sub)
        if sub.charge is not None:
            raise _fail("past_due", f"subscription '{sub.id}' has an unpaid charge from "
                        f"{sub.charge.period_start}; settle it before the next renewal")
        due = self.next_charge(sub)
        if self.day != due:
            raise _fail("not_due", f"subscription '{sub.id}' renews on {due}, not {self.day}")
        self.renew(sub, due)

    def renew(self, sub: Subscription, day: dt.date) -> None:
        """Charge the period starting ``day`` (the subscription's next charge date)."""
        rules = self.rules
        at = max(self.event.at, self.at_time(day)) if self.event.type == "tick" else self.event.at
        if sub.cancel_at is not None and day >= sub.cancel_at:
            self.cancel(sub, at, "lifecycle cancel", rules.model.lifecycle.span)
            return
        if sub.status == "trialing":
            plan = rules.plans[sub.plan]
            self.emit("trial.expired", sub, at=at, rule=f"plan {plan.name} trial",
                      source=plan.trial.span if plan.trial else plan.span)
            sub = evolve(sub, status="active", trial_end=None)
        trace: list[Trace] = []
        if sub.pending_plan is not None:
            cadence = rules.plans[sub.plan].every
            sub = self.change_plan(sub, sub.pending_plan, at, day)
            if rules.plans[sub.plan].every != cadence:
                sub = evolve(sub, anchor=day, index=0)  # the new cadence starts today
        reasons: list[str] = []
        sub, list_amount = self.renewal_price(sub, day, at, trace, reasons)
        cycle = sub.cycle + 1
        if sub.contract is None:
            sub, discounts = self.apply_promotions(sub, list_amount, cycle, day, None, reasons,
                                                   trace)
        else:
            discounts = _NO_DISCOUNTS
        # a credit balance comes off the charge before anything is paid
        credit = min(sub.credit_balance, list_amount - sum((d.amount for d in discounts), ZERO))
        quote = self.quote(sub, list_amount, discounts, credit, cycle, trace)
        start, end = self.period(sub, sub.index)
        sub = evolve(sub, index=sub.index + 1, cycle=cycle)
        if quote.credit:
            sub = evolve(sub, credit_balance=sub.credit_balance - quote.credit)
            reasons.append(self.credit_note(quote.credit, sub))
        charge_id = self.charge_id(sub)
        self.emit("subscription.renewed", sub, at=at, rule=trace[0].rule, source=trace[0].source,
                  date=start, recurring=quote.recurring, **_charged(quote, charge_id))
        sub = self.open_charge(sub, quote, "renewal", start, end, trace[0].rule, trace[0].source)
        self.put(sub)
        sf = rules.storefronts[sub.storefront]
        due = rt.add(day, sf.terms) if sf.terms else None
        self.decision(sub, "charge", quote, due=due, reasons=tuple(reasons), charge=charge_id)

    def credit_note(self, used: Decimal, sub: Subscription) -> str:
        currency = self.rules.storefronts[sub.storefront].currency
        return (f"credit {rt.money_str(used, currency)} {currency} used, "
                f"{rt.money_str(sub.credit_balance, currency)} {currency} left")

    def renewal_price(self, sub: Subscription, day: dt.date, at: dt.datetime,
                      trace: list[Trace],
                      reasons: list[str] | None = None) -> tuple[Subscription, Decimal]:
        """The list price an existing subscription pays from ``day``; emits price events
        and says in ``reasons`` why a price is held."""
        rules = self.rules
        contract = self.contract(sub.customer_id, sub.plan, day)
        if contract is not None and contract.currency == rules.storefronts[sub.storefront].currency:
            trace.append(self.engine.trace(f"contract {contract.name}", contract.span))
            if contract.amount != sub.price:
                self.emit("price.changed", sub, at=at, rule=f"contract {contract.name}",
                          source=contract.span, **self.price_figures(sub, contract.amount))
            return evolve(sub, price=contract.amount, contract=contract.name), \
                contract.amount
        entry = self.price_entry(sub.plan, sub.storefront, day, existing=True)
        if entry is None:
            raise _fail("not_sold", f"plan '{sub.plan}' has no price in '{sub.storefront}' "
                        f"on {day}")
        rule = f"price {sub.plan} {sub.storefront}"
        trace.append(self.engine.trace(rule, entry.span))
        if entry.amount == sub.price:
            return evolve(sub, contract=None), sub.price
        if sub.contract is None and entry.consent and not (
                sub.consent == "collected" and sub.consent_price == entry.amount):
            # held at the old price: the charge follows the line that price came from
            old = self.held_price_entry(sub, entry)
            trace[-1] = self.engine.trace(rule, old.span)
            if reasons is not None:
                currency = rules.storefronts[sub.storefront].currency
                reasons.append(
                    f"held at the old price {currency} {rt.money_str(sub.price, currency)} "
                    f"until the customer consents to {currency} "
                    f"{rt.money_str(entry.amount, currency)}"
                    + (f" from {entry.effective}" if entry.effective else "")
                    + f" ({_where(entry.span)})")
            if sub.consent == "requested" and sub.consent_price == entry.amount:
                self.emit("consent.deferred", sub, at=at, rule=rule, source=entry.span,
                          **self.price_figures(sub, entry.amount))
            else:
                self.emit("consent.requested", sub, at=at, rule=rule, source=entry.span,
                          **self.price_figures(sub, entry.amount))
                sub = evolve(sub, consent="requested", consent_price=entry.amount)
            return sub, sub.price
        self.emit("price.changed", sub, at=at, rule=rule, source=entry.span,
                  **self.price_figures(sub, entry.amount))
        return evolve(sub, price=entry.amount, contract=None, consent=None,
                            consent_price=None), entry.amount

    def price_figures(self, sub: Subscription, amount: Decimal) -> dict[str, Any]:
        """What a price event carries: ``gross`` tax-exclusive, as a renewal at that price
        would carry it, and ``list``, the price as the ruleset states it."""
        rates = self.tax_rates(self.ctx(sub, sub.cycle + 1), [])
        return {"gross": self.tax_exclusive(amount, rates, sub.storefront),
                "list": rt.quantize(amount, self.rules.storefronts[sub.storefront].currency)}

    def held_price_entry(self, sub: Subscription, pending: m.PriceEntry) -> m.PriceEntry:
        """The price line a subscription held at its old price pays by: the latest line
        before ``pending`` with that amount (else any with it, else ``pending``)."""
        entries = self.rules.prices.get((sub.plan, sub.storefront), ())
        same = [e for e in entries if e.amount == sub.price and e is not pending]
        before = [e for e in same if (e.effective or dt.date.min) <= (
            pending.effective or dt.date.min)]
        return (before or same or [pending])[-1]

    def change_plan(self, sub: Subscription, target: str, at: dt.datetime,
                    day: dt.date, **charged: Any) -> Subscription:
        """Move to ``target`` now (anchor unchanged); entitlement and plan-change events.

        ``charged`` are the figures of a charge the change opens (a proration)."""
        rules = self.rules
        old = rules.plans[sub.plan]
        new = rules.plans[target]
        change = next((c for c in old.changes if c.target == target), None)
        kind = change.kind if change else "upgrade"
        source = change.span if change else new.span
        # the subscription moves in as an existing one: the price its later renewals keep
        # (else a pending scheduled price would read as a change that never happened)
        entry = self.price_entry(target, sub.storefront, day, existing=True) or \
            self.price_entry(target, sub.storefront, day, existing=False)
        price = entry.amount if entry is not None else sub.price
        sub = evolve(sub, plan=target, price=price, pending_plan=None, consent=None,
                     consent_price=None, contract=None)
        # the event names the plan moved to; its rule names the plan left
        rule = f"plan {old.name} {kind}"
        self.emit(f"subscription.{kind}d", sub, at=at, rule=rule, source=source,
                  recurring=self.recurring_price(sub, day), **charged)
        return self.set_entitlements(sub, new.entitlements, rule, source, at)

    def cancel(self, sub: Subscription, at: dt.datetime, rule: str, source: Any,
               status: str = "canceled") -> Subscription:
        if status == "canceled":
            self.emit("subscription.canceled", sub, at=at, rule=rule, source=source)
        elif status == "paused":
            self.emit("subscription.paused", sub, at=at, rule=rule, source=source)
        sub = evolve(sub, status=status, cancel_at=None, charge=None if status ==
                     "canceled" else sub.charge, dunning=None, pending_plan=None)
        sub = self.set_entitlements(sub, (), rule, source, at)
        self.put(sub)
        self.decision(sub, "none", next_charge=None)
        return sub

    # -- time passing ------------------------------------------------------------------
    def due_item(self, sub: Subscription, until: dt.date) -> tuple[dt.date, int, str] | None:
        """The earliest thing due for ``sub`` on or before ``until``: (date, order, kind)."""
        item = self.next_due(sub)
        return item if item is not None and item[0] <= until else None

    def next_due(self, sub: Subscription) -> tuple[dt.date, int, str] | None:
        """The earliest thing ``tick`` will have to settle for ``sub``, if any."""
        items: list[tuple[dt.date, int, str]] = []
        if sub.status in ("canceled", "unpaid"):
            return None
        if sub.status == "paused":
            if sub.resume_by is not None:
                items.append((sub.resume_by, 0, "resume"))
        else:
            if sub.cancel_at is not None:
                items.append((sub.cancel_at, 1, "cancel"))
            if sub.status == "trialing" and sub.charge is None:
                items.append((self.next_charge(sub), 2, "trial_end"))
            if sub.dunning is not None:
                if sub.dunning.retries:
                    items.append((sub.dunning.retries[0], 3, "retry"))
                else:
                    items.append((sub.dunning.ends, 4, "dunning_end"))
        return min(items) if items else None

    def on_tick(self) -> None:
        until = self.day
        pending = []
        # the due index holds only subscriptions with something pending: no full scan
        for sub_id in sorted(k for k, day in self.due.items() if day <= until):
            if self.engine.cannot_serve(self.subs[sub_id]) is not None:
                continue  # left as it is: `revrules check --state` lists it
            item = self.due_item(self.subs[sub_id], until)
            if item is not None:
                pending.append((item, sub_id))
        # in order of due date, then subscription id; only the items of one subscription on
        # one date keep their kind order (a retry before the `then` action)
        while pending:
            pending.sort(key=lambda p: (p[0][0], p[1], p[0][1]))
            settled, sub_id = pending.pop(0)
            self.settle_due(self.subs[sub_id], settled[0], settled[2])
            item = self.due_item(self.subs[sub_id], until)
            if item is not None:
                if item == settled:  # settling it changed nothing: it would never end
                    raise rt.EvaluationError(
                        "inconsistent_state", f"subscription '{sub_id}': settling its "
                        f"{settled[2]} of {settled[0].isoformat()} changes nothing")
                pending.append((item, sub_id))

    def settle_due(self, sub: Subscription, day: dt.date, kind: str) -> None:
        at = self.at_time(day)
        rules = self.rules
        if kind == "trial_end":
            self.renew(sub, day)
        elif kind == "cancel":
            self.cancel(sub, at, "lifecycle cancel", rules.model.lifecycle.span)
        elif kind == "resume":
            self.resume(sub, day, at)
        elif kind == "retry":
            assert sub.dunning is not None and sub.charge is not None
            charge = sub.charge  # unchanged by the evolve below
            dunning = evolve(sub.dunning, retries=sub.dunning.retries[1:])
            sub = self.put(evolve(sub, dunning=dunning))
            self.decision(sub, "charge", currency=charge.currency, list=charge.list,
                          discounts=charge.discounts, credit=charge.credit, tax=charge.tax, net=charge.net,
                          total=charge.total, psp=dunning.via, retry_at=day,
                          grace_ends=dunning.grace_end,
                          reasons=(f"dunning {dunning.policy}: retry "
                                   f"{dunning.scheduled - len(dunning.retries)} of "
                                   f"{dunning.scheduled}",), charge=charge.id)
        else:
            self.dunning_end(sub, at)

    def dunning_end(self, sub: Subscription, at: dt.datetime) -> None:
        """Run the dunning policy's `then` action: cancel, pause or unpaid."""
        assert sub.dunning is not None
        policy = next(p for p, _, _ in self.rules.dunning if p.name == sub.dunning.policy)
        self.cancel(sub, at, f"dunning {policy.name}", policy.span,
                    status={"cancel": "canceled", "pause": "paused",
                            "unpaid": "unpaid"}[policy.then])

    # -- plan changes ------------------------------------------------------------------
    def deny(self, sub: Subscription, reason: str, trace: tuple[Trace, ...] = ()) -> None:
        self.decision(sub, "deny", reasons=(reason,), trace=trace)

    def on_plan_change_requested(self) -> None:
        rules, ev = self.rules, self.event
        sub = self.subscription()
        assert ev.plan is not None
        if ev.plan not in rules.plans:
            raise _fail("unknown_plan", f"unknown plan '{ev.plan}'"
                        f"{did_you_mean(ev.plan, rules.plans)}")
        if sub.status not in ("active", "trialing"):
            return self.deny(sub, f"subscription is {sub.status}")
        plan = rules.plans[sub.plan]
        change = next((c for c in plan.changes if c.target == ev.plan), None)
        if change is None:
            return self.deny(sub, f"plan {plan.name} does not allow a change to {ev.plan}")
        trace = (self.engine.trace(f"plan {plan.name} {change.kind}", change.span),)
        if self.price_entry(ev.plan, sub.storefront, self.day, existing=False) is None:
            return self.deny(sub, f"plan {ev.plan} is not sold in {sub.storefront}", trace)
        if change.timing == "period_end":
            sub = self.put(evolve(sub, pending_plan=ev.plan))
            self.decision(sub, "none", trace=trace)
            return None
        if sub.charge is not None:
            return self.deny(sub, "an unpaid charge is open; pay it before changing plan", trace)
        if not change.prorate or sub.status == "trialing" or sub.payment is None:
            next_charge = self.next_charge(sub)
            sub = self.change_plan(sub, ev.plan, ev.at, self.day)
            if rules.plans[ev.plan].every != plan.every:
                # a new cadence starts where the paid (or trial) period ends
                sub = evolve(sub, anchor=next_charge, index=0)
            self.put(sub)
            self.decision(sub, "none", trace=trace)
            return None
        self.prorated_change(sub, change, trace)
        return None

    def prorated_change(self, sub: Subscription, change: m.PlanChange,
                        trace: tuple[Trace, ...]) -> None:
        start, end = self.period(sub, sub.index - 1)
        whole = (end - start).days
        unused = max(0, min(whole, (end - self.day).days))
        currency = self.rules.storefronts[sub.storefront].currency
        assert sub.payment is not None
        credit = rt.prorate(sub.payment.base, unused, whole, currency, self.rounding)
        entry = self.price_entry(change.target, sub.storefront, self.day, existing=False)
        assert entry is not None  # checked by on_plan_change_requested
        notes = [f"{unused} unused of {whole} days"]
        new_cadence = self.rules.plans[change.target].every != self.rules.plans[sub.plan].every
        if new_cadence:
            # another billing period (monthly → yearly): the new plan's first full period
            # starts today, against the credit for the old one's unused days
            charge = entry.amount
            end = rt.add(self.day, self.rules.plans[change.target].every)
            notes.append(f"new billing period from {self.day}")
        else:
            charge = rt.prorate(entry.amount, unused, whole, currency, self.rounding)
        credit_used = min(credit, charge)
        # the credit balance pays what the proration credit leaves, and what the proration
        # credit leaves over goes to the balance
        balance_used = min(sub.credit_balance, charge - credit_used)
        price = self.engine.trace(f"price {change.target} {sub.storefront}", entry.span)
        quote = self.quote(evolve(sub, plan=change.target), charge, _NO_DISCOUNTS,
                           credit_used + balance_used, sub.cycle, [*trace, price])
        charge_id = self.charge_id(sub)
        sub = self.change_plan(sub, change.target, self.event.at, self.day,
                               **_charged(quote, charge_id))
        if new_cadence:
            sub = evolve(sub, anchor=self.day, index=1)
        credit_ex = quote.credit_ex if not balance_used else rt.prorate(
            quote.credit_ex, credit_used, credit_used + balance_used, currency, self.rounding)
        self.emit("credit.issued", sub, rule=trace[0].rule, source=trace[0].source,
                  credit=credit_ex, amount=credit, charge=charge_id)
        sub = evolve(sub, credit_balance=sub.credit_balance - balance_used + credit - credit_used)
        if balance_used:
            notes.append(self.credit_note(balance_used, sub))
        sub = self.open_charge(sub, quote, "proration", self.day, end, trace[0].rule,
                               trace[0].source)
        self.put(sub)
        kind = "charge" if credit <= charge else "credit"
        if credit > charge:
            notes.append(f"{rt.money_str(credit - charge, currency)} {currency} left as credit")
        self.decision(sub, kind, quote, reasons=tuple(notes), charge=charge_id)

    # -- pause, resume, cancel ---------------------------------------------------------
    def on_pause_requested(self) -> None:
        sub = self.subscription()
        policy = self.rules.model.lifecycle
        if policy.pause_max is None or policy.pause_rule is None:
            return self.deny(sub, "this ruleset does not allow pauses")
        rule = policy.pause_rule
        trace = (self.engine.trace(rule.name, rule.span),)
        test = self.rules.pause_test
        if test is not None and not test(self.ctx(sub)):
            return self.deny(sub, f"{rule.name}: requires {self.rules.source_text(rule)} "
                             f"({_where(rule.span)})", trace)
        if sub.status != "active" or sub.charge is not None:
            return self.deny(sub, f"only an active, paid-up subscription can pause "
                             f"(this one is {sub.status}"
                             f"{' with an unpaid charge' if sub.charge else ''})", trace)
        sub = evolve(sub, status="paused", paused_at=self.day,
                           resume_by=rt.add(self.day, policy.pause_max))
        self.emit("subscription.paused", sub, rule=rule.name, source=rule.span,
                  date=sub.resume_by)
        sub = self.put(self.set_entitlements(sub, (), rule.name, rule.span))
        self.decision(sub, "none", next_charge=None, trace=trace)
        return None

    def on_resume_requested(self) -> None:
        sub = self.subscription()
        if sub.status != "paused" or sub.paused_at is None:
            return self.deny(sub, _not_paused(sub))
        self.resume(sub, self.day, self.event.at)
        return None

    def resume(self, sub: Subscription, day: dt.date, at: dt.datetime) -> None:
        assert sub.paused_at is not None
        plan = self.rules.plans[sub.plan]
        # the paid-up days are kept: the next charge is the paid-through date at the pause
        # plus the calendar days paused, and that date is the new anchor (period 0)
        shift = dt.timedelta(days=(day - sub.paused_at).days)
        paid_through = self.next_charge(sub)
        payment = sub.payment
        if payment is not None and payment.period_end == paid_through:
            # the paid period ends as many days later (prorated refunds count from it)
            payment = evolve(payment, period_start=payment.period_start + shift,
                             period_end=payment.period_end + shift)
        # a cancel at the period end waits for the end of the paid days too
        cancel_at = sub.cancel_at + shift if sub.cancel_at == paid_through else sub.cancel_at
        sub = evolve(sub, status="active", anchor=paid_through + shift, index=0,
                     paused_at=None, resume_by=None, payment=payment, cancel_at=cancel_at)
        rule = self.rules.model.lifecycle.pause_rule
        self.emit("subscription.resumed", sub, at=at, rule=rule.name if rule else None,
                  source=rule.span if rule else None, date=self.next_charge(sub))
        sub = self.put(self.set_entitlements(sub, plan.entitlements, f"plan {plan.name}",
                                             plan.span, at))
        self.decision(sub, "none")

    def on_cancel_requested(self) -> None:
        sub = self.subscription()
        if sub.status in ("canceled",):
            raise _fail("already_canceled", f"subscription '{sub.id}' is already canceled")
        policy = self.rules.model.lifecycle
        if policy.cancel == "immediate" or sub.status in ("past_due", "paused", "unpaid"):
            self.cancel(sub, self.event.at, "lifecycle cancel", policy.span)
            return
        sub = self.put(evolve(sub, cancel_at=self.next_charge(sub)))
        self.decision(sub, "none", reasons=(f"cancels at period end, {sub.cancel_at}",),
                      trace=(self.engine.trace("lifecycle cancel", policy.span),))

    # -- consent -----------------------------------------------------------------------
    def on_consent_given(self) -> None:
        sub = self.subscription()
        if sub.consent != "requested":
            raise _fail("no_consent_pending", f"subscription '{sub.id}' has no price change "
                        "waiting for consent")
        sub = evolve(sub, consent="collected")
        price = sub.consent_price if sub.consent_price is not None else sub.price
        # the price line that asked for the consent: the latest one at that price
        entry = next((e for e in reversed(self.rules.prices.get((sub.plan, sub.storefront), ()))
                      if e.consent and e.amount == price), None)
        plan = self.rules.plans[sub.plan]
        self.emit("consent.collected", sub, rule=f"price {sub.plan} {sub.storefront}",
                  source=entry.span if entry is not None else plan.span,
                  **self.price_figures(sub, price))
        self.put(sub)
        self.decision(sub, "none")

    def on_consent_declined(self) -> None:
        sub = self.subscription()
        if sub.consent != "requested":
            raise _fail("no_consent_pending", f"subscription '{sub.id}' has no price change "
                        "waiting for consent")
        sub = self.put(evolve(sub, consent=None, consent_price=None,
                                    cancel_at=self.next_charge(sub)))
        self.decision(sub, "none", reasons=(f"consent declined: cancels at period end, "
                                            f"{sub.cancel_at}",))

    # -- refunds and credits -----------------------------------------------------------
    def refund_target(self, sub: Subscription) -> Payment:
        """The paid charge a refund is for: the one ``charge`` names, else the latest."""
        wanted = self.event.charge
        if wanted is None:
            if sub.payment is None:
                raise _fail("nothing_to_refund",
                            f"subscription '{sub.id}' has no payment to refund")
            return sub.payment
        for payment in (sub.payment, *reversed(sub.earlier_payments)):
            if payment is not None and payment.charge == wanted:
                return payment
        if sub.charge is not None and sub.charge.id == wanted:
            raise _fail("unknown_charge", f"charge '{wanted}' of subscription '{sub.id}' is "
                        "not paid; only a paid charge can be refunded")
        raise _fail("unknown_charge", f"subscription '{sub.id}' has no paid charge '{wanted}'")

    def on_refund_requested(self) -> None:
        sub = self.subscription()
        payment = self.refund_target(sub)
        refundable = payment.total - payment.refunded
        currency = payment.currency
        if refundable <= 0:
            raise _fail("nothing_to_refund", f"charge '{payment.charge}' of subscription "
                        f"'{sub.id}' has nothing left to refund" if payment.charge else
                        f"subscription '{sub.id}' has no payment to refund")
        policy = self.rules.model.lifecycle
        trace = (self.engine.trace("lifecycle refund", policy.span),)
        paid_day = rt.local_date(payment.at, self.tz)
        goodwill = self.event.amount is not None
        if self.event.amount is not None:
            amount = self.event.amount
            if amount <= 0:
                raise _fail("bad_field", "a refund 'amount' must be more than 0")
            self.check_precision(amount, currency)
            if amount > refundable:
                raise _fail("refund_too_large", f"refund of {rt.money_str(amount, currency)} "
                            f"{currency} is more than the {rt.money_str(refundable, currency)} "
                            f"{currency} still refundable"
                            + (f" of charge '{payment.charge}'" if payment.charge else ""))
            mode = "requested"
        else:
            within = policy.refund_within is not None and self.day <= rt.add(
                paid_day, policy.refund_within)
            mode = policy.refund if policy.refund_within is None else (
                "full" if within else policy.refund_after)
            if mode == "none":
                return self.deny(sub, "no refund: outside the refund window"
                                 if policy.refund_within else "this ruleset gives no refunds",
                                 trace)
            if mode == "full":
                amount = refundable
            else:
                whole = (payment.period_end - payment.period_start).days
                unused = max(0, min(whole, (payment.period_end - self.day).days))
                amount = min(refundable, rt.prorate(payment.total, unused, whole, currency,
                                                    self.rounding))
        # the refund carries the payment's tax in proportion, rounded once; the refunds of
        # one charge together give back exactly its tax when they give back all of it
        tax_left = payment.tax - payment.refunded_tax
        tax = tax_left if amount == refundable else min(tax_left, rt.prorate(
            payment.tax, amount, payment.total, currency, self.rounding))
        refunded = evolve(payment, refunded=payment.refunded + amount,
                          refunded_tax=payment.refunded_tax + tax)
        if payment is sub.payment:
            sub = evolve(sub, payment=refunded)
        else:
            sub = evolve(sub, earlier_payments=tuple(
                refunded if p is payment else p for p in sub.earlier_payments))
        # the store, carrier or partner gives its share of the refunded part back
        sf = self.rules.storefronts[sub.storefront]
        commission = rt.percent_of(amount - tax, sf.commission, currency, self.rounding)
        self.emit("payment.refunded", sub, rule="lifecycle refund", source=policy.span,
                  amount=amount, tax=tax, net=amount - tax, commission=commission,
                  psp=payment.psp, reasons=(mode,), charge=payment.charge)
        quote_fields: dict[str, Any] = dict(currency=currency, total=amount, tax=tax,
                                            net=amount - tax, reasons=(f"refund {mode}",),
                                            trace=trace, charge=payment.charge)
        # a goodwill refund (an amount) keeps the subscription unless it says "cancel"
        ends = not goodwill or self.event.cancel is True
        if ends and sub.status != "canceled":
            sub = evolve(sub, status="canceled", cancel_at=None, charge=None, dunning=None)
            self.emit("subscription.canceled", sub, rule="lifecycle refund", source=policy.span)
            sub = self.set_entitlements(sub, (), "lifecycle refund", policy.span)
        self.put(sub)
        if ends:
            quote_fields["next_charge"] = None
        self.decision(sub, "refund", psp=payment.psp, **quote_fields)
        return None

    def on_credit_granted(self) -> None:
        sub = self.subscription()
        sf = self.rules.storefronts[sub.storefront]
        currency = sf.currency
        amount = self.event.amount
        assert amount is not None
        if sub.status == "canceled":
            raise _fail("already_canceled", f"subscription '{sub.id}' is canceled")
        if sf.store_managed:
            raise _fail("store_managed", f"storefront '{sf.name}' is billed by the "
                        f"{sf.channel}; a credit cannot come off its charges")
        if rt.quantize(amount, currency) != amount or amount <= 0:
            raise _fail("bad_field", f"a credit is more than 0 and has at most "
                        f"{-rt.exponent(currency).as_tuple().exponent} decimals in "  # type: ignore[operator]
                        f"{currency}")
        sub = self.put(evolve(sub, credit_balance=sub.credit_balance + amount))
        reason = self.event.reason
        # a goodwill credit has no rule of its own: it cites the plan whose charges it reduces
        plan = self.rules.plans[sub.plan]
        self.emit("credit.issued", sub, rule=f"plan {plan.name}", source=plan.span, amount=amount,
                  reasons=(reason,) if reason else ())
        balance = rt.money_str(sub.credit_balance, currency)
        self.decision(sub, "credit", currency=currency, credit=amount,
                      reasons=(f"credit balance {balance} {currency}",
                               *((reason,) if reason else ())))

    # -- store notifications -----------------------------------------------------------
    def on_store_notification(self) -> None:
        """App Store Server Notifications V2 and Google Play RTDN, as the web channel's events."""
        sub = self.subscription()
        sf = self.rules.storefronts[sub.storefront]
        if sf.channel in ("web", "direct"):
            raise _fail("not_a_store", f"storefront '{sf.name}' is a {sf.channel} storefront; "
                        "store notifications come from app stores, carriers and partners")
        assert self.event.notification is not None
        name = self.event.notification.upper().removeprefix("SUBSCRIPTION_")
        subtype = (self.event.subtype or "").upper()
        action = _STORE_ACTIONS.get(name)
        if action is None:
            raise _fail("unknown_notification", f"unknown store notification '{name}'"
                        f"{did_you_mean(name, _STORE_ACTIONS)}")
        if name == "PRICE_INCREASE":
            action = "consent" if subtype == "ACCEPTED" else "consent_pending"
        elif name == "DID_CHANGE_RENEWAL_STATUS":
            action = "resume_renewal" if subtype == "AUTO_RENEW_ENABLED" else "cancel_at_end"
        if sub.status == "canceled" and action != "refund":
            raise _fail("already_canceled", f"subscription '{sub.id}' is already canceled")
        getattr(self, "store_" + action)(sub)

    def require_renewable(self, sub: Subscription) -> None:
        if sub.status in ("canceled", "unpaid", "paused"):
            raise _fail("not_active", f"subscription '{sub.id}' is {sub.status}")

    def store_paid(self, sub: Subscription) -> None:
        if sub.charge is None:
            self.require_renewable(sub)
            self.renew(sub, self.next_charge(sub))
            sub = self.subs[sub.id]
            if sub.charge is None:  # a zero charge settled itself
                return
            self.decisions.pop()
        self.on_payment_succeeded()

    def store_failed(self, sub: Subscription) -> None:
        if sub.charge is None:
            self.require_renewable(sub)
            self.renew(sub, self.next_charge(sub))
            self.decisions.pop()
            if self.subs[sub.id].charge is None:
                return
        self.on_payment_failed()

    def store_grace_over(self, sub: Subscription) -> None:
        policy, _ = self.dunning_policy(sub)
        then = policy.then if policy else "cancel"
        sf = self.rules.storefronts[sub.storefront]
        rule = f"dunning {policy.name}" if policy else f"storefront {sf.name}"
        self.cancel(sub, self.event.at, rule, policy.span if policy else sf.span,
                    status={"cancel": "canceled", "pause": "paused", "unpaid": "unpaid"}[then])

    def store_expired(self, sub: Subscription) -> None:
        # the store ended it: the storefront whose store speaks for the subscription
        sf = self.rules.storefronts[sub.storefront]
        self.cancel(sub, self.event.at, f"storefront {sf.name}", sf.span)

    def store_refund(self, sub: Subscription) -> None:
        self.on_refund_requested_full()

    def store_consent(self, sub: Subscription) -> None:
        if sub.consent == "requested":
            self.on_consent_given()
        else:
            self.decision(sub, "none", reasons=("no price change waiting for consent",))

    def store_consent_pending(self, sub: Subscription) -> None:
        self.decision(sub, "none", reasons=("price increase pending the customer's consent",))

    def store_cancel_at_end(self, sub: Subscription) -> None:
        self.on_cancel_requested()

    def store_resume_renewal(self, sub: Subscription) -> None:
        sub = self.put(evolve(sub, cancel_at=None))
        self.decision(sub, "none")

    def on_refund_requested_full(self) -> None:
        """A store's refund: what is left of the latest payment, and the end of the
        subscription."""
        sub = self.subscription()
        if sub.payment is None:
            raise _fail("nothing_to_refund", f"subscription '{sub.id}' has no payment to refund")
        if self.event.amount is None:
            refundable = sub.payment.total - sub.payment.refunded
            self.event = attrs.evolve(self.event, amount=refundable)
        self.event = attrs.evolve(self.event, cancel=True)
        self.on_refund_requested()


_HANDLERS = {kind: getattr(_Tx, "on_" + kind) for kind in EVENT_TYPES}

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


def _where(source: Any) -> str:
    """``file:line:col`` with the file's base name, so outcomes do not depend on where the
    ruleset was loaded from (diagnostics keep the path as given)."""
    if isinstance(source, m.Span):
        # keyed by identity: the model owns its spans for the engine's lifetime, and the
        # entry keeps the span alive so its id is never reused
        hit = _WHERE.get(id(source))
        if hit is None:
            hit = _WHERE[id(source)] = (
                source, f"{os.path.basename(source.file)}:{source.line}:{source.column}")
        return hit[1]
    return str(source)


_WHERE: dict[int, tuple[m.Span, str]] = {}


def _charged(quote: Quote, charge: str | None) -> dict[str, Any]:
    """The figures a revenue event carries for a charge it opens (tax-exclusive, as the
    ledger reads them; ``amount`` is what the customer owes) and the charge's id."""
    return {"gross": quote.gross_ex, "discount": quote.discount_ex, "credit": quote.credit_ex,
            "tax": quote.tax, "net": quote.net, "amount": quote.total, "charge": charge}


def _recurs(promotion: m.Promotion | None) -> bool:
    """A discount that recurs: a promotion for more than one charged cycle, or forever."""
    return promotion is not None and (promotion.cycles is None or promotion.cycles > 1)


def _not_paused(sub: Subscription) -> str:
    """Why a subscription cannot resume, and what would bring it back."""
    charge = sub.charge
    pay = (f"pay the open charge of {charge.currency} "
           f"{rt.money_str(charge.total, charge.currency)}" if charge is not None else None)
    if sub.status == "paused":  # paused by dunning, not by a pause request
        if pay is None:
            return "subscription is paused by dunning, not by a pause request"
        return f"subscription is paused by dunning because a charge went unpaid; {pay} to resume it"
    if sub.status == "unpaid" and pay is not None:
        return f"subscription is unpaid, not paused; {pay} to reactivate it"
    return f"subscription is {sub.status}, not paused"


def _redemption_key(promotion: str, customer: str) -> str:
    return f"{promotion}\u001f{customer}"


def _attribute_value(attr: m.Attribute, value: Any) -> Any:
    kind = attr.type
    if value is None:
        return attr.default
    # whole numbers are bounded at the edge (events.check_int); decimals and dates here,
    # by the same limits, once their declared type is known
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "decimal" and isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            pass
        else:
            if number.is_finite():  # NaN, sNaN and infinities are refused below
                return check_decimal(number, f"customer attribute '{attr.name}'")
    if kind == "date" and isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return check_date(day, f"customer attribute '{attr.name}'")
    raise _fail("bad_field", f"customer attribute '{attr.name}' must be {_article(kind)}, "
                f"found {json_text(value)}")


def _article(kind: str) -> str:
    return {"int": "a whole number", "decimal": "a decimal string", "string": "a string",
            "bool": "true or false", "date": "a date (YYYY-MM-DD)"}[kind]
