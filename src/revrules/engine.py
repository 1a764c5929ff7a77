"""The evaluator: ``Engine.apply(state, event) -> Outcome``.

Each event runs in a transaction (:class:`~revrules.transaction.Tx`) over the immutable
state; it either commits a new state with its decisions and revenue events, or fails
with a clean error and leaves the state exactly as it was. This module is the one entry
point: it parses the event, catches a replayed id, puts the ruleset's stamp on the state
and hands the transaction to the event family's transition (:data:`_HANDLERS`, in
:mod:`revrules.transitions`). Prices come from :mod:`revrules.pricing`, revenue events
from :mod:`revrules.emission`. Rules run as compiled functions
(:mod:`revrules.compiler`); prices, promotions and contracts come from tables the
:class:`~revrules.ruleset.Ruleset` built once. Time comes only from events.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from . import quoting
from . import runtime as rt
from .diagnostics import did_you_mean
from .emission import Citations, where
from .events import EVENT_TYPES, Event, EventError, parse_event
from .quoting import Quote
from .results import Error, Outcome, Trace, make_outcome
from .ruleset import Ruleset
from .state import Seen, State, Subscription, evolve
from .transaction import Tx, Unserved, remember
from .transitions import checkout, pauses, payments, plan_changes, refunds, renewals, store

__all__ = ["EVENT_TYPES", "Engine", "Quote"]

ZERO = Decimal(0)
# the names these objects had when they lived here
_Tx = Tx
_Unserved = Unserved
_remember = remember
_where = where

#: the transition of each event type
_HANDLERS: dict[str, Callable[[Tx], None]] = {
    "checkout": checkout.on_checkout,
    "renewal_due": renewals.on_renewal_due,
    "payment_succeeded": payments.on_payment_succeeded,
    "payment_failed": payments.on_payment_failed,
    "store_notification": store.on_store_notification,
    "plan_change_requested": plan_changes.on_plan_change_requested,
    "pause_requested": pauses.on_pause_requested,
    "resume_requested": pauses.on_resume_requested,
    "cancel_requested": pauses.on_cancel_requested,
    "consent_given": pauses.on_consent_given,
    "consent_declined": pauses.on_consent_declined,
    "refund_requested": refunds.on_refund_requested,
    "credit_granted": refunds.on_credit_granted,
    "tick": renewals.on_tick,
}
assert set(_HANDLERS) == set(EVENT_TYPES), sorted(set(_HANDLERS) ^ set(EVENT_TYPES))


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
        self._citations = Citations()

    def trace(self, rule: str, span: m.Span) -> Trace:
        """The (shared, immutable) trace entry citing ``rule`` at ``span``."""
        return self._citations.cite(rule, span)

    @rt.in_context  # every Decimal operation uses the engine's context, never the caller's
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
        seen = state.seen(event.id)
        if seen is not None:
            if seen.digest and seen.digest != digest:  # "": from a state without digests
                return Outcome(event.id, False, state, error=Error(
                    "id_conflict", f"event id '{event.id}' was already used for another "
                    f"event (at {_when(seen.at)}); a replay must repeat the event exactly"))
            if seen.code is None:
                return Outcome(event.id, True, state, replayed=True)
            return Outcome(event.id, False, state,
                           error=Error(seen.code, seen.message or seen.code))
        if self.rules.former_plans or self.rules.former_storefronts:
            state = self.adopt(state)
        # else adopting changes only the stamp, which the commit (or a refusal) writes
        try:
            tx = Tx(self, state, event)
            tx.check_order()
            _HANDLERS[event.type](tx)
            new_state = tx.commit(digest)
        except Unserved as exc:
            # not remembered: the ruleset, not the event, is at fault, and a version that
            # serves the subscription (`formerly`) must be able to apply the event
            return Outcome(event.id, False, self.adopt(state),
                           error=Error(exc.code, exc.message))
        except (EventError, rt.EvaluationError) as exc:
            error = Error(exc.code, exc.message)
            state = self.adopt(state)
            # the refusal is remembered, so that a replay of the event is refused the same way
            return Outcome(event.id, False, self.remember(
                state, event.id, Seen(digest, event.at, exc.code, exc.message), state.clock),
                error=error)
        return make_outcome(event.id, True, new_state, tuple(tx.decisions), tuple(tx.events))

    def quote(self, event: Event | Mapping[str, Any],
              state: State | None = None) -> Quote:
        """What ``event`` would charge, as :meth:`apply` would decide it, writing nothing.

        ``event`` is a ``checkout`` (priced against ``state``, else an empty state), or a
        ``renewal_due`` or ``plan_change_requested`` of a subscription in ``state``. The
        same transition as :meth:`apply` runs on a throw-away transaction: ``state`` is
        left as it is and no revenue event is emitted. For a checkout that grants a
        trial, the quote is the first charge, priced as the trial-end tick would price it
        (``charge_date`` is the trial end). The event's id is not looked up among the
        applied ones. An event that cannot be quoted raises
        :class:`revrules.QuoteError` with a stable ``code`` (the one :meth:`apply` would
        refuse it with, or ``not_quotable``); nothing else is raised.
        """
        return quoting.quote(self, event, state)

    def remember(self, state: State, event_id: str, seen: Seen,
                 clock: dt.datetime | None) -> State:
        """``state`` with ``event_id`` remembered, pruned to the replay window when it is due."""
        applied, limit = remember(state.applied, state.applied_limit, event_id, seen, clock,
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
        tx = Tx(self, state, Event("verify", "tick", state.clock or _EPOCH))
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


def payload_digest(event: Event) -> str:
    """The digest of an event's canonical payload: every field but its id, as parsed (so a
    date and its midnight UTC datetime, or ``"4.0"`` and ``"4.00"``, are the same).

    The payload text is written directly (:func:`_payload_text`) for the values a parsed
    event holds, and by :func:`_payload_text_reference` for anything else: the same text."""
    global _last_digest
    last = _last_digest
    if last[0] is event:  # the same (immutable) event again: a what-if applies it twice
        return last[1]
    text = _payload_text(event)
    if text is None:
        text = _payload_text_reference(event)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    _last_digest = (event, digest)
    return digest


#: the last event digested and its digest: two engines fed one parsed event share the
#: digest string, and so the value their states remember (:func:`revrules.state.pack_seen`)
_last_digest: tuple[Event | None, str] = (None, "")


_PAYLOAD_FIELDS = tuple(f.name for f in attrs.fields(Event) if f.name != "id")
_payload_values = operator.attrgetter(*_PAYLOAD_FIELDS)
_json_string: Callable[[str], str] = json.encoder.encode_basestring
_SCALARS = (str, int, bool, type(None))


def _payload_text(event: Event) -> str | None:
    """``json.dumps`` of the canonical payload, for events whose values are strings,
    whole numbers, booleans, aware datetimes, Decimals and a customer object of those
    (what :func:`~revrules.events.parse_event` gives); None for anything else."""
    parts = []
    for name, value in zip(_PAYLOAD_FIELDS, _payload_values(event), strict=True):
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            text = _json_string(value)
        elif kind is dt.datetime:
            if value.utcoffset() is None:
                return None
            text = '"' + value.astimezone(dt.UTC).isoformat() + '"'
        elif kind is Decimal:
            text = _json_string(_canonical(value))
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = int.__repr__(value)
        elif kind is dict:
            items = []
            for key in sorted(value):
                if type(key) is not str:
                    return None
                item = value[key]
                item_kind = type(item)
                if item_kind is str:
                    items.append(_json_string(key) + ":" + _json_string(item))
                elif item_kind is bool:
                    items.append(_json_string(key) + (":true" if item else ":false"))
                elif item_kind is int:
                    items.append(_json_string(key) + ":" + int.__repr__(item))
                elif item is None:
                    items.append(_json_string(key) + ":null")
                else:
                    return None
            text = "{" + ",".join(items) + "}"
        else:
            return None
        parts.append(f'["{name}",{text}]')
    return "[" + ",".join(parts) + "]"


def _payload_text_reference(event: Event) -> str:
    """The canonical payload text, through ``json.dumps``: the reference."""
    parts: list[Any] = []
    for field in attrs.fields(Event):
        if field.name == "id":
            continue
        value = getattr(event, field.name)
        if value is None:
            continue
        parts.append([field.name, _canonical(value)])
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      default=_canonical)


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


def _event_id(event: object) -> str:
    """The id of an event for an outcome, whatever the event is."""
    try:
        found = event.id if isinstance(event, Event) else (
            event.get("id") if isinstance(event, Mapping) else None)
        return "" if found is None else str(found)
    except Exception:  # noqa: BLE001 - a mapping whose get raises
        return ""
