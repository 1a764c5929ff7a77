"""The checked model of a ruleset: what the checker hands to the compiler.

Where the AST mirrors the source, the model says what the source means: names are
resolved, percentages are fractions, a plan knows its entitlements and its price
schedule per storefront. Expressions stay as AST nodes with their inferred types;
:mod:`revrules.compiler` turns them into Python code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

import attrs

from .nodes import Duration, Expr
from .nodes import Span as Span  # re-exported: engine and ruleset use m.Span

CHANNELS = ("web", "app_store", "play_store", "telecom", "partner", "direct")
STORE_CHANNELS = frozenset({"app_store", "play_store"})


@attrs.frozen
class Type:
    """The static type of an expression.

    ``kind`` is one of int, decimal, percent, money, string, bool, date, datetime,
    duration, set, channel, storefront, plan, region, psp. ``currency`` is known for
    money literals and None when it depends on the storefront; ``optional`` marks a
    customer attribute that has no default and may be absent.
    """

    kind: str
    currency: str | None = None
    elem: Type | None = None
    optional: bool = False

    def __str__(self) -> str:
        if self.kind == "money" and self.currency:
            return f"money ({self.currency})"
        if self.kind == "set" and self.elem is not None:
            return f"set of {self.elem}"
        return self.kind


@attrs.frozen
class Attribute:
    name: str
    type: str  # int | decimal | string | bool | date
    default: object | None
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Storefront:
    name: str
    channel: str
    region: str
    currency: str
    tax_inclusive: bool
    psps: tuple[str, ...]
    commission: Decimal  # a fraction: 15% → 0.15
    terms: Duration | None
    span: Span = attrs.field(eq=False)
    formerly: tuple[str, ...] = ()  # earlier names (`formerly`), for states written under them

    @property
    def store_managed(self) -> bool:
        """True where the store is the merchant of record and runs its own retries."""
        return self.channel in STORE_CHANNELS


@attrs.frozen
class Product:
    name: str
    entitlements: tuple[str, ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class PriceEntry:
    """One ``price`` line: an amount from a date (None: always) for one storefront."""

    storefront: str
    currency: str
    amount: Decimal
    effective: dt.date | None
    existing: dt.date | None  # when existing subscriptions move; defaults to effective
    consent: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class PlanChange:
    kind: Literal["upgrade", "downgrade"]
    target: str
    timing: Literal["immediate", "period_end"]
    prorate: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Trial:
    length: Duration
    eligibility: str | None
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Plan:
    name: str
    products: tuple[str, ...]
    entitlements: tuple[str, ...]
    every: Duration
    trial: Trial | None
    prices: tuple[PriceEntry, ...]  # sorted by storefront, then effective date
    not_sold: frozenset[str]
    changes: tuple[PlanChange, ...]
    span: Span = attrs.field(eq=False)
    formerly: tuple[str, ...] = ()  # earlier names (`formerly`), for states written under them


@attrs.frozen
class Contract:
    name: str
    customer: str
    plan: str
    currency: str
    amount: Decimal
    valid_from: dt.date
    valid_to: dt.date
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Rule:
    """A condition with its provenance: ``name`` is how traces and reasons cite it."""

    name: str
    when: Expr | None
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Deny:
    reason: str
    rule: Rule


@attrs.frozen
class Eligibility:
    name: str
    denies: tuple[Deny, ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Promotion:
    name: str
    code: str | None
    automatic: bool
    plans: frozenset[str] | None  # None: every plan
    storefronts: frozenset[str] | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    kind: Literal["percent", "amount"]
    value: Decimal  # a fraction for percent, an amount for amount
    currency: str | None
    term: Literal["once", "forever", "cycles"]
    cycles: int | None  # charged cycles the discount lasts; None: forever
    limit_total: int | None
    limit_per_customer: int | None
    condition: Rule | None
    stackable: bool
    order: int  # source order, for ties
    span: Span = attrs.field(eq=False)


@attrs.frozen
class TaxRate:
    rate: Decimal  # fraction
    rule: Rule


@attrs.frozen
class TaxTable:
    name: str
    rates: tuple[TaxRate, ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class RouteRule:
    psp: str
    rule: Rule


@attrs.frozen
class DunningPolicy:
    name: str
    applies: Rule | None
    retries: tuple[Duration, ...]
    via: str | None
    no_retry: Rule | None
    grace: Duration | None
    keep_entitlements: bool
    then: Literal["cancel", "pause", "unpaid"]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class LifecyclePolicy:
    pause_max: Duration | None
    pause_rule: Rule | None
    cancel: Literal["period_end", "immediate"]
    refund: Literal["full", "prorated", "none"]
    refund_within: Duration | None
    refund_after: Literal["prorated", "none", "full"]
    span: Span = attrs.field(eq=False)


DEFAULT_LIFECYCLE = LifecyclePolicy(None, None, "period_end", "none", None, "none",
                                    Span("<default>", 0, 0, 0, 0))


@attrs.frozen
class Model:
    """A ruleset that passed the checker."""

    name: str
    version: str | None
    file: str
    rounding: str  # a key of runtime.ROUNDING_MODES
    timezone: str
    attributes: tuple[Attribute, ...]
    storefronts: tuple[Storefront, ...]
    products: tuple[Product, ...]
    plans: tuple[Plan, ...]
    contracts: tuple[Contract, ...]
    eligibilities: tuple[Eligibility, ...]
    promotions: tuple[Promotion, ...]
    taxes: tuple[TaxTable, ...]
    route: tuple[RouteRule, ...]
    dunning: tuple[DunningPolicy, ...]
    lifecycle: LifecyclePolicy
    types: dict[int, Type] = attrs.field(eq=False, repr=False)  # id(expr) → type
    source: str = attrs.field(eq=False, repr=False, default="")
