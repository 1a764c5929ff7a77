"""Tax by jurisdiction: what a VAT / OSS or sales-tax return needs.

Per currency and calendar month (UTC, the cash ledger's months), tax table, rate and
customer country: the taxable amount and the tax of the payments, and of the refunds.
**Refunds reduce the period they fall in** (the month of the ``payment.refunded``),
never the month of the payment they give back.

Where each figure comes from:

* the **rate** of a charge is the one the engine applied: the tax rate lines cited in
  the trace of the decision that opened the charge (one per tax table), matched to the
  ruleset's rate lines by source location;
* the **country** is the customer's ``country`` attribute (``(none)`` without one);
* a payment's tax is split between its tax tables exactly as the engine computes it
  (on the amount charged with the combined rate when tax is included, on the net when
  it is added), the last table taking any rounding residue so the parts add up to the
  payment's tax; a refund's tax is split in proportion to the tax of the payment it
  refunds, the last table again taking the residue;
* ``taxable`` is tax-exclusive (the revenue events' ``net``), the base each tax table
  taxed: with two tables a payment is in the base of both; ``net_tax`` per currency and
  month, all tables together, is exactly the cash ledger's ``tax``.

A charge decided before the log starts has no decision in it: its rate is ``(unknown)``.

>>> Taxes().rows()
()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import immutables

from . import runtime as rt
from .emission import where
from .ledger import month_of
from .results import Outcome, RevenueEvent
from .runtime import CONTEXT, in_context, money_str

if TYPE_CHECKING:
    from .ruleset import Ruleset
    from .state import Subscription

    Lookup = Callable[[str], Subscription | None]

__all__ = ["TAX_FIELDS", "TaxFigures", "TaxKey", "Taxes"]

ZERO = Decimal(0)
#: The figures of a :class:`TaxFigures`, in report order.
TAX_FIELDS = ("taxable", "tax", "refunded_taxable", "refunded_tax", "net_taxable", "net_tax",
              "payments", "refunds")
UNKNOWN = "(unknown)"
NONE = "(none)"


@attrs.frozen(order=True)
class TaxKey:
    """Where tax figures belong: currency, month, tax table, rate (a fraction: 0.19),
    customer country and storefront."""

    currency: str
    month: str
    table: str
    rate: Decimal | None  # None: unknown (the charge was decided before the log)
    country: str
    storefront: str

    @property
    def rate_text(self) -> str:
        """``19%``, ``7.7%``; ``(unknown)``."""
        if self.rate is None:
            return UNKNOWN
        percent = CONTEXT.multiply(self.rate, Decimal(100)).normalize(CONTEXT)
        return f"{rt.decimal_str(percent.quantize(Decimal(1)) if percent == percent.to_integral_value() else percent)}%"


@attrs.frozen
class TaxFigures:
    taxable: Decimal = ZERO
    tax: Decimal = ZERO
    refunded_taxable: Decimal = ZERO
    refunded_tax: Decimal = ZERO
    payments: int = 0
    refunds: int = 0

    @property
    def net_taxable(self) -> Decimal:
        return CONTEXT.subtract(self.taxable, self.refunded_taxable)

    @property
    def net_tax(self) -> Decimal:
        return CONTEXT.subtract(self.tax, self.refunded_tax)

    def __add__(self, other: TaxFigures) -> TaxFigures:
        if not isinstance(other, TaxFigures):
            return NotImplemented
        return TaxFigures(CONTEXT.add(self.taxable, other.taxable),
                          CONTEXT.add(self.tax, other.tax),
                          CONTEXT.add(self.refunded_taxable, other.refunded_taxable),
                          CONTEXT.add(self.refunded_tax, other.refunded_tax),
                          self.payments + other.payments, self.refunds + other.refunds)

    def to_wire(self, currency: str) -> dict[str, str | int]:
        out: dict[str, str | int] = {}
        for name in TAX_FIELDS:
            value = getattr(self, name)
            out[name] = money_str(value, currency) if isinstance(value, Decimal) else value
        return out


_EMPTY = TaxFigures()
Rates = tuple[tuple[str, Decimal | None], ...]  # (table, rate) per tax table


def _empty_map() -> immutables.Map[Any, Any]:
    return immutables.Map()


@attrs.frozen
class Taxes:
    """Tax figures folded from outcomes (decisions for the rates, the state for the
    customer's country, revenue events for the money); additive over logs split by
    subscription (:meth:`merge`, ``+``)."""

    cells: immutables.Map[TaxKey, TaxFigures] = attrs.field(factory=_empty_map)
    rates: immutables.Map[str, Rates] = attrs.field(factory=_empty_map)  # charge → rates
    paid: immutables.Map[str, tuple[Decimal, ...]] = attrs.field(factory=_empty_map)
    countries: immutables.Map[str, str] = attrs.field(factory=_empty_map)  # subscription

    @classmethod
    @in_context
    def from_outcomes(cls, outcomes: Iterable[Outcome], ruleset: Ruleset,
                      subscription: Lookup | None = None) -> Taxes:
        """``subscription`` finds a subscription the outcome's state does not hold (a
        store's outcomes keep no state: :meth:`revrules.store.Store.subscription`)."""
        return cls()._extend(outcomes, ruleset, subscription)

    @in_context
    def extend(self, outcomes: Iterable[Outcome], ruleset: Ruleset,
               subscription: Lookup | None = None) -> Taxes:
        return self._extend(outcomes, ruleset, subscription)

    def _extend(self, outcomes: Iterable[Outcome], ruleset: Ruleset,
                subscription: Lookup | None) -> Taxes:
        lines = _rate_lines(ruleset)
        cells, rates = self.cells.mutate(), self.rates.mutate()
        paid, countries = self.paid.mutate(), self.countries.mutate()
        for outcome in outcomes:
            if not outcome.ok:
                continue
            for d in outcome.decisions:
                if d.charge is not None and d.kind in ("charge", "credit") and \
                        d.charge not in rates and d.trace:
                    found = tuple(lines[t.source] for t in d.trace if t.source in lines)
                    rates[d.charge] = found if found else ((NONE, ZERO),)
            for e in outcome.events:
                if e.subscription not in countries:
                    sub = outcome.state.subscriptions.get(e.subscription)
                    if sub is None and subscription is not None:
                        sub = subscription(e.subscription)
                    country = sub.customer.get("country") if sub is not None else None
                    countries[e.subscription] = country if isinstance(country, str) else NONE
                if e.type == "payment.succeeded":
                    charge_rates = rates.get(e.charge or "") or ((UNKNOWN, None),)
                    parts = _split_payment(e, charge_rates, ruleset)
                    if e.charge is not None:
                        paid[e.charge] = parts
                    for (table, rate), part in zip(charge_rates, parts, strict=True):
                        key = TaxKey(e.currency, month_of(e.at), table, rate,
                                     countries[e.subscription], e.storefront)
                        cells[key] = cells.get(key, _EMPTY) + TaxFigures(
                            taxable=e.net, tax=part, payments=1)
                elif e.type == "payment.refunded":
                    charge_rates = rates.get(e.charge or "") or ((UNKNOWN, None),)
                    parts = _split_refund(e, paid.get(e.charge or ""), len(charge_rates))
                    for (table, rate), part in zip(charge_rates, parts, strict=True):
                        key = TaxKey(e.currency, month_of(e.at), table, rate,
                                     countries[e.subscription], e.storefront)
                        cells[key] = cells.get(key, _EMPTY) + TaxFigures(
                            refunded_taxable=e.net, refunded_tax=part, refunds=1)
        return Taxes(cells.finish(), rates.finish(), paid.finish(), countries.finish())

    @in_context
    def merge(self, other: Taxes) -> Taxes:
        cells = self.cells.mutate()
        for key, figures in other.cells.items():
            cells[key] = cells.get(key, _EMPTY) + figures
        return Taxes(cells.finish(), self.rates.update(other.rates),
                     self.paid.update(other.paid), self.countries.update(other.countries))

    def __add__(self, other: Taxes) -> Taxes:
        if not isinstance(other, Taxes):
            return NotImplemented
        return self.merge(other)

    # -- reading -----------------------------------------------------------------------
    def rows(self, storefronts: bool = False) -> tuple[tuple[TaxKey, TaxFigures], ...]:
        """Every (currency, month, table, rate, country) with figures, sorted; with
        ``storefronts``, split by storefront as well."""
        out: dict[TaxKey, TaxFigures] = {}
        for key, figures in self.cells.items():
            if not storefronts:
                key = attrs.evolve(key, storefront="")
            out[key] = out.get(key, _EMPTY) + figures
        return tuple(sorted(out.items(), key=lambda kv: _order(kv[0])))

    def by_month(self) -> dict[tuple[str, str], TaxFigures]:
        """Per (currency, month), every jurisdiction together."""
        out: dict[tuple[str, str], TaxFigures] = {}
        for key, figures in self.cells.items():
            at = (key.currency, key.month)
            out[at] = out.get(at, _EMPTY) + figures
        return dict(sorted(out.items()))

    def to_json(self) -> str:
        """:meth:`to_wire` as one deterministic JSON document."""
        from .wire import dumps

        return dumps(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return {"rows": [{"currency": k.currency, "month": k.month, "table": k.table,
                          "rate": k.rate_text, "country": k.country,
                          **f.to_wire(k.currency)} for k, f in self.rows()]}


def _order(key: TaxKey) -> tuple[Any, ...]:
    return (key.currency, key.month, key.table, key.rate is None, key.rate or ZERO,
            key.country, key.storefront)


def _rate_lines(ruleset: Ruleset) -> dict[str, tuple[str, Decimal | None]]:
    """Each tax rate line's ``file:line:col`` → (table, rate)."""
    out: dict[str, tuple[str, Decimal | None]] = {}
    for table in ruleset.model.taxes:
        for rate in table.rates:
            out[where(rate.rule.span)] = (table.name, rate.rate)
    return out


def _split_payment(event: RevenueEvent, rates: Rates, ruleset: Ruleset) -> tuple[Decimal, ...]:
    """A payment's tax per tax table, as the engine computes it; the last takes the residue."""
    if len(rates) == 1 or any(r is None for _, r in rates):
        return (event.tax,) + (ZERO,) * (len(rates) - 1)
    sf = ruleset.storefronts.get(event.storefront)
    mode = ruleset.rounding
    known = [r for _, r in rates if r is not None]
    combined = sum(known, ZERO)
    parts = []
    for _, rate in rates[:-1]:
        assert rate is not None
        if sf is not None and sf.tax_inclusive:
            parts.append(rt.split_inclusive(event.amount, rate, event.currency, mode, combined))
        else:
            parts.append(rt.percent_of(event.net, rate, event.currency, mode))
    parts.append(CONTEXT.subtract(event.tax, sum(parts, ZERO)))
    return tuple(parts)


def _split_refund(event: RevenueEvent, paid: tuple[Decimal, ...] | None,
                  tables: int) -> tuple[Decimal, ...]:
    """A refund's tax per tax table, in proportion to the payment's; the last the residue."""
    if tables == 1 or paid is None or len(paid) != tables:
        return (event.tax,) + (ZERO,) * (tables - 1)
    whole = sum(paid, ZERO)
    parts = [rt.prorate(event.tax, p, whole, event.currency, "ROUND_HALF_EVEN")
             for p in paid[:-1]]
    parts.append(CONTEXT.subtract(event.tax, sum(parts, ZERO)))
    return tuple(parts)
