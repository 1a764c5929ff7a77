"""The abstract syntax tree of a ``.rr`` file.

Nodes mirror the source: a declaration keeps its items in source order, so the
checker can report a duplicate ``every`` and the formatter can print the file back.
Every node carries a :class:`Span`; spans are excluded from equality and hashing,
so two files that differ only in layout have equal trees.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal as L
from typing import Union

import attrs


@attrs.frozen
class Span:
    """Where a node stands in its file: 1-based lines and columns, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Span("<builtin>", 0, 0, 0, 0)


def _span() -> Span:
    """A span field: defaults to :data:`NOWHERE`, left out of equality, hashing and repr."""
    # attrs' stubs type ``field(default=x)`` as the type of ``x``, so this reads as a Span
    # default to mypy while attrs still sees the field definition at class creation.
    return attrs.field(eq=False, default=NOWHERE, repr=False)


@attrs.frozen
class Ref:
    """A reference to a declaration by name (a storefront, plan, product, ...)."""

    name: str
    span: Span = _span()


# -- values --------------------------------------------------------------------------


@attrs.frozen
class Money:
    """An exact amount in one ISO 4217 currency."""

    currency: str
    amount: Decimal

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}"


DurationUnit = L["day", "week", "month", "year"]


@attrs.frozen
class Duration:
    """A calendar duration: ``14 days``, ``1 month``; added with relativedelta."""

    count: int
    unit: DurationUnit

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"


# -- expressions ---------------------------------------------------------------------

LiteralKind = L["money", "decimal", "int", "percent", "string", "bool", "date", "datetime",
                "duration"]


@attrs.frozen
class Literal:
    kind: LiteralKind
    value: object
    span: Span = _span()


@attrs.frozen
class Name:
    """A bare identifier inside an expression: ``total``, ``telecom``, ``web_eu``."""

    name: str
    span: Span = _span()


@attrs.frozen
class Field:
    """``obj.name``: ``customer.country``, ``storefront.channel``."""

    obj: Expr
    name: str
    span: Span = _span()


@attrs.frozen
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span = _span()


@attrs.frozen
class Unary:
    op: L["not", "-"]
    operand: Expr
    span: Span = _span()


BinaryOp = L["and", "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/"]


@attrs.frozen
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr
    span: Span = _span()

    def chain(self) -> list[Expr]:
        """The operands of the chain of this node's operator (``a or b or c``), in
        order, without recursion: what flat code and flat layout are made of."""
        operands: list[Expr] = []
        todo: list[Expr] = [self]
        while todo:
            e = todo.pop()
            if isinstance(e, Binary) and e.op == self.op:
                todo += (e.right, e.left)
            else:
                operands.append(e)
        return operands


@attrs.frozen
class SetLit:
    items: tuple[Expr, ...]
    span: Span = _span()


Expr = Union[Literal, Name, Field, Call, Unary, Binary, SetLit]


# -- declarations --------------------------------------------------------------------


@attrs.frozen
class Header:
    name: str
    version: str | None
    span: Span = _span()


@attrs.frozen
class Rounding:
    mode: str
    span: Span = _span()


@attrs.frozen
class Timezone:
    zone: str
    span: Span = _span()


@attrs.frozen
class AttrDecl:
    name: str
    type: Ref
    default: Literal | SetLit | None  # a set parses but the checker refuses it
    span: Span = _span()


@attrs.frozen
class CustomerSchema:
    attrs: tuple[AttrDecl, ...]
    span: Span = _span()


@attrs.frozen
class StorefrontItem:
    """One ``key value`` of a storefront block.

    ``key`` is one of channel, region, currency, tax, psp, commission, terms, formerly;
    ``value`` is a Ref (formerly: an earlier name), a str (tax mode), a tuple of Refs
    (psp), a Decimal percent or a Duration.
    """

    key: L["channel", "region", "currency", "tax", "psp", "commission", "terms", "formerly"]
    value: object
    span: Span = _span()


@attrs.frozen
class Storefront:
    name: str
    items: tuple[StorefrontItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class Product:
    name: str
    entitlements: tuple[Ref, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class Bundle:
    name: str
    products: tuple[Ref, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class PlanProduct:
    """``product X`` or ``bundle X``."""

    kind: L["product", "bundle"]
    target: Ref
    span: Span = _span()


@attrs.frozen
class PlanEvery:
    every: Duration
    span: Span = _span()


@attrs.frozen
class PlanTrial:
    length: Duration
    eligibility: Ref | None
    span: Span = _span()


@attrs.frozen
class PlanPrice:
    storefront: Ref
    price: Literal
    effective: dt.date | None = None
    existing: dt.date | None = None
    consent: bool = False
    span: Span = _span()


@attrs.frozen
class PlanNotSold:
    storefronts: tuple[Ref, ...]
    span: Span = _span()


@attrs.frozen
class PlanChange:
    kind: L["upgrade", "downgrade"]
    target: Ref
    timing: L["immediate", "period_end"]
    prorate: bool
    span: Span = _span()


@attrs.frozen
class PlanFormerly:
    """``formerly NAME``: an earlier name of the plan, for states written under it."""

    name: Ref
    span: Span = _span()


PlanItem = Union[PlanProduct, PlanEvery, PlanTrial, PlanPrice, PlanNotSold, PlanChange,
                 PlanFormerly]


@attrs.frozen
class Plan:
    name: str
    items: tuple[PlanItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class ContractItem:
    key: L["customer", "plan", "price", "valid"]
    value: object
    span: Span = _span()


@attrs.frozen
class Contract:
    name: str
    items: tuple[ContractItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class Deny:
    reason: str
    when: Expr
    span: Span = _span()


@attrs.frozen
class Eligibility:
    name: str
    denies: tuple[Deny, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class PromoTerm:
    """How long a discount lasts: ``once``, ``forever`` or ``for N cycles``."""

    kind: L["once", "forever", "cycles"]
    cycles: int | None = None
    span: Span = _span()


@attrs.frozen
class PromoItem:
    """One item of a promotion block.

    ``key`` → ``value``: code → str; automatic/stackable → None; plans/storefronts →
    tuple of Refs; valid → (date, date); percent → (Decimal, PromoTerm); amount →
    (Literal, PromoTerm); limit → tuple of ("total" | "per_customer", int); if → Expr.
    """

    key: L["code", "automatic", "plans", "storefronts", "valid", "percent", "amount", "limit",
           "if", "stackable"]
    value: object
    span: Span = _span()


@attrs.frozen
class Promotion:
    name: str
    items: tuple[PromoItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class TaxRate:
    rate: Decimal
    when: Expr | None
    span: Span = _span()


@attrs.frozen
class Tax:
    name: str
    rates: tuple[TaxRate, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class RouteRule:
    psp: Ref
    when: Expr | None
    span: Span = _span()


@attrs.frozen
class Route:
    name: str | None
    rules: tuple[RouteRule, ...]
    span: Span = _span()


@attrs.frozen
class DunningItem:
    """``retry`` → tuple of Durations; ``via`` → Ref; ``no_retry`` → Expr;
    ``grace`` → (Duration, "keep" | "revoke"); ``then`` → "cancel" | "pause" | "unpaid"."""

    key: L["retry", "via", "no_retry", "grace", "then"]
    value: object
    span: Span = _span()


@attrs.frozen
class Dunning:
    name: str
    when: Expr | None
    items: tuple[DunningItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class LifecycleItem:
    """``pause`` → (Duration, Expr | None); ``cancel`` → "period_end" | "immediate";
    ``refund`` → (kind, Duration | None, after) with kind "full" | "prorated" | "none"."""

    key: L["pause", "cancel", "refund"]
    value: object
    span: Span = _span()


@attrs.frozen
class Lifecycle:
    items: tuple[LifecycleItem, ...]
    span: Span = _span()


Decl = Union[Header, Rounding, Timezone, CustomerSchema, Storefront, Product, Bundle, Plan,
             Contract, Eligibility, Promotion, Tax, Route, Dunning, Lifecycle]


@attrs.frozen
class Comment:
    """A ``# …`` comment: its text (trailing white space removed) and where it stands."""

    text: str
    span: Span = _span()


@attrs.frozen
class Module:
    """A parsed ``.rr`` file: its declarations in source order.

    ``comments`` lists the file's comments in source order for the formatter; like
    ``source`` it is left out of equality, so comments never change what a file means.
    """

    file: str
    decls: tuple[Decl, ...]
    source: str = attrs.field(eq=False, repr=False, default="")
    comments: tuple[Comment, ...] = attrs.field(eq=False, repr=False, default=())
