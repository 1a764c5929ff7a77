"""Emission: the revenue events a transaction records, and the source strings and trace
entries that cite the rules behind them.

:func:`revenue_event` fills the fields every revenue event carries (its id, the
subscription's customer, storefront, channel, plan and currency, the ruleset); the
transaction adds the event-specific figures. :func:`charged` gives the figures of a
charge an event opens, :func:`where` the ``file:line:col`` of a rule, and
:class:`Citations` the shared, immutable :class:`~revrules.results.Trace` entries.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from . import model as m
from .pricing import Quote
from .drafts import maker
from .results import RevenueEvent, Trace
from .ruleset import Ruleset
from .state import Subscription

__all__ = ["Citations", "charged", "revenue_event", "where"]


def revenue_event(rules: Ruleset, number: str, kind: str, sub: Subscription, at: dt.datetime,
                  rule: str | None, source: Any, **fields: Any) -> RevenueEvent:
    """A revenue event of ``kind`` about ``sub``, with the id ``number``; ``source`` is a
    span (or a source string) of the rule ``rule`` that caused it."""
    sf = rules.storefronts[sub.storefront]
    return maker(RevenueEvent)(
        id=number, type=kind, at=at, subscription=sub.id, customer=sub.customer_id,
        storefront=sf.name, channel=sf.channel, plan=sub.plan, currency=sf.currency, rule=rule,
        source=where(source) if source is not None else None, ruleset=rules.name,
        version=rules.version, **fields)


def charged(quote: Quote, charge: str | None) -> dict[str, Any]:
    """The figures a revenue event carries for a charge it opens (tax-exclusive, as the
    ledger reads them; ``amount`` is what the customer owes) and the charge's id."""
    return {"gross": quote.gross_ex, "discount": quote.discount_ex, "credit": quote.credit_ex,
            "tax": quote.tax, "net": quote.net, "amount": quote.total, "charge": charge}


def where(source: Any) -> str:
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


class Citations:
    """The trace entries of one engine: one shared, immutable entry per (rule, span)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], Trace] = {}

    def cite(self, rule: str, span: m.Span) -> Trace:
        """The trace entry citing ``rule`` at ``span``."""
        key = (rule, id(span))  # spans live as long as the ruleset the engine holds
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = Trace(rule, where(span))
        return found
