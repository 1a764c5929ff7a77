"""Coverage of a ruleset by an event log or a test run (docs/coverage.md).

:class:`Coverage` wraps a :class:`~revrules.ruleset.Ruleset`. Its :meth:`Coverage.engine`
runs a coverage build of the compiled rules (:func:`revrules.compiler.compile_model`
with a recorder): every boolean sub-condition of a rule -- the whole ``when`` / ``if``
condition and each operand of its ``and`` / ``or`` chains -- counts how often it was
seen true and false. :meth:`Coverage.observe` reads an outcome's decisions, traces,
revenue events and the subscriptions they touched, and counts the table items they
exercised: price lines, promotions, routes, tax rates, eligibility denials, dunning
policies with their retries, grace and ``then`` step, lifecycle rules, trials, plan
changes and contracts. :meth:`Coverage.report` gives a :class:`CoverageReport`::

    percent = covered outcomes / all outcomes
    outcomes = (true, false) of every sub-condition + every table item

>>> import revrules
>>> rules = revrules.load_text('''
... ruleset demo
... customer { country: string }
... storefront web { channel web currency EUR tax inclusive psp stripe }
... product p { entitlements hd }
... plan monthly { product p  every 1 month  price web EUR 9.99 }
... tax vat { rate 19% when customer.country == "DE"  rate 0% }
... ''', "demo.rr")
>>> cov = Coverage(rules)
>>> out = cov.engine().apply(revrules.State(), {
...     "id": "e1", "type": "checkout", "at": "2027-01-31", "subscription": "s1",
...     "storefront": "web", "plan": "monthly", "customer": {"id": "c1", "country": "DE"}})
>>> cov.observe(out)
>>> report = cov.report()
>>> report.percent, report.covered, report.total
(Decimal('60.00'), 3, 5)
>>> [(x.kind, x.name, x.location, x.outcome) for x in report.missing]
[('condition', 'tax vat: customer.country == "DE"', 'demo.rr:7:25', 'false'), ('tax', 'vat 0%', 'demo.rr:7:51', None)]
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from . import nodes as n
from .compiler import compile_model
from .engine import Engine
from .events import Event
from .parser import parse
from .results import Outcome
from .ruleset import Ruleset
from .runtime import in_context
from .state import State
from .text import printable

__all__ = ["ConditionCoverage", "Coverage", "CoverageReport", "ItemCoverage", "Missing"]

_RETRY_REASON = re.compile(r"dunning (?P<policy>[A-Za-z_][A-Za-z0-9_]*): retry (?P<n>[0-9]+) of "
                           r"[0-9]+")
_THEN_STATUS = {"cancel": "canceled", "pause": "paused", "unpaid": "unpaid"}


@attrs.frozen
class ConditionCoverage:
    """One boolean sub-condition of a rule and how often it was seen true and false."""

    rule: str
    text: str
    location: str  # file:line:col of the sub-condition
    whole: bool  # the rule's whole condition (not an operand of it)
    true: int
    false: int


@attrs.frozen
class ItemCoverage:
    """One table item (a price line, a promotion, a route, …) and how often it was used."""

    kind: str
    name: str
    location: str
    hits: int


@attrs.frozen
class Missing:
    """Something never exercised: an item, or one outcome (``true``/``false``) of a
    condition."""

    kind: str
    name: str
    location: str
    outcome: str | None = None


@attrs.frozen
class _Item:
    kind: str
    name: str
    span: n.Span


@attrs.frozen
class CoverageReport:
    """What a :class:`Coverage` saw, ready to print (text, JSON, HTML)."""

    ruleset: str
    version: str | None
    file: str
    conditions: tuple[ConditionCoverage, ...]
    items: tuple[ItemCoverage, ...]
    missing: list[Missing]  # sorted by location, then kind, name and outcome
    covered: int
    total: int
    source: str = attrs.field(default="", repr=False)
    # (line, column, outcomes covered, outcomes, what) for the HTML view
    _marks: tuple[tuple[int, int, int, int, str], ...] = attrs.field(
        default=(), repr=False, alias="marks")

    @property
    def percent(self) -> Decimal:
        """covered / total × 100, rounded down to 2 places (100 when there is nothing)."""
        if self.total == 0:
            return Decimal("100.00")
        hundredths = self.covered * 10000 // self.total
        return Decimal(f"{hundredths // 100}.{hundredths % 100:02d}")

    def passes(self, threshold: Decimal | int | float | str) -> bool:
        """True when the coverage is at least ``threshold`` percent (compared exactly)."""
        limit = Decimal(str(threshold))
        return self.total == 0 or Decimal(self.covered * 100) >= limit * self.total

    def to_json(self) -> str:
        """One line of JSON, byte-identical for identical runs."""
        from .wire import dumps

        return dumps({
            "ruleset": self.ruleset, "version": self.version, "file": self.file,
            "percent": str(self.percent), "covered": self.covered, "total": self.total,
            "conditions": [{"rule": c.rule, "text": c.text, "location": c.location,
                            "whole": c.whole, "true": c.true, "false": c.false}
                           for c in self.conditions],
            "items": [{"kind": i.kind, "name": i.name, "location": i.location,
                       "hits": i.hits} for i in self.items],
            "missing": [{"kind": x.kind, "name": x.name, "location": x.location,
                         "outcome": x.outcome} for x in self.missing],
        })

    def to_text(self) -> str:
        """A report for people: the figure, conditions per rule, what was never exercised."""
        lines = [f"coverage of {self.ruleset} ({self.file}): {self.percent}% "
                 f"({self.covered} of {self.total} outcomes)"]
        seen = sum((c.true > 0) + (c.false > 0) for c in self.conditions)
        lines.append(f"  conditions: {seen} of {2 * len(self.conditions)} outcomes "
                     f"(true and false of {len(self.conditions)} conditions)")
        kinds: dict[str, list[int]] = {}
        for item in self.items:
            counts = kinds.setdefault(item.kind, [0, 0])
            counts[0] += item.hits > 0
            counts[1] += 1
        for kind in sorted(kinds):
            lines.append(f"  {kind}: {kinds[kind][0]} of {kinds[kind][1]}")
        if self.conditions:
            lines += ["", "conditions (times seen true / false):"]
            width = max(len(c.location) for c in self.conditions)
            for c in self.conditions:
                indent = "" if c.whole else "  "
                lines.append(f"  {c.location:<{width}}  {c.true:>5} {c.false:>5}  "
                             f"{indent}{c.rule}: {c.text}")
        if self.missing:
            lines += ["", f"never exercised ({len(self.missing)}):"]
            width = max(len(x.location) for x in self.missing)
            for x in self.missing:
                what = f"  never {x.outcome}" if x.outcome else ""
                lines.append(f"  {x.location:<{width}}  {x.kind}: {x.name}{what}")
        else:
            lines += ["", "everything was exercised"]
        return "\n".join(printable(line) for line in lines)

    def to_html(self) -> str:
        """A self-contained page: the source with each line marked covered, partly
        covered or not covered (lines with nothing to cover stay plain). Control, bidi
        and separator characters are shown escaped, as on a terminal."""
        def esc(value: str) -> str:
            return html.escape(printable(value))

        per_line: dict[int, list[tuple[int, int, str]]] = {}
        for at, _, done, of, title in self._marks:
            per_line.setdefault(at, []).append((done, of, title))
        rows = []
        for number, line in enumerate(self.source.split("\n"), 1):
            marks = per_line.get(number)
            css, title = "", ""
            if marks:
                done = sum(d for d, _, _ in marks)
                of = sum(o for _, o, _ in marks)
                css = "covered" if done == of else "partly" if done else "not"
                title = "&#10;".join(esc(t) for _, _, t in marks)
            rows.append(f'<tr class="{css}" title="{title}"><td class="n">'
                        f"{number}</td><td><pre>{esc(line)}</pre></td></tr>")
        missing = "".join(
            f"<li><code>{esc(x.location)}</code> {esc(x.kind)}: "
            f"{esc(x.name)}{' never ' + x.outcome if x.outcome else ''}</li>"
            for x in self.missing)
        title = esc(f"coverage of {self.ruleset}")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}"
            "table{border-collapse:collapse}td{padding:0 .5em;vertical-align:top}"
            "pre{margin:0;font-family:ui-monospace,monospace}"
            "td.n{color:#888;text-align:right;user-select:none}"
            "tr.covered{background:#dcf5dc}tr.partly{background:#fff3c4}"
            "tr.not{background:#f9d6d5}"
            "</style></head><body>\n"
            f"<h1>{title}</h1>\n<p>{esc(self.file)}: <strong>{self.percent}%</strong>"
            f" ({self.covered} of {self.total} outcomes). Lines: "
            "<span style=\"background:#dcf5dc\">covered</span>, "
            "<span style=\"background:#fff3c4\">partly covered</span>, "
            "<span style=\"background:#f9d6d5\">not covered</span>; "
            "hover a line for its details.</p>\n"
            f"<h2>Never exercised ({len(self.missing)})</h2>\n<ul>{missing}</ul>\n"
            "<h2>Source</h2>\n<table>\n" + "\n".join(rows) + "\n</table>\n</body></html>\n")


class Coverage:
    """Coverage of one ruleset: conditions seen true and false, table items used."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        model = ruleset.model
        compiled = _compile(model, self._hit)
        self._conditions = compiled.conditions
        self._true = [0] * len(self._conditions)
        self._false = [0] * len(self._conditions)
        covered = Ruleset(model, compiled, ruleset.warnings)
        # the same stamp object: states pass between the plain and the coverage engine
        # exactly as they are
        object.__setattr__(covered, "stamp", ruleset.stamp)
        self._covered = covered
        self._items: list[_Item] = []
        self._hits: list[int] = []
        self._by_trace: dict[tuple[str, str], list[int]] = {}
        self._by_promotion: dict[str, int] = {}
        self._retries: dict[tuple[str, int], int] = {}
        self._grace: dict[str, int] = {}
        self._then: dict[str, int] = {}
        self._lifecycle: dict[str, int] = {}
        self._in_dunning: dict[str, str] = {}  # subscription → its dunning policy
        self._build_items(model)

    # -- recording ---------------------------------------------------------------------
    def _hit(self, index: int, value: Any) -> Any:
        if value:
            self._true[index] += 1
        else:
            self._false[index] += 1
        return value

    def engine(self, **options: Any) -> Engine:
        """An :class:`~revrules.Engine` over the coverage build (``options`` as Engine's):
        it decides exactly as the plain engine and records every condition it evaluates."""
        return Engine(self._covered, **options)

    def run(self, events: Iterable[Event | Mapping[str, Any]], state: State | None = None,
            engine: Engine | None = None) -> list[Outcome]:
        """Apply ``events`` in order from ``state`` (empty) and observe every outcome."""
        engine = engine or self.engine()
        current = State() if state is None else state
        outcomes = []
        for event in events:
            outcome = engine.apply(current, event)
            self.observe(outcome)
            current = outcome.state
            outcomes.append(outcome)
        return outcomes

    def observe(self, outcome: Outcome) -> None:
        """Count the table items ``outcome`` exercised (call it for every outcome, in
        order: a dunning ``then unpaid`` is recognised by the policy seen before)."""
        if not outcome.ok or outcome.replayed:
            return
        count = self._count
        subs = outcome.state.subscriptions
        lifecycle: set[str] = set()  # each lifecycle rule counts once per outcome
        for d in outcome.decisions:
            for t in d.trace:
                for i in self._by_trace.get((t.rule, t.source), ()):
                    count(i)
                if t.rule == "lifecycle cancel":
                    lifecycle.add("cancel")
                elif d.kind == "deny" and t.rule == "lifecycle refund":
                    lifecycle.add("refund none")
            for discount in d.discounts:
                found = self._by_promotion.get(discount.rule)
                if found is not None:
                    count(found)
            if d.kind == "charge" and d.retry_at is not None:
                for reason in d.reasons:
                    match = _RETRY_REASON.fullmatch(reason)
                    if match:
                        found = self._retries.get((match["policy"], int(match["n"])))
                        if found is not None:
                            count(found)
            sub = subs.get(d.subscription)
            if sub is None:
                continue
            dunning = sub.dunning
            if dunning is not None:
                self._in_dunning[sub.id] = dunning.policy
                if (not dunning.retries and dunning.grace_end is not None
                        and d.grace_ends is not None
                        and (d.retry_at is None or d.retry_at < d.grace_ends)):
                    found = self._grace.get(dunning.policy)
                    if found is not None:
                        count(found)
            else:
                before = self._in_dunning.pop(sub.id, None)
                if before is not None and sub.status == "unpaid":
                    found = self._then.get(before)
                    if found is not None:
                        count(found)
        for e in outcome.events:
            rule = e.rule or ""
            if e.type in ("subscription.canceled", "subscription.paused") and \
                    rule.startswith("dunning "):
                found = self._then.get(rule.removeprefix("dunning "))
                if found is not None:
                    count(found)
            elif e.type == "subscription.paused" and rule == "lifecycle pause":
                lifecycle.add("pause")
            elif e.type == "payment.refunded" and rule == "lifecycle refund" and e.reasons:
                lifecycle.add(f"refund {e.reasons[0]}")
            if rule == "lifecycle cancel":
                lifecycle.add("cancel")
        for key, index in self._lifecycle.items():
            if key.split("|", 1)[0] in lifecycle:
                count(index)

    def _count(self, index: int) -> None:
        self._hits[index] += 1

    def merge(self, other: Coverage) -> None:
        """Add what ``other`` (a coverage of the same ruleset source) saw to this one."""
        if other.ruleset.stamp.digest != self.ruleset.stamp.digest or \
                len(other._true) != len(self._true) or len(other._hits) != len(self._hits):
            raise ValueError("coverage of a different ruleset cannot be merged")
        for i in range(len(self._true)):
            self._true[i] += other._true[i]
            self._false[i] += other._false[i]
        for i in range(len(self._hits)):
            self._hits[i] += other._hits[i]
        for sub, policy in other._in_dunning.items():
            self._in_dunning.setdefault(sub, policy)

    # -- the report --------------------------------------------------------------------
    def report(self) -> CoverageReport:
        """What was seen so far (later observations do not change a report)."""
        rules = self._covered
        entries = []
        for i, (rule, expr) in enumerate(self._conditions):
            entries.append(((_key(expr.span), i), ConditionCoverage(
                rule.name, _text(rules, expr), str(expr.span), expr is rule.when,
                self._true[i], self._false[i])))
        entries.sort(key=lambda e: e[0])
        conditions = tuple(c for _, c in entries)
        order = sorted(range(len(self._items)), key=lambda i: (
            _key(self._items[i].span), self._items[i].kind, self._items[i].name, i))
        items = tuple(ItemCoverage(self._items[i].kind, self._items[i].name,
                                   str(self._items[i].span), self._hits[i]) for i in order)
        missing: list[tuple[Any, Missing]] = []
        marks: list[tuple[int, int, int, int, str]] = []
        for (key, i), c in entries:
            span = self._conditions[i][1].span
            for outcome, seen in (("true", c.true), ("false", c.false)):
                if not seen:
                    missing.append(((key, "condition", f"{c.rule}: {c.text}", outcome),
                                    Missing("condition", f"{c.rule}: {c.text}", c.location,
                                            outcome)))
            marks.append((span.line, span.column, (c.true > 0) + (c.false > 0), 2,
                          f"{c.rule}: {c.text} (true {c.true}, false {c.false})"))
        for i in order:
            item = self._items[i]
            if not self._hits[i]:
                missing.append(((_key(item.span), item.kind, item.name, ""),
                                Missing(item.kind, item.name, str(item.span))))
            marks.append((item.span.line, item.span.column, int(self._hits[i] > 0), 1,
                          f"{item.kind} {item.name} (used {self._hits[i]})"))
        missing.sort(key=lambda e: e[0])
        covered = sum((c.true > 0) + (c.false > 0) for c in conditions) + sum(
            1 for h in self._hits if h)
        total = 2 * len(conditions) + len(self._hits)
        model = rules.model
        return CoverageReport(model.name, model.version, model.file, conditions, items,
                              [x for _, x in missing], covered, total, model.source,
                              marks=tuple(sorted(marks, key=lambda k: k[:2])))

    # -- the items of a ruleset --------------------------------------------------------
    def _add(self, kind: str, name: str, span: n.Span) -> int:
        self._items.append(_Item(kind, name, span))
        self._hits.append(0)
        return len(self._items) - 1

    def _traced(self, kind: str, name: str, span: n.Span, rule: str,
                source: n.Span | None = None) -> None:
        index = self._add(kind, name, span)
        self._by_trace.setdefault((rule, _where(source or span)), []).append(index)

    def _build_items(self, model: m.Model) -> None:
        spans = _item_spans(model)
        for plan in model.plans:
            for entry in plan.prices:
                when = f" from {entry.effective}" if entry.effective else ""
                self._traced("price", f"{plan.name} {entry.storefront} {entry.currency} "
                             f"{entry.amount}{when}", entry.span,
                             f"price {plan.name} {entry.storefront}")
            if plan.trial is not None:
                self._traced("trial", plan.name, plan.trial.span, f"plan {plan.name} trial")
            for change in plan.changes:
                self._traced("plan change", f"{plan.name} {change.kind} to {change.target}",
                             change.span, f"plan {plan.name} {change.kind}")
        for contract in model.contracts:
            self._traced("contract", contract.name, contract.span, f"contract {contract.name}")
        for e in model.eligibilities:
            for deny in e.denies:
                self._traced("eligibility", f"{e.name}: {deny.reason}", deny.rule.span, e.name)
        for p in model.promotions:
            self._by_promotion[p.name] = self._add("promotion", p.name, p.span)
        for t in model.taxes:
            for r in t.rates:
                self._traced("tax", f"{t.name} {_percent(r.rate)}", r.rule.span, r.rule.name)
        for route in model.route:
            self._traced("route", route.psp + ("" if route.rule.when else " otherwise"),
                         route.rule.span, route.rule.name)
        for d in model.dunning:
            self._traced("dunning", d.name, d.span, f"dunning {d.name}")
            items = spans.get(("dunning", d.name), {})
            for number in range(1, len(d.retries) + 1):
                self._retries[(d.name, number)] = self._add(
                    "dunning retry", f"{d.name} retry {number} of {len(d.retries)}",
                    items.get("retry", d.span))
            if d.grace is not None:
                self._grace[d.name] = self._add("dunning grace", f"{d.name} grace {d.grace}",
                                                items.get("grace", d.span))
            self._then[d.name] = self._add("dunning then", f"{d.name} then {d.then}",
                                           items.get("then", d.span))
        life = model.lifecycle
        items = spans.get(("lifecycle", ""), {})
        if "pause" in items:
            self._lifecycle["pause"] = self._add("lifecycle", "pause", items["pause"])
        if "cancel" in items:
            self._lifecycle["cancel"] = self._add("lifecycle", f"cancel at {life.cancel}"
                                                  if life.cancel == "period_end"
                                                  else f"cancel {life.cancel}", items["cancel"])
        if "refund" in items:
            if life.refund_within is None:
                self._lifecycle[f"refund {life.refund}"] = self._add(
                    "lifecycle", f"refund {life.refund}", items["refund"])
            else:
                self._lifecycle[f"refund {life.refund}|within"] = self._add(
                    "lifecycle", f"refund {life.refund} within {life.refund_within}",
                    items["refund"])
                self._lifecycle[f"refund {life.refund_after}|after"] = self._add(
                    "lifecycle", f"refund {life.refund_after} after {life.refund_within}",
                    items["refund"])


@in_context
def _compile(model: m.Model, recorder: Any) -> Any:
    return compile_model(model, coverage=recorder)


def _item_spans(model: m.Model) -> dict[tuple[str, str], dict[str, n.Span]]:
    """Where the lines of dunning and lifecycle blocks stand: the model keeps only the
    blocks' spans, the syntax tree has every item's."""
    try:
        module = parse(model.source, model.file)
    except Exception:  # noqa: BLE001 - the model parsed once; then the blocks' spans serve
        return {}
    found: dict[tuple[str, str], dict[str, n.Span]] = {}
    for decl in module.decls:
        if isinstance(decl, n.Dunning):
            found[("dunning", decl.name)] = {i.key: i.span for i in decl.items}
        elif isinstance(decl, n.Lifecycle):
            found[("lifecycle", "")] = {i.key: i.span for i in decl.items}
    return found


def _where(span: n.Span) -> str:
    """A span as the engine's traces cite it: the file's base name, line and column."""
    return f"{os.path.basename(span.file)}:{span.line}:{span.column}"


def _key(span: n.Span) -> tuple[str, int, int]:
    return (span.file, span.line, span.column)


def _percent(rate: Decimal) -> str:
    text = format(rate * 100, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def _text(rules: Ruleset, expr: n.Expr) -> str:
    """The source text of an expression, on one line."""
    span, lines = expr.span, rules.lines
    if not 1 <= span.line <= span.end_line <= len(lines):
        return "?"
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1:span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]]
    parts += lines[span.line:span.end_line - 1]
    parts.append(lines[span.end_line - 1][:span.end_column - 1])
    return " ".join(" ".join(p.split()) for p in parts if p.strip())
