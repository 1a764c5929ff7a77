"""The ledger identities of LANGUAGE.md §5.1, defined once.

The ledger (:mod:`revrules.ledger`) and reconciliation (:mod:`revrules.reconcile`) both
fold a subscription's revenue events through :func:`step`, so they agree on what is
open, paid, written off and recurring:

* a charge is **opened** by ``subscription.started`` (a checkout charged now),
  ``subscription.renewed``, or an immediate plan change that charges a proration
  (``subscription.upgraded`` / ``downgraded`` with an amount); it is **settled** by
  ``payment.succeeded``;
* **outstanding** is the tax-exclusive net of every opened, unsettled charge of a
  subscription that is not canceled. A dunning pause or ``unpaid`` keeps it
  outstanding;
* a **cancellation** with a charge open **writes it off**: it leaves outstanding in
  the month of the cancellation and counts as ``written_off`` there. Dunning's
  ``then cancel`` is the usual case; any other cancellation of a subscription that
  still owes (a store expiry, a cancel or refund while past due) writes off the same
  way, so that every opened charge is paid, outstanding or written off;
* **MRR** at a month end counts every subscription that is ``active`` or
  ``past_due`` at that moment, paid up or not, at its recurring price: the
  ``recurring`` figure of the latest event that fixed it (a charged start, a renewal, a
  plan change), which is tax-exclusive and after recurring discounts (a promotion for
  more than one cycle, or forever; not a ``once`` discount, not a proration), divided
  by the months of the plan's billing period and rounded once. ``trialing``,
  ``paused``, ``unpaid`` and ``canceled`` count none.

>>> Account().outstanding
Decimal('0')
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from .results import RevenueEvent
from .runtime import CONTEXT, quantize

__all__ = ["MRR_STATUSES", "OPENING", "Account", "OpenCharge", "Step", "monthly", "step"]

ZERO = Decimal(0)

#: Revenue events that open a charge when they carry an amount.
OPENING = frozenset({"subscription.started", "subscription.renewed", "subscription.upgraded",
                     "subscription.downgraded"})
#: The statuses that count as active and add MRR.
MRR_STATUSES = frozenset({"active", "past_due"})
_CHANGES = frozenset({"subscription.upgraded", "subscription.downgraded"})


@attrs.frozen
class OpenCharge:
    """A decided, unpaid charge as the revenue events tell it."""

    event: str  # the revenue event that opened it
    at: dt.datetime
    currency: str
    net: Decimal  # tax-exclusive: what the ledger counts
    amount: Decimal  # what the customer owes (tax included where it applies)
    rule: str | None
    source: str | None
    date: dt.date | None = None  # the period it charges starts here, when the event says


@attrs.frozen
class Account:
    """One subscription as the books see it after some of its revenue events."""

    status: str | None = None  # None: not started yet (trial.blocked, campaign.applied …)
    recurring: Decimal | None = None  # tax-exclusive recurring price per billing period
    charge: OpenCharge | None = None
    failed_in: str | None = None  # the input event of the last payment.failed

    @property
    def outstanding(self) -> Decimal:
        """The tax-exclusive net owed: the open charge, unless the subscription is canceled."""
        if self.charge is None or self.status == "canceled":
            return ZERO
        return self.charge.net

    @property
    def counts_mrr(self) -> bool:
        return self.status in MRR_STATUSES


@attrs.frozen
class Step:
    """The account after one event, and what the event did to the books."""

    account: Account
    churn: bool = False  # canceled, or moved to ``unpaid`` by dunning
    opened: OpenCharge | None = None
    settled: OpenCharge | None = None
    written_off: OpenCharge | None = None


def monthly(recurring: Decimal, months: Decimal, currency: str) -> Decimal:
    """A recurring price per billing period of ``months`` months, as MRR (rounded once)."""
    return quantize(CONTEXT.divide(recurring, months), currency)


def step(account: Account, event: RevenueEvent) -> Step:
    """Fold one revenue event of the account's subscription."""
    kind = event.type
    status, recurring, charge = account.status, account.recurring, account.charge
    failed_in = account.failed_in
    churn = False
    opened = settled = written_off = None
    if kind == "trial.granted":
        status = "trialing"
    elif kind == "subscription.started":
        if status != "trialing":
            status = "active"
    elif kind in ("trial.expired", "subscription.resumed"):
        status = "active"
    elif kind == "payment.failed":
        status = "past_due" if status in MRR_STATUSES else status
        failed_in = _input_event(event.id)
        if charge is not None and event.rule is not None:
            # a failure cites the rule that decided the charge (a checkout's start cites
            # its plan)
            charge = attrs.evolve(charge, rule=event.rule, source=event.source)
    elif kind == "payment.succeeded":
        settled, charge = charge, None
        if status == "past_due":
            status = "active"
    elif kind == "subscription.paused":
        status = "paused"
    elif kind == "subscription.canceled":
        churn = status not in ("canceled", "unpaid")
        status = "canceled"
        written_off, charge = charge, None
    elif kind == "entitlement.revoked" and status == "past_due" and (
            event.rule or "").startswith("dunning ") and _input_event(event.id) != failed_in:
        status, churn = "unpaid", True  # dunning ended with `then unpaid`
    if kind in OPENING:
        if event.recurring is not None:
            recurring = event.recurring
        elif kind not in _CHANGES and event.amount:
            recurring = event.net  # a log written before events carried `recurring`
        if event.amount:
            opened = charge = OpenCharge(event.id, event.at, event.currency, event.net,
                                         event.amount, event.rule, event.source,
                                         event.date or event.at.date())
    new = Account(status, recurring, charge, failed_in)
    if new == account:
        new = account
    return Step(new, churn, opened, settled, written_off)


def _input_event(revenue_event_id: str) -> str:
    """The input event a revenue event came from (its id is ``INPUT.N``)."""
    return revenue_event_id.rpartition(".")[0] or revenue_event_id
