"""MRR movements: how the MRR of one month end became the next.

Derived from a :class:`~revrules.ledger.Ledger` (its per-subscription tracks), so it is
as additive as the ledger: the movements of a merged ledger are those of the whole log.
For each subscription and month, compare its MRR at the end of the previous month
(``before``) with its MRR at the end of this one (``after``), both as the ledger counts
MRR (LANGUAGE.md §5.1: active or past due, recurring price per month, rounded once):

* **new**: ``before`` = 0 < ``after`` and the subscription never counted MRR before;
* **reactivated**: ``before`` = 0 < ``after`` and it counted MRR at an earlier month end
  (back from a pause, from ``unpaid``, from a trial after a lapse …);
* **expansion** / **contraction**: both above 0, ``after`` − ``before`` when positive /
  ``before`` − ``after`` when positive (upgrades, downgrades, a promotion ending, a
  price change);
* **churned**: ``before`` > 0 = ``after`` (canceled, paused, unpaid).

Per currency and month: opening + new + reactivated + expansion − contraction − churned
= closing, exactly, and closing is the ledger's MRR of that month, opening the previous
month's closing. Breakdowns by plan, storefront or channel use the subscription's value
at the month end it counts at (``after``, or ``before`` when it churned); a subscription
that moved from one plan (storefront) to another between two month ends moves its
``before`` MRR out of the old one (``moved_out``) and into the new (``moved_in``), so
each breakdown row ties out too, and the moves cancel in the total.

>>> from revrules.ledger import Ledger
>>> movements(Ledger()).rows()
()
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs

from . import accounting
from .ledger import Ledger, Point, _months, month_ends
from .runtime import CONTEXT, in_context, money_str

__all__ = ["DIMENSIONS", "MOVEMENT_FIELDS", "Movement", "Movements", "movements"]

ZERO = Decimal(0)
#: The figures of a :class:`Movement`, in report order.
MOVEMENT_FIELDS = ("opening", "new", "reactivated", "expansion", "contraction", "churned",
                   "moved_in", "moved_out", "closing")
#: What a breakdown may be by.
DIMENSIONS = ("total", "plan", "storefront", "channel")


@attrs.frozen
class Movement:
    """One month's MRR movements (of a currency, or of one plan, storefront or channel)."""

    opening: Decimal = ZERO
    new: Decimal = ZERO
    reactivated: Decimal = ZERO
    expansion: Decimal = ZERO
    contraction: Decimal = ZERO
    churned: Decimal = ZERO
    moved_in: Decimal = ZERO
    moved_out: Decimal = ZERO
    closing: Decimal = ZERO

    def __add__(self, other: Movement) -> Movement:
        if not isinstance(other, Movement):
            return NotImplemented
        return Movement(*[CONTEXT.add(getattr(self, f), getattr(other, f))
                          for f in MOVEMENT_FIELDS])

    @property
    def ties_out(self) -> bool:
        """opening + new + reactivated + expansion − contraction − churned + moved_in −
        moved_out = closing."""
        total = self.opening + self.new + self.reactivated + self.expansion \
            - self.contraction - self.churned + self.moved_in - self.moved_out
        return total == self.closing

    @property
    def is_zero(self) -> bool:
        return all(not getattr(self, f) for f in MOVEMENT_FIELDS)

    def to_wire(self, currency: str) -> dict[str, str]:
        return {f: money_str(getattr(self, f), currency) for f in MOVEMENT_FIELDS}


_EMPTY = Movement()


@attrs.frozen
class Movements:
    """MRR movements per (dimension, currency, key, month); ``key`` is the plan,
    storefront or channel, or ``""`` for the currency's total."""

    cells: tuple[tuple[tuple[str, str, str, str], Movement], ...] = ()

    def rows(self, by: str = "total") -> tuple[tuple[str, str, str, Movement], ...]:
        """(currency, key, month, movement), sorted; ``by`` is one of :data:`DIMENSIONS`."""
        if by not in DIMENSIONS:
            raise ValueError(f"movements by {by!r}: choose one of {', '.join(DIMENSIONS)}")
        return tuple((c, k, m, mv) for (d, c, k, m), mv in self.cells if d == by)

    def by_month(self) -> dict[tuple[str, str], Movement]:
        """The totals per (currency, month)."""
        return {(c, m): mv for c, _, m, mv in self.rows("total")}

    def to_json(self) -> str:
        """:meth:`to_wire` as one deterministic JSON document."""
        from .wire import dumps

        return dumps(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for by in DIMENSIONS:
            out[by] = [{"currency": c, **({by: k} if by != "total" else {}), "month": m,
                        **mv.to_wire(c)} for c, k, m, mv in self.rows(by)]
        return out


def _steps(ledger: Ledger, points: tuple[Point, ...], last: str,
           inferred: dict[str, Decimal]) -> Iterator[tuple[Point, str, Decimal]]:
    """One subscription's (point at month end, month, MRR) for each month from its first
    event on, as the ledger counts MRR; it stops after the month its MRR ends for good."""
    for month, current, final in month_ends(points, last):
        counts = current.status in accounting.MRR_STATUSES
        yield current, month, ledger._mrr(current, inferred) if counts else ZERO
        if not counts and final:
            return


@in_context
def movements(ledger: Ledger) -> Movements:
    """The MRR movements of a ledger, per currency and month, in total and by plan,
    storefront and channel."""
    cells: dict[tuple[str, str, str, str], Movement] = {}

    def add(by: str, currency: str, key: str, month: str, **figures: Decimal) -> None:
        at = (by, currency, key, month)
        cells[at] = cells.get(at, _EMPTY) + Movement(**figures)

    last = ledger.last_month
    if last is None:
        return Movements()
    inferred = ledger._inferred_periods()
    for _, track in sorted(ledger.tracks.items()):
        if not track.points:
            continue
        was: Point | None = None
        before = ZERO
        counted = False
        for point, month, after in _steps(ledger, track.points, last, inferred):
            if was is not None and was.currency != point.currency:
                _step(add, was, month, before, None, ZERO, counted)
                was, before = None, ZERO
            _step(add, was, month, before, point, after, counted)
            counted = counted or bool(after)
            was, before = point, after
    months: dict[str, set[str]] = {}
    for _, currency, _, month in cells:
        months.setdefault(currency, set()).add(month)
    for currency, seen in months.items():  # months with no movement still have MRR
        for month in _months(min(seen), last):
            cells.setdefault(("total", currency, "", month), _EMPTY)
    return Movements(tuple(sorted(cells.items())))


def _step(add: Any, was: Point | None, month: str, before: Decimal, now: Point | None,
          after: Decimal, counted: bool) -> None:
    """Book one subscription's change from the previous month end to this one."""
    currency = (now or was).currency  # type: ignore[union-attr]
    for by in DIMENSIONS:
        old = "" if by == "total" or was is None else getattr(was, by)
        new = "" if by == "total" or now is None else getattr(now, by)
        if before:
            add(by, currency, old, month, opening=before)
        if after:
            add(by, currency, new, month, closing=after)
        if before and not after:
            add(by, currency, old, month, churned=before)
        elif after and not before:
            add(by, currency, new, month, **{"reactivated" if counted else "new": after})
        elif before and after:
            if old != new:
                add(by, currency, old, month, moved_out=before)
                add(by, currency, new, month, moved_in=before)
            if after > before:
                add(by, currency, new, month, expansion=after - before)
            elif before > after:
                add(by, currency, new, month, contraction=before - after)
