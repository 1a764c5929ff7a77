"""The public quote: what an event would charge, without applying it.

:meth:`revrules.Engine.quote` runs the event's own transition (the same code
:meth:`~revrules.Engine.apply` runs) on a throw-away transaction and reads the decision,
so a quote is exactly what ``apply`` would decide. A checkout is first tried on the
generated decision of its (plan, storefront) (:mod:`revrules.decision`), the fast path
a pricing page takes; it gives the same quote as the transition (a differential test
holds them to it) and hands back to the transition whatever it does not cover.
Nothing is written (the given state is left as it is, and no revenue event leaves the
transaction). For a checkout that grants a trial, the first charge is priced as the
trial-end tick would price it, on the state the checkout would leave.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from . import runtime as rt
from .decision import quote_checkout
from .events import Event, EventError, parse_event
from .results import Decision, DecisionKind, Discount, Trace
from .state import State
from .transaction import Tx

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["QUOTABLE", "Quote", "QuoteError", "quote", "quote_to_wire", "reference_quote"]

ZERO = Decimal(0)
#: the event types a quote prices
QUOTABLE = ("checkout", "renewal_due", "plan_change_requested")


class QuoteError(Exception):
    """Why an event cannot be quoted: a stable ``code`` (the code ``apply`` would refuse
    the event with, or ``not_quotable``, ``bad_state``, ``internal_error``) and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# a dict-based class: its generated __init__ fills the instance dict directly, about
# half the cost of a slotted frozen class's seventeen object.__setattr__ calls
@attrs.frozen(slots=False)
class Quote:
    """What an event would charge (:meth:`revrules.Engine.quote`).

    ``kind`` is the decision's kind: ``charge`` (or ``credit``, a prorated change that
    leaves credit), ``none`` (a change at the period end, charged at the renewal) or
    ``deny``. The figures are those of the charge priced — for a checkout with a trial,
    the first charge at the trial end: ``list`` − ``discounts`` − ``credit`` (+ ``tax`` on
    a tax-exclusive storefront) = ``total``; ``net`` is the total without tax.
    ``charge_date`` is the day of that charge (the event's local day, or the trial end;
    None when nothing is charged), ``trial_days`` the trial the checkout grants, and
    ``next_charge`` the charge after it, as the decision says.
    """

    subscription: str
    event: str
    kind: DecisionKind
    currency: str | None
    list: Decimal = ZERO
    discounts: tuple[Discount, ...] = ()
    credit: Decimal = ZERO
    tax: Decimal = ZERO
    net: Decimal = ZERO
    total: Decimal = ZERO
    psp: str | None = None
    trial_days: int = 0
    charge_date: dt.date | None = None
    next_charge: dt.date | None = None
    due: dt.date | None = None
    reasons: tuple[str, ...] = ()
    trace: tuple[Trace, ...] = ()

    @property
    def discount(self) -> Decimal:
        """The sum of the discounts."""
        return sum((d.amount for d in self.discounts), ZERO)


def quote(engine: Engine, event: Event | Mapping[str, Any], state: State | None = None) -> Quote:
    """:meth:`revrules.Engine.quote`; raises only :class:`QuoteError`.

    A checkout is priced by the generated decision of its (plan, storefront)
    (:func:`revrules.decision.quote_checkout`); whatever that path does not cover, and
    every other event, goes through :func:`reference_quote`, which runs the event's
    transition. Both give the same quote (tests/test_quote.py checks them against each
    other and against :meth:`~revrules.Engine.apply`)."""
    try:
        if state is not None and not isinstance(state, State):
            raise QuoteError("bad_state", "the state to quote against is a revrules.State")
        if type(event) is not Event:
            event = _parse(event)
        if event.type == "checkout":
            found = quote_checkout(engine, event, state)
            if found is not None:
                return found
        return _quote(engine, event, state)
    except QuoteError:
        raise
    except Exception as exc:  # noqa: BLE001 - the safety net, as in apply
        raise QuoteError("internal_error", f"internal error ({type(exc).__name__}) while "
                         "quoting this event") from None


def reference_quote(engine: Engine, event: Event | Mapping[str, Any],
                    state: State | None = None) -> Quote:
    """The quote by running the event's transition on a throw-away transaction: the
    reference that the generated decision path is tested against."""
    try:
        return _quote(engine, event, state)
    except QuoteError:
        raise
    except Exception as exc:  # noqa: BLE001 - the safety net, as in apply
        raise QuoteError("internal_error", f"internal error ({type(exc).__name__}) while "
                         "quoting this event") from None


def _parse(event: Event | Mapping[str, Any]) -> Event:
    if isinstance(event, Event):
        return event
    try:
        return parse_event(event)
    except EventError as exc:
        raise QuoteError(exc.code, exc.message) from None


def _quote(engine: Engine, event: Event | Mapping[str, Any], state: State | None) -> Quote:
    from .transitions import renewals
    from .engine import _HANDLERS

    if state is None:
        state = State()
    elif not isinstance(state, State):
        raise QuoteError("bad_state", "the state to quote against is a revrules.State")
    event = _parse(event)
    if event.type not in QUOTABLE:
        raise QuoteError("not_quotable", f"a {event.type} event cannot be quoted; quote a "
                         f"{', a '.join(QUOTABLE[:-1])} or a {QUOTABLE[-1]}")
    # the event's id is not looked up among the applied ones: a quote applies nothing
    state = engine.adopt(state)
    try:
        with decimal.localcontext(rt.CONTEXT):
            tx = Tx(engine, state, event)
            tx.check_order()
            _HANDLERS[event.type](tx)
            decision = _decision(tx, event)
            trial_days = decision.trial_days
            if event.type == "checkout" and \
                    tx.subs[decision.subscription].status == "trialing":
                # a trial (of any length, 0 days too): the first charge is what the
                # trial-end tick decides on the state the checkout leaves
                day = decision.next_charge
                assert day is not None
                after = tx.commit("")
                sub = after.subscriptions[decision.subscription]
                tick = Tx(engine, after, Event(event.id, "tick",
                                               tick_time(engine, day, event.at)))
                renewals.renew(tick, sub, day)
                priced = _decision(tick, event)
                return _public(event.type, priced, trial_days, day,
                               reasons=decision.reasons + priced.reasons)
    except (EventError, rt.EvaluationError) as exc:
        raise QuoteError(exc.code, exc.message) from None
    charged = decision.kind in ("charge", "credit")
    return _public(event.type, decision, trial_days, tx.day if charged else None,
                   decision.reasons)


def tick_time(engine: Engine, day: dt.date, after: dt.datetime | None = None) -> dt.datetime:
    """When the tick that settles ``day`` runs: the start of that day in the ruleset's
    timezone, or ``after`` (the checkout) when that is later (a trial of 0 days)."""
    start = rt.start_of(day, engine.tz)
    return start if after is None or after <= start else after


def _decision(tx: Tx, event: Event) -> Decision:
    sub_id = event.subscription
    found = [d for d in tx.decisions if d.subscription == sub_id]
    if not found:  # every quotable transition decides about its subscription
        raise rt.EvaluationError("internal_error", f"no decision about '{sub_id}'")
    return found[-1]


def _public(event: str, d: Decision, trial_days: int, charge_date: dt.date | None,
            reasons: tuple[str, ...]) -> Quote:
    return Quote(d.subscription, event, d.kind, d.currency, d.list, d.discounts, d.credit,
                 d.tax, d.net, d.total, d.psp, trial_days, charge_date, d.next_charge, d.due,
                 reasons, d.trace)


#: the key order of a quote on the wire
QUOTE_KEYS = ("subscription", "event", "kind", "currency", "list", "discounts", "credit",
              "tax", "net", "total", "psp", "trial_days", "charge_date", "next_charge", "due",
              "reasons", "trace")


def quote_to_wire(q: Quote) -> dict[str, Any]:
    """A quote as JSON-ready data: money as decimal strings in the currency's minor units
    (as a wire decision writes it), dates as ``YYYY-MM-DD``, keys in :data:`QUOTE_KEYS`."""
    from .wire import decision_to_wire

    wire = decision_to_wire(Decision(
        q.subscription, q.kind, q.currency, q.list, q.discounts, q.credit, q.tax, q.net,
        q.total, q.psp, q.trial_days, q.next_charge, q.due, reasons=q.reasons, trace=q.trace))
    out: dict[str, Any] = {}
    for key in QUOTE_KEYS:
        if key == "event":
            out[key] = q.event
        elif key == "charge_date":
            out[key] = None if q.charge_date is None else q.charge_date.isoformat()
        else:
            out[key] = wire[key]
    return out
