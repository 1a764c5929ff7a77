"""What the engine returns: priced decisions, revenue events and outcomes (WIRE.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs

from .drafts import drafts

if TYPE_CHECKING:
    from .state import State

__all__ = ["Decision", "Discount", "Outcome", "RevenueEvent", "Trace", "Error"]

DecisionKind = Literal["charge", "credit", "refund", "none", "deny"]
ZERO = Decimal(0)


@attrs.frozen(weakref_slot=False)
class Trace:
    """A rule that fired, with its source location (``file:line:col``)."""

    rule: str
    source: str


@attrs.frozen(weakref_slot=False)
class Discount:
    rule: str
    amount: Decimal


@attrs.frozen(weakref_slot=False)
class Decision:
    """A priced decision about one subscription.

    ``total`` is what the customer pays now: list − discounts − credit (+ tax on a
    tax-exclusive storefront); ``net`` is that amount without tax.
    """

    subscription: str
    kind: DecisionKind
    currency: str | None = None
    list: Decimal = ZERO
    discounts: tuple[Discount, ...] = ()
    credit: Decimal = ZERO
    tax: Decimal = ZERO
    net: Decimal = ZERO
    total: Decimal = ZERO
    psp: str | None = None
    trial_days: int = 0
    next_charge: dt.date | None = None
    due: dt.date | None = None
    retry_at: dt.date | None = None
    grace_ends: dt.date | None = None
    reasons: tuple[str, ...] = ()
    trace: tuple[Trace, ...] = ()
    charge: str | None = None  # the id of the charge the decision opens, retries, pays or refunds


@attrs.frozen(weakref_slot=False)
class RevenueEvent:
    """A timestamped, traceable fact about revenue.

    Amounts are tax-exclusive ledger figures (LANGUAGE.md §6, §5.1): ``gross`` the list
    price, ``discount``, ``credit``, ``tax`` and ``net`` = gross − discount − credit;
    ``amount`` is the money that moves (tax included where it applies). ``list`` is a
    price as the ruleset states it, before tax is taken out (``price.changed`` and
    ``consent.*``). ``recurring`` is the subscription's recurring price per billing
    period from this event on, tax-exclusive and after recurring discounts: what MRR
    counts (set by the events that fix it — a charged start, a renewal, a plan change).
    """

    id: str
    type: str
    at: dt.datetime
    subscription: str
    customer: str
    storefront: str
    channel: str
    plan: str
    currency: str
    gross: Decimal = ZERO
    discount: Decimal = ZERO
    credit: Decimal = ZERO
    tax: Decimal = ZERO
    net: Decimal = ZERO
    amount: Decimal = ZERO
    commission: Decimal = ZERO
    rule: str | None = None
    source: str | None = None
    psp: str | None = None
    reasons: tuple[str, ...] = ()
    entitlements: tuple[str, ...] = ()
    date: dt.date | None = None  # the date the event points at: retry, period end, …
    ruleset: str | None = None
    version: str | None = None
    charge: str | None = None  # the charge it opens, pays, fails, retries or refunds
    list: Decimal | None = None
    recurring: Decimal | None = None


@attrs.frozen(weakref_slot=False)
class Error:
    """Why an event could not be applied: a stable ``code`` and a human ``message``."""

    code: str
    message: str


@attrs.frozen(weakref_slot=False)
class Outcome:
    """The result of applying one event: the new state, decisions and revenue events.

    When ``ok`` is false, ``state`` is exactly the state before the event and
    ``error`` says why. A replayed event (an id already applied) is ``ok`` with
    ``replayed`` set and changes nothing.
    """

    event: str
    ok: bool
    state: State = attrs.field(repr=False)
    decisions: tuple[Decision, ...] = ()
    events: tuple[RevenueEvent, ...] = ()
    error: Error | None = None
    replayed: bool = False


#: Fast constructors (:mod:`revrules.drafts`): the same values as the classes build.
make_decision: Callable[..., Decision] = drafts(Decision)[0]
make_revenue_event: Callable[..., RevenueEvent] = drafts(RevenueEvent)[0]
make_outcome: Callable[..., Outcome] = drafts(Outcome)[0]
