"""Static semantic diff: what changed between two rulesets, shown by example.

:func:`static_diff` compares two checked rulesets without an event log. It lists every
plan, price schedule, promotion, contract, tax table, route, eligibility rule, dunning
policy, lifecycle policy, storefront, product and customer attribute that was added,
removed or changed (with both source locations and texts), and for each one searches
for a concrete input whose outcome differs, applying real events with
:meth:`revrules.Engine.apply` under both rulesets:

1. over the conditions' boundaries: every date the rulesets name (price schedules,
   promotion windows, contracts, date literals) and the day either side; every
   attribute value a condition compares against (±1 for numbers, one value matching
   none of them); every plan × storefront; every promotion code; the payment failure
   reasons and subscription cycles the conditions name;
2. then, when that finds nothing, with hypothesis (``revrules.testing.customers``),
   derandomized so that the result never varies.

A scenario is a checkout from an empty state, followed where the change needs it by a
short valid history: payments, renewals, a failed payment (dunning), a refund, a
cancellation or a pause request (lifecycle). The example is the scenario up to its
first event whose outcome differs (decisions, revenue events, or an error code).
Rule names, source locations and the ruleset's name and version are not outcomes.

>>> import revrules
>>> from revrules.semdiff import static_diff
>>> old = revrules.load("rulesets/streaming.rr")                       # doctest: +SKIP
>>> new = revrules.load("examples/streaming-price-rise.rr")            # doctest: +SKIP
>>> print(static_diff(old, new).render())                              # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from . import nodes as n
from .engine import Engine
from .results import Decision, Outcome, RevenueEvent
from .ruleset import Ruleset
from .runtime import EvaluationError, add_periods, in_context, money_str
from .state import State
from .text import printable_lines
from .wire import outcome_to_wire

__all__ = ["Change", "Example", "StaticDiff", "static_diff"]

#: How many events (each applied under both rulesets) the boundary search may apply
#: per change, and how many hypothesis examples follow when it finds nothing.
MAX_EVENTS = 3000
HYPOTHESIS_EXAMPLES = 50
#: Renewals a scenario runs at most (``subscription.cycle >= 12`` needs 11).
MAX_RENEWALS = 13
_FALLBACK_DAY = dt.date(2027, 1, 1)
_ABSENT = object()  # a customer attribute left out: its default applies
_CUSTOMER_ID = "c1"
_SUB = "s1"


@attrs.frozen
class Side:
    """One side of a change: where it stands and its source text."""

    source: str  # file:line:col
    text: str


@attrs.frozen
class Example:
    """An input whose outcome differs: the events (wire objects), a description of each,
    and what the last one decided under each ruleset."""

    events: tuple[Mapping[str, Any], ...]
    steps: tuple[str, ...]
    old: str
    new: str
    found_by: str = "boundaries"  # or "hypothesis"
    #: the last event's outcome under each ruleset, as WIRE.md outcome lines
    old_outcome: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    new_outcome: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    #: 0: the outcomes differ and cite the changed rule; 1: they differ without citing
    #: it; 2: only reasons differ (a rule's text). The search goes on while above 0.
    rank: int = attrs.field(default=0, eq=False, repr=False)


@attrs.frozen
class Change:
    """One declaration added, removed or changed, and what the search found."""

    kind: str  # plan, price, promotion, contract, eligibility, tax, route, dunning, ...
    name: str
    status: str  # added | removed | changed
    old: Side | None
    new: Side | None
    example: Example | None
    searched: int

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}" if self.name else self.kind


@attrs.frozen
class StaticDiff:
    """Every change between two rulesets, sorted by kind and name."""

    old_label: str
    new_label: str
    changes: tuple[Change, ...]

    @property
    def differs(self) -> bool:
        """True when some input's outcome differs (``revrules diff`` exits 1)."""
        return any(c.example is not None for c in self.changes)

    def to_wire(self) -> dict[str, Any]:
        def side(s: Side | None) -> dict[str, str] | None:
            return None if s is None else {"source": s.source, "text": s.text}

        return {
            "old": self.old_label, "new": self.new_label, "differs": self.differs,
            "changes": [{
                "kind": c.kind, "name": c.name, "status": c.status,
                "old": side(c.old), "new": side(c.new), "searched": c.searched,
                "example": None if c.example is None else {
                    "events": [dict(e) for e in c.example.events],
                    "steps": list(c.example.steps),
                    "old": c.example.old, "new": c.example.new,
                    "found_by": c.example.found_by,
                    "old_outcome": dict(c.example.old_outcome),
                    "new_outcome": dict(c.example.new_outcome)},
            } for c in self.changes],
        }

    def render(self) -> str:
        """Plain text for a code review: deterministic, sorted."""
        lines = [f"semantic diff: {self.old_label} → {self.new_label}"]
        if not self.changes:
            lines.append("no changes")
            return printable_lines(lines)
        differing = sum(1 for c in self.changes if c.example is not None)
        lines.append(f"{len(self.changes)} change{'s' if len(self.changes) != 1 else ''}, "
                     f"{differing} with an example whose outcome differs")
        for c in self.changes:
            lines.append("")
            lines.append(f"{c.status} {c.title}")
            for label, s in (("old", c.old), ("new", c.new)):
                if s is None:
                    continue
                lines.append(f"  {label} {s.source}")
                lines.extend(f"    {text}" for text in s.text.split("\n"))
            if c.example is None:
                lines.append(f"  no input found whose outcome differs (searched {c.searched} "
                             f"input{'s' if c.searched != 1 else ''})")
                continue
            lines.append("  example:" if c.example.found_by == "boundaries"
                         else f"  example (found by {c.example.found_by}):")
            lines.extend(f"    {step}" for step in c.example.steps)
            lines.append(f"  old: {c.example.old}")
            lines.append(f"  new: {c.example.new}")
        return printable_lines(lines)


# -- the structural part ---------------------------------------------------------------


@attrs.frozen
class _Item:
    kind: str
    name: str
    value: object  # compared for equality (spans are not part of it)
    spans: tuple[m.Span, ...]


def _items(model: m.Model) -> dict[tuple[str, str], _Item]:
    out: dict[tuple[str, str], _Item] = {}

    def put(kind: str, name: str, value: object, *spans: m.Span) -> None:
        out[(kind, name)] = _Item(kind, name, value, spans)

    for a in model.attributes:
        put("customer attribute", a.name, a, a.span)
    for s in model.storefronts:
        put("storefront", s.name, s, s.span)
    for p in model.products:
        put("product", p.name, p, p.span)
    for plan in model.plans:
        put("plan", plan.name, attrs.evolve(plan, prices=()), plan.span)
        schedules: dict[str, list[m.PriceEntry]] = {}
        for entry in plan.prices:
            schedules.setdefault(entry.storefront, []).append(entry)
        for storefront, entries in schedules.items():
            put("price", f"{plan.name} {storefront}", tuple(entries),
                *(e.span for e in entries))
    for c in model.contracts:
        put("contract", c.name, c, c.span)
    for e in model.eligibilities:
        put("eligibility", e.name, e, e.span)
    for promo in model.promotions:
        put("promotion", promo.name, attrs.evolve(promo, order=0), promo.span)
    for t in model.taxes:
        put("tax", t.name, t, t.span)
    if model.route:
        put("route", "", model.route, *(r.rule.span for r in model.route))
    for d in model.dunning:
        put("dunning", d.name, d, d.span)
    if model.lifecycle != m.DEFAULT_LIFECYCLE:
        put("lifecycle", "", model.lifecycle, model.lifecycle.span)
    return out


_KIND_ORDER = ("customer attribute", "storefront", "product", "plan", "price", "contract",
               "eligibility", "promotion", "tax", "route", "dunning", "lifecycle")


def _side(ruleset: Ruleset, item: _Item) -> Side:
    spans = item.spans
    texts = []
    for span in spans:
        texts.extend(_span_text(ruleset, span, whole=len(spans) == 1))
    return Side(str(spans[0]) if spans else ruleset.model.file, "\n".join(texts))


def _span_text(ruleset: Ruleset, span: m.Span, whole: bool) -> list[str]:
    """The lines a span covers (its first line only unless ``whole``), dedented."""
    lines = ruleset.lines
    if not 0 < span.line <= len(lines):
        return []
    last = span.line
    if whole and span.end_line > span.line:
        last = span.end_line - 1 if span.end_column == 1 else span.end_line
    block = [text.rstrip() for text in lines[span.line - 1:min(last, len(lines))]]
    return textwrap.dedent("\n".join(block)).split("\n")


# -- the search space ------------------------------------------------------------------


def _exprs(model: m.Model) -> Iterator[n.Expr]:
    rules: list[m.Rule | None] = []
    for e in model.eligibilities:
        rules.extend(d.rule for d in e.denies)
    rules.extend(p.condition for p in model.promotions)
    for t in model.taxes:
        rules.extend(r.rule for r in t.rates)
    rules.extend(r.rule for r in model.route)
    for d in model.dunning:
        rules.extend((d.applies, d.no_retry))
    rules.append(model.lifecycle.pause_rule)
    for rule in rules:
        if rule is not None and rule.when is not None:
            yield rule.when


def _walk(expr: n.Expr) -> Iterator[n.Expr]:
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, n.Binary):
            stack.extend((e.right, e.left))
        elif isinstance(e, n.Unary):
            stack.append(e.operand)
        elif isinstance(e, n.Call):
            stack.extend(reversed(e.args))
        elif isinstance(e, n.SetLit):
            stack.extend(reversed(e.items))
        elif isinstance(e, n.Field):
            stack.append(e.obj)


def _path(e: n.Expr) -> str | None:
    if isinstance(e, n.Field) and isinstance(e.obj, n.Name):
        return f"{e.obj.name}.{e.name}"
    return None


def _literals(e: n.Expr) -> list[object]:
    if isinstance(e, n.Literal):
        return [e.value]
    if isinstance(e, n.SetLit):
        return [i.value for i in e.items if isinstance(i, n.Literal)]
    return []


def _compared(models: Iterable[m.Model]) -> dict[str, list[object]]:
    """Per ``obj.field`` path, the literals conditions compare it against."""
    found: dict[str, list[object]] = {}
    for model in models:
        for expr in _exprs(model):
            for e in _walk(expr):
                if isinstance(e, n.Binary) and e.op in ("==", "!=", "<", "<=", ">", ">=",
                                                          "in", "not in"):
                    for a, b in ((e.left, e.right), (e.right, e.left)):
                        path = _path(a)
                        if path is not None:
                            for value in _literals(b):
                                if value not in found.setdefault(path, []):
                                    found[path].append(value)
    return found


def _near(values: Iterable[object]) -> list[object]:
    """The values and, for numbers, each ±1; in first-seen order without repeats."""
    out: list[object] = []
    for value in values:
        extra: list[object] = [value]
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            extra += [value + 1, value - 1]
        for v in extra:
            if v not in out:
                out.append(v)
    return out


def _wire_value(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@attrs.frozen
class _Space:
    dates: tuple[dt.date, ...]
    customers: tuple[dict[str, Any], ...]
    offers: tuple[tuple[str, str], ...]  # (plan, storefront), sold under either ruleset
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    cycles: tuple[int, ...]


def _space(old: Ruleset, new: Ruleset) -> _Space:
    models = (old.model, new.model)
    compared = _compared(models)
    days: set[dt.date] = set()
    for model in models:
        for plan in model.plans:
            for e in plan.prices:
                days.update(d for d in (e.effective, e.existing) if d is not None)
        for p in model.promotions:
            days.update(d for d in (p.valid_from, p.valid_to) if d is not None)
        for c in model.contracts:
            days.update((c.valid_from, c.valid_to))
    for literals in compared.values():
        days.update(v for v in literals if isinstance(v, dt.date) and not isinstance(
            v, dt.datetime))
    near = {d + dt.timedelta(days=k) for d in days for k in (-1, 0, 1)} or {_FALLBACK_DAY}
    dates = tuple(sorted(near))

    attributes: dict[str, m.Attribute] = {}
    for model in (new.model, old.model):
        for a in model.attributes:
            attributes.setdefault(a.name, a)
    both = {a.name for a in old.model.attributes} & {a.name for a in new.model.attributes}
    choices: list[tuple[str, list[object]]] = []
    for a in new.model.attributes:
        if a.name not in both:
            continue
        values: list[object] = _near([v for v in [a.default, *compared.get(
            f"customer.{a.name}", [])] if v is not None])
        absent = [_ABSENT] if any(x.name == a.name and x.default is not None
                                  for r in models for x in r.attributes) else []
        if a.type == "string":
            values = [*(v for v in values if isinstance(v, str)), "other"]
        elif a.type == "bool":
            values = [*(v for v in values if isinstance(v, bool)), False, True]
        elif a.type == "date":
            values = [v for v in values if isinstance(v, dt.date)] or [dates[0]]
        elif a.type in ("int", "decimal"):
            values = [v for v in values if isinstance(v, (int, Decimal))
                      and not isinstance(v, bool)] or [0]
        unique: list[object] = [*absent]
        for v in values:
            if v not in unique:
                unique.append(v)
        choices.append((a.name, unique))
    combos = 1
    for _, values in choices:
        combos *= len(values)
    if not choices:
        combos = 1
    customers: list[dict[str, Any]] = []
    sizes = tuple(len(values) for _, values in choices)
    if combos <= 256:  # every combination, the nearest to the first values first
        for index in _diagonal(sizes):
            customers.append({name: _wire_value(values[i]) for (name, values), i in zip(
                choices, index, strict=True) if values[i] is not _ABSENT})
    else:  # the first value of each, then one attribute at a time
        for index in _diagonal(sizes):
            if sum(1 for i in index if i) > 1:
                continue
            customers.append({name: _wire_value(values[i]) for (name, values), i in zip(
                choices, index, strict=True) if values[i] is not _ABSENT})
            if len(customers) > 256:
                break

    offers = sorted({(plan.name, sf.name) for model in models for plan in model.plans
                     for sf in model.storefronts if sf.name not in plan.not_sold})
    codes = sorted({p.code for model in models for p in model.promotions if p.code})
    reasons = ["card_declined"] + sorted(
        {v for v in compared.get("payment.reason", []) if isinstance(v, str)} - {"card_declined"})
    cycles = {1}
    for v in _near(compared.get("subscription.cycle", [])):
        if isinstance(v, int) and not isinstance(v, bool):
            cycles.add(v)
    for model in models:
        for p in model.promotions:
            if p.cycles is not None:
                cycles.update((p.cycles, p.cycles + 1))
    return _Space(dates, tuple(customers), tuple(offers), tuple(codes), tuple(reasons),
                  tuple(sorted(c for c in cycles if 1 <= c <= MAX_RENEWALS)))


# -- scenarios -------------------------------------------------------------------------


@attrs.frozen
class _Scenario:
    """A checkout, then ``renewals`` renewals, then ``action`` (None, or a failed
    payment, a refund, a cancellation or a pause request ``offset`` days after the last
    charge)."""

    plan: str
    storefront: str
    day: dt.date
    customer: dict[str, Any]
    customer_id: str = _CUSTOMER_ID
    code: str | None = None
    renewals: int = 0
    action: str | None = None  # payment_failed | refund_requested | cancel_requested | ...
    reason: str | None = None  # a failure's reason; the target of a plan change
    offset: int = 0


#: A source location inside a reason (``(streaming.rr:43:3)``): not an outcome.
_LOCATION = re.compile(r" ?\([^()\s]+:\d+:\d+\)")


def _observed(outcome: Outcome, reasons: bool = True) -> tuple[Any, ...]:
    def decision(d: Decision) -> tuple[Any, ...]:
        return (d.subscription, d.kind, d.currency, d.list, d.discounts, d.credit, d.tax,
                d.net, d.total, d.psp, d.trial_days, d.next_charge, d.due, d.retry_at,
                d.grace_ends, tuple(_LOCATION.sub("", r) for r in d.reasons if reasons),
                d.charge)

    def event(e: RevenueEvent) -> tuple[Any, ...]:
        return (e.type, e.at, e.gross, e.discount, e.credit, e.tax, e.net, e.amount,
                e.commission, e.psp, tuple(_LOCATION.sub("", r) for r in e.reasons
                                           if reasons),
                e.entitlements, e.date, e.list, e.recurring)

    return (outcome.ok, outcome.error.code if outcome.error else None,
            tuple(decision(d) for d in outcome.decisions),
            tuple(event(e) for e in outcome.events))


class _Runner:
    def __init__(self, old: Ruleset, new: Ruleset):
        self.engines = (Engine(old), Engine(new))
        self.names = (old.model.file, new.model.file)

    applied = 0  # events applied (under both rulesets), over every run

    def run(self, sc: _Scenario, cites: Callable[[str], bool] | None = None) -> Example | None:
        """Apply the scenario under both rulesets; the example up to the first event
        whose outcome differs, or None."""
        states = [State(), State()]
        events: list[dict[str, Any]] = []
        steps: list[str] = []
        count = 0

        def step(event: dict[str, Any], text: str) -> tuple[Outcome, Outcome] | Example:
            nonlocal count
            count += 1
            self.applied += 1
            event = {"id": f"e{count}", **event}
            events.append(event)
            steps.append(text)
            a = self.engines[0].apply(states[0], event)
            b = self.engines[1].apply(states[1], event)
            states[0], states[1] = a.state, b.state
            if _observed(a) != _observed(b):
                if _observed(a, False) == _observed(b, False):
                    rank = 2
                else:
                    rank = 0 if cites is None or any(cites(rule) for rule in (
                        *_cited(a), *_cited(b))) else 1
                return Example(tuple(events), tuple(steps), *_describe(a, b), rank=rank,
                               old_outcome=outcome_to_wire(a), new_outcome=outcome_to_wire(b))
            return a, b

        customer = {"id": sc.customer_id, **sc.customer}
        checkout: dict[str, Any] = {
            "type": "checkout", "at": sc.day.isoformat(), "subscription": _SUB,
            "storefront": sc.storefront, "plan": sc.plan, "customer": customer}
        text = (f"checkout of plan {sc.plan} at {sc.storefront} on {sc.day.isoformat()} "
                f"by customer {_customer_text(customer)}")
        if sc.code is not None:
            checkout["code"] = sc.code
            text += f" with code {json.dumps(sc.code)}"
        result = step(checkout, text)
        if isinstance(result, Example):
            return result
        last_charge = sc.day
        for index in range(sc.renewals + 1):
            outcome = result[0]
            if not outcome.ok:
                return None
            decision = next((d for d in outcome.decisions if d.subscription == _SUB), None)
            if decision is None:
                return None
            day = last_charge
            for e in outcome.events:
                day = e.at.date()
                break
            if decision.kind == "charge" and decision.total > 0:
                if index == sc.renewals and sc.action == "payment_failed":
                    event = {"type": "payment_failed", "at": day.isoformat(),
                             "subscription": _SUB, "reason": sc.reason or "card_declined"}
                    return _example(step(event, f"payment failed on {day.isoformat()} "
                                               f"(reason {json.dumps(event['reason'])})"))
                result = step({"type": "payment_succeeded", "at": day.isoformat(),
                               "subscription": _SUB}, f"payment succeeded on {day.isoformat()}")
                if isinstance(result, Example):
                    return result
            last_charge = day
            if index == sc.renewals:
                break
            due = decision.next_charge
            if due is None:
                return None
            result = step({"type": "renewal_due", "at": due.isoformat(), "subscription": _SUB},
                          f"renewal due on {due.isoformat()}")
            if isinstance(result, Example):
                return result
        if sc.action == "plan_change_requested" and sc.reason is not None:
            day = last_charge + dt.timedelta(days=sc.offset)
            return _example(step({"type": sc.action, "at": day.isoformat(),
                                  "subscription": _SUB, "plan": sc.reason},
                                 f"change to plan {sc.reason} requested on {day.isoformat()}"))
        if sc.action in ("refund_requested", "cancel_requested", "pause_requested"):
            day = last_charge + dt.timedelta(days=sc.offset)
            words = sc.action.removesuffix("_requested")
            return _example(step({"type": sc.action, "at": day.isoformat(),
                                  "subscription": _SUB}, f"{words} requested on "
                                 f"{day.isoformat()}"))
        return None


def _cited(outcome: Outcome) -> Iterator[str]:
    for d in outcome.decisions:
        yield from (t.rule for t in d.trace)
    yield from (e.rule for e in outcome.events if e.rule)


def _citation(kind: str, name: str) -> Callable[[str], bool] | None:
    """Whether a traced rule name belongs to the change (None: any difference counts)."""
    exact = {"price": f"price {name}", "contract": f"contract {name}", "promotion": name,
             "eligibility": name, "tax": f"tax {name}"}
    if kind in exact:
        return exact[kind].__eq__
    prefix = {"route": ("route ",), "dunning": (f"dunning {name}",),
              "lifecycle": ("lifecycle",), "plan": (f"plan {name} ", f"price {name} ")}
    if kind in prefix:
        return lambda rule: rule.startswith(prefix[kind])
    return None


def _example(result: tuple[Outcome, Outcome] | Example) -> Example | None:
    return result if isinstance(result, Example) else None


def _customer_text(customer: Mapping[str, Any]) -> str:
    parts = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in customer.items()
             if k != "id"]
    if customer.get("id") != _CUSTOMER_ID:
        parts.insert(0, f"id: {json.dumps(customer.get('id'), ensure_ascii=False)}")
    return "{" + ", ".join(parts) + "}"


def _describe(a: Outcome, b: Outcome) -> tuple[str, str]:
    """What each outcome decided; the revenue events too where the decisions agree."""
    texts = [_outcome_text(a), _outcome_text(b)]
    if texts[0] == texts[1]:
        texts = [_outcome_text(a, events=True), _outcome_text(b, events=True)]
    return texts[0], texts[1]


def _outcome_text(outcome: Outcome, events: bool = False) -> str:
    if not outcome.ok:
        error = outcome.error
        return f"refused ({error.code}): {error.message}" if error else "refused"
    parts = [_decision_text(d) for d in outcome.decisions]
    if events or all(d.kind == "none" for d in outcome.decisions):
        types = ", ".join(e.type for e in outcome.events)
        parts.append(f"events {types}" if types else "no revenue event")
    return "; ".join(parts)


def _decision_text(d: Decision) -> str:
    cur = d.currency or ""

    def money(x: Decimal) -> str:
        return money_str(x, cur) if cur else str(x)

    head: str = d.kind
    details: list[str] = []
    if d.kind in ("charge", "credit", "refund") or d.total:
        head += f" {cur} {money(d.total)}" if cur else f" {money(d.total)}"
        details.append(f"list {money(d.list)}")
        details.extend(f"{disc.rule} −{money(disc.amount)}" for disc in d.discounts)
        if d.credit:
            details.append(f"credit {money(d.credit)}")
        details.append(f"tax {money(d.tax)}")
    if d.psp:
        details.append(f"psp {d.psp}")
    if d.trial_days:
        details.append(f"trial {d.trial_days} days")
    for label, day in (("next charge", d.next_charge), ("due", d.due),
                       ("retry", d.retry_at), ("grace ends", d.grace_ends)):
        if day is not None:
            details.append(f"{label} {day.isoformat()}")
    details.extend(f"reason {json.dumps(r, ensure_ascii=False)}" for r in d.reasons)
    return head + (f" ({', '.join(details)})" if details else "")


# -- the search ------------------------------------------------------------------------


def _union(*values: frozenset[str] | None) -> frozenset[str] | None:
    out: set[str] = set()
    for v in values:
        if v is None:
            return None
        out |= v
    return frozenset(out)


def _scenarios(kind: str, name: str, old: Ruleset, new: Ruleset,
               space: _Space) -> list[Iterator[_Scenario]]:
    """The scenarios that may show the change, one stream per depth (the number of
    renewals before the decision), each in diagonal order over the other dimensions."""
    offers = list(space.offers)
    codes: list[str | None] = [None, *space.codes]
    customer_ids = [_CUSTOMER_ID]
    actions: list[tuple[str | None, str | None, int]] = [(None, None, 0)]
    renewals = [0, *space.cycles]
    if kind == "price":
        plan, storefront = name.split(" ", 1)
        offers = [o for o in offers if o == (plan, storefront)] or [(plan, storefront)]
    elif kind == "plan":
        offers = [o for o in offers if o[0] == name]
        targets = sorted({c.target for r in (old, new) if name in r.plans
                          for c in r.plans[name].changes})
        actions = [(None, None, 0), *(("plan_change_requested", t, k) for k in (1, 0)
                                      for t in targets)]
    elif kind == "promotion":
        promos = [r.promotions[name] for r in (old, new) if name in r.promotions]
        sold = _union(*(p.plans for p in promos))
        fronts = _union(*(p.storefronts for p in promos))
        offers = [o for o in offers if (sold is None or o[0] in sold)
                  and (fronts is None or o[1] in fronts)]
        own = [p.code for p in promos if p.code]
        codes = [*dict.fromkeys(own), None] if own else [None]
    elif kind == "contract":
        contracts = [c for r in (old, new) for c in r.model.contracts if c.name == name]
        offers = [o for o in offers if o[0] in {c.plan for c in contracts}]
        customer_ids = list(dict.fromkeys(c.customer for c in contracts))
    elif kind == "dunning":
        actions = [("payment_failed", r, 0) for r in space.reasons]
        renewals = [1, 0]
    elif kind == "lifecycle":
        offsets = {0, 1}
        for r in (old, new):
            within = r.model.lifecycle.refund_within
            if within is not None and within.unit == "day":
                offsets.update((within.count - 1, within.count, within.count + 1))
        # each kind of request early, then the other offsets
        actions = [(a, None, k) for k in sorted(offsets) for a in (
            "refund_requested", "cancel_requested", *(("pause_requested",) if k == 1 else ()))]
    elif kind == "product":
        offers = [o for o in offers if any(
            name in r.plans[o[0]].products for r in (old, new) if o[0] in r.plans)]
    elif kind == "storefront":
        offers = [o for o in offers if o[1] == name]
    plans = {**old.plans, **new.plans}
    periods = {p.every for p in plans.values()}
    shifted = {e for d in space.dates for every in periods
               if (e := _earlier(d, every)) is not None}
    days = [*space.dates, *sorted(shifted - set(space.dates))]  # renewals land on a date
    if kind in ("dunning", "lifecycle"):  # one plan per storefront and cadence
        seen: set[tuple[str, n.Duration]] = set()
        spread = []
        for plan, storefront in offers:
            if (storefront, plans[plan].every) not in seen:
                seen.add((storefront, plans[plan].every))
                spread.append((plan, storefront))
        offers = spread
    dims: tuple[Sequence[Any], ...] = (codes, days, space.customers, customer_ids)
    return [_stage(count, offers, actions, dims) for count in renewals]


def _earlier(day: dt.date, every: n.Duration) -> dt.date | None:
    try:
        return add_periods(day, every, -1)
    except EvaluationError:  # before the calendar: no such checkout
        return None


def _stage(count: int, offers: Sequence[tuple[str, str]],
           actions: Sequence[tuple[str | None, str | None, int]],
           dims: tuple[Sequence[Any], ...]) -> Iterator[_Scenario]:
    """Every plan × storefront and every follow-up for each point of the other
    dimensions, in diagonal order."""
    for index in _diagonal(tuple(len(d) for d in dims)):
        code, day, customer, cid = (d[i] for d, i in zip(dims, index, strict=True))
        for action, reason, offset in actions:
            for plan, storefront in offers:
                if action == "plan_change_requested" and reason == plan:
                    continue  # a change to the plan it is on
                yield _Scenario(plan, storefront, day, customer, cid, code, count, action,
                                reason, offset)


def _diagonal(sizes: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every index tuple of a grid of ``sizes``, by increasing sum of indices: the first
    ones vary every dimension a little before any varies a lot."""
    if not all(sizes):
        return
    for level in range(sum(size - 1 for size in sizes) + 1):
        yield from _compositions(level, sizes)


def _compositions(level: int, sizes: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    if not sizes:
        if level == 0:
            yield ()
        return
    rest = sum(size - 1 for size in sizes[1:])
    for i in range(max(0, level - rest), min(sizes[0] - 1, level) + 1):
        for tail in _compositions(level - i, sizes[1:]):
            yield (i, *tail)


def _search(kind: str, name: str, old: Ruleset, new: Ruleset, space: _Space,
            runner: _Runner, budget: int, fallback: bool) -> tuple[Example | None, int]:
    searched = 0
    best: Example | None = None
    cites = _citation(kind, name)
    start = runner.applied
    stages = _scenarios(kind, name, old, new, space)
    for number, stage in enumerate(stages):
        # half the events go to the shortest scenarios, the rest is shared by the other
        # depths; a depth that needs less leaves the rest to the next
        left = budget - (runner.applied - start)
        until = runner.applied + (left if number == len(stages) - 1 else
                                  left // 2 if number == 0 else left // (len(stages) - number))
        for scenario in stage:
            if runner.applied >= until:
                break
            searched += 1
            try:
                found = runner.run(scenario, cites)
            except (ValueError, OverflowError):  # a date past the calendar: not an input
                continue
            if found is not None and found.rank == 0:
                return found, searched
            if found is not None and (best is None or found.rank < best.rank):
                best = found
    if best is not None or not fallback:
        return best, searched
    example, more = _hypothesis(kind, name, old, new, space, runner)
    return example, searched + more


def _hypothesis(kind: str, name: str, old: Ruleset, new: Ruleset, space: _Space,
                runner: _Runner) -> tuple[Example | None, int]:
    """Customers drawn by ``revrules.testing.customers``, derandomized."""
    try:
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis import strategies as st
        from hypothesis.errors import NoSuchExample

        from .testing import customers
    except ImportError:  # the test extra is not installed
        return None, 0
    scenarios = [sc for stage in _scenarios(kind, name, old, new, space)[:2]
                 for sc in itertools.islice(stage, 32)]
    if not scenarios:
        return None, 0
    both = {a.name for a in old.model.attributes} & {a.name for a in new.model.attributes}
    tried = 0
    found: list[Example] = []

    def differs(pair: tuple[_Scenario, dict[str, Any]]) -> bool:
        nonlocal tried
        scenario, customer = pair
        tried += 1
        attributes = {k: v for k, v in customer.items() if k in both}
        try:
            example = runner.run(attrs.evolve(scenario, customer=attributes))
        except (ValueError, OverflowError):
            return False
        if example is not None and not found:
            found.append(example)
        return example is not None

    strategy = st.tuples(st.sampled_from(scenarios), customers(new, _CUSTOMER_ID))
    try:
        find(strategy, differs, settings=settings(
            max_examples=HYPOTHESIS_EXAMPLES, derandomize=True, database=None,
            phases=(Phase.generate,), suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return None, tried
    return (attrs.evolve(found[0], found_by="hypothesis") if found else None), tried


@in_context
def static_diff(old: Ruleset, new: Ruleset, *, budget: int = MAX_EVENTS,
                fallback: bool = True,
                progress: Callable[[int], None] | None = None) -> StaticDiff:
    """Compare two rulesets without an event log (see the module's docstring).

    ``budget`` bounds the boundary search per change (events applied); ``fallback``
    runs hypothesis when the boundaries find nothing; ``progress`` is called with the
    number of declarations compared."""
    before, after = _items(old.model), _items(new.model)
    order = {k: i for i, k in enumerate(_KIND_ORDER)}
    keys = sorted(set(before) | set(after), key=lambda k: (order.get(k[0], 99), k))
    space = _space(old, new)
    runner = _Runner(old, new)
    changes: list[Change] = []
    for done, key in enumerate(keys, 1):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a.value == b.value:
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        example, searched = _search(key[0], key[1], old, new, space, runner, budget,
                                    fallback)
        changes.append(Change(key[0], key[1], status,
                              _side(old, a) if a is not None else None,
                              _side(new, b) if b is not None else None, example, searched))
        if progress is not None:
            progress(done)
    return StaticDiff(_label(old), _label(new), tuple(changes))


def _label(ruleset: Ruleset) -> str:
    model = ruleset.model
    return f"{model.file} ({model.name}{' ' + model.version if model.version else ''})"
