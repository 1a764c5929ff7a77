"""What-if: replay one event log under two rulesets and compare (LANGUAGE.md §6).

:func:`diff` applies the same events under ``old`` and ``new`` rules and returns a
:class:`Diff`: every ledger figure per currency and month under both, and every
priced decision that came out differently, with the rules cited in the decisions'
traces — first those whose source changed between the two files.

>>> import revrules
>>> from revrules.whatif import diff
>>> old = revrules.load("rulesets/streaming.rr")                       # doctest: +SKIP
>>> new = revrules.load("rulesets/streaming-2027.rr")                  # doctest: +SKIP
>>> d = diff(old, new, [{"id": "e1", "type": "tick", "at": "2027-01-01"}])  # doctest: +SKIP
>>> d.totals["EUR"]                                                     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from .events import Event, EventError, parse_event
from .ledger import FIELDS, MONEY_FIELDS, Figures
from .reports import Fold, Replay, Streamed, figures_to_wire
from .results import Decision, Outcome, Trace
from .ruleset import Ruleset
from .runtime import decimal_str, in_context, money_str
from .text import printable, printable_lines

__all__ = ["ChargeChange", "Diff", "SubscriptionChange", "diff", "diff_to_wire", "render_diff"]

ZERO = Decimal(0)
_PRICED = ("kind", "currency", "list", "discounts", "credit", "tax", "net", "total")


@attrs.frozen
class ChargeChange:
    """One decision priced differently: the input event, and the decision under each
    ruleset (None where that ruleset decided nothing for the subscription)."""

    event: str
    at: dt.datetime | None
    subscription: str
    old: Decision | None
    new: Decision | None
    rules: tuple[Trace, ...]  # the rules that explain the change, new ruleset's sources

    @property
    def currency(self) -> str | None:
        decision = self.new or self.old
        return decision.currency if decision is not None else None

    @property
    @in_context
    def delta(self) -> Decimal:
        return _total(self.new) - _total(self.old)


@attrs.frozen
class SubscriptionChange:
    """A subscription whose charges changed: what the changed decisions charged and
    refunded under each ruleset."""

    subscription: str
    currency: str | None
    old_charged: Decimal  # charges decided (refunds not deducted)
    new_charged: Decimal
    old_refunded: Decimal
    new_refunded: Decimal
    changes: tuple[ChargeChange, ...]

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule cited by the changes, in first-seen order."""
        seen: dict[str, None] = {}
        for change in self.changes:
            for trace in change.rules:
                seen.setdefault(trace.rule)
        return tuple(seen)


@attrs.frozen
class Diff:
    """The same log under two rulesets.

    ``months`` maps (currency, month) to the figures (old, new); ``totals`` maps a
    currency to its totals (old, new); ``subscriptions`` lists every subscription
    whose charges changed, sorted by id; ``outcomes`` lists the input events that
    applied under one ruleset but not the other (event id, old ok, new ok).
    """

    old: Replay | Streamed = attrs.field(repr=False)
    new: Replay | Streamed = attrs.field(repr=False)
    months: dict[tuple[str, str], tuple[Figures, Figures]]
    totals: dict[str, tuple[Figures, Figures]]
    subscriptions: tuple[SubscriptionChange, ...]
    outcomes: tuple[tuple[str, bool, bool], ...] = ()

    @classmethod
    @in_context
    def of(cls, before: Replay, after: Replay,
           log: Iterable[Mapping[str, Any] | EventError] = ()) -> Diff:
        """Compare two replays of the same log (``log``: its events, for their times)."""
        items: list[Mapping[str, Any] | EventError | None] = list(log) or [None] * len(
            before.outcomes)
        changes = _Changes(before.ruleset, after.ruleset)
        for item, a, b in zip(items, before.outcomes, after.outcomes, strict=True):
            changes.add(item, a, b)
        return cls.between(before, after, changes)

    @classmethod
    @in_context
    def between(cls, before: Replay | Streamed, after: Replay | Streamed,
                changes: _Changes) -> Diff:
        empty = Figures()
        old_months, new_months = before.ledger.by_month(), after.ledger.by_month()
        months = {key: (old_months.get(key, empty), new_months.get(key, empty))
                  for key in sorted(set(old_months) | set(new_months))}
        old_totals, new_totals = before.ledger.totals(), after.ledger.totals()
        totals = {c: (old_totals.get(c, empty), new_totals.get(c, empty))
                  for c in sorted(set(old_totals) | set(new_totals))}
        return cls(before, after, months, totals, _by_subscription(changes.changes),
                   tuple(changes.differing))

    @property
    def changed(self) -> bool:
        return bool(self.subscriptions or self.outcomes or any(
            o != n for o, n in self.months.values()))

    def _repr_html_(self) -> str:
        """What a notebook shows: the totals that moved and the subscriptions charged
        differently (:func:`revrules.reports.diff_html`)."""
        from .reports import diff_html

        return diff_html(self)


@in_context
def diff(old: Ruleset, new: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
         progress: Callable[[int], None] | None = None) -> Diff:
    """Replay ``events`` under ``old`` and ``new`` and compare ledgers and decisions.

    A what-if asks what each ruleset would have charged, so a payment settles what that
    ruleset decided: the settled ``amount``, ``currency`` and ``psp`` a payment event
    may carry (which must match the charge in a real replay) are left out of both runs.
    Both replays run in step and are folded as they go: only the ledgers and what
    differs are kept, never every outcome. ``progress`` is called with the number of
    events done.
    """
    first, second = Fold(old), Fold(new)
    changes = _Changes(old, new)
    for n, item in enumerate(events, 1):  # in step: only what differs is kept
        item = _as_decided(item)
        # parsed once for both: the two states remember the same id and time objects
        event = _parsed(item)
        changes.add(item, first.feed(event), second.feed(event))
        if progress is not None:
            progress(n)
    return Diff.between(first.result(), second.result(), changes)


class _Changes:
    """What differs between two replays, collected outcome pair by outcome pair."""

    def __init__(self, old: Ruleset, new: Ruleset) -> None:
        self.old, self.new = old, new
        self.changes: list[ChargeChange] = []
        self.differing: list[tuple[str, bool, bool]] = []

    def add(self, item: Mapping[str, Any] | EventError | None, a: Outcome,
            b: Outcome) -> None:
        if a.ok != b.ok:
            self.differing.append((a.event or b.event, a.ok, b.ok))
        if a.decisions or b.decisions:
            self.changes.extend(_decision_changes(a, b, _at(item, a, b), self.old, self.new))


_SETTLED = ("amount", "currency", "psp")
_PAYMENTS = frozenset({"payment_succeeded", "payment_failed", "store_notification"})


def _as_decided(item: Mapping[str, Any] | EventError) -> Mapping[str, Any] | EventError:
    if isinstance(item, Mapping) and item.get("type") in _PAYMENTS and any(
            key in item for key in _SETTLED):
        return {key: value for key, value in item.items() if key not in _SETTLED}
    return item


def _parsed(item: Mapping[str, Any] | EventError) -> Mapping[str, Any] | EventError | Event:
    """``item`` parsed, or as it is when it does not parse (each engine then refuses it
    as it would refuse the line)."""
    if isinstance(item, EventError):
        return item
    try:
        return parse_event(item)
    except Exception:  # noqa: BLE001 - the engines answer it, each in its own outcome
        return item


def _at(item: Mapping[str, Any] | EventError | None, a: Outcome,
        b: Outcome) -> dt.datetime | None:
    for outcome in (b, a):
        for event in outcome.events:
            return event.at
    if isinstance(item, Mapping) and isinstance(item.get("at"), str):
        text = item["at"]
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _priced(decision: Decision | None) -> tuple[Any, ...] | None:
    if decision is None or decision.kind in ("none", "deny") and not decision.total:
        return None
    return tuple(getattr(decision, name) for name in _PRICED)


def _total(decision: Decision | None) -> Decimal:
    if decision is None or decision.kind not in ("charge", "credit", "refund"):
        return ZERO
    return -decision.total if decision.kind == "refund" else decision.total


def _charged(decision: Decision | None) -> Decimal:
    return _total(decision) if decision is not None and decision.kind != "refund" else ZERO


def _refunded(decision: Decision | None) -> Decimal:
    return decision.total if decision is not None and decision.kind == "refund" else ZERO


def _decision_changes(a: Outcome, b: Outcome, at: dt.datetime | None, old: Ruleset,
                      new: Ruleset) -> list[ChargeChange]:
    def keyed(outcome: Outcome) -> dict[tuple[str, int], Decision]:
        seen: dict[str, int] = {}
        out: dict[tuple[str, int], Decision] = {}
        for decision in outcome.decisions:
            n = seen.get(decision.subscription, 0)
            seen[decision.subscription] = n + 1
            out[(decision.subscription, n)] = decision
        return out

    left, right = keyed(a), keyed(b)
    result = []
    for key in sorted(set(left) | set(right)):
        x, y = left.get(key), right.get(key)
        if _priced(x) == _priced(y):
            continue
        result.append(ChargeChange(a.event or b.event, at, key[0], x, y,
                                   _explaining_rules(x, y, old, new)))
    return result


def _explaining_rules(x: Decision | None, y: Decision | None, old: Ruleset,
                      new: Ruleset) -> tuple[Trace, ...]:
    """The traced rules that account for a change: those cited by one side only or
    whose source text differs between the files; else every rule the new side cites."""
    old_traces = {t.rule: t for t in (x.trace if x else ())}
    new_traces = {t.rule: t for t in (y.trace if y else ())}
    explaining: list[Trace] = []
    for name, trace in new_traces.items():
        before = old_traces.get(name)
        if before is None or _text(old, before.source) != _text(new, trace.source):
            explaining.append(trace)
    explaining.extend(t for name, t in old_traces.items() if name not in new_traces)
    if explaining:
        return tuple(explaining)
    return tuple(new_traces.values()) or tuple(old_traces.values())


def _text(ruleset: Ruleset, source: str) -> str | None:
    """The source a ``file:line:col`` location points at: the line, or the whole
    declaration when the location is a declaration's start (column 1)."""
    try:
        _, line_text, column_text = source.rsplit(":", 2)
        line, column = int(line_text), int(column_text)
    except ValueError:
        return None
    lines = ruleset.lines
    if not 0 < line <= len(lines):
        return None
    if column != 1 or "{" not in lines[line - 1]:
        return _code(lines[line - 1])
    depth, block = 0, []
    for text in lines[line - 1:]:
        code = _code(text)
        if code:
            block.append(code)
        depth += code.count("{") - code.count("}")
        if depth <= 0:
            break
    return "\n".join(block)


_STRING_OR_COMMENT = re.compile(r'("(?:[^"\\\n]|\\.)*")|#.*')


def _code(line: str) -> str:
    """A source line without its comment: comments never make a rule a change."""
    return _STRING_OR_COMMENT.sub(lambda m: m[1] or "", line).strip()


def _by_subscription(changes: list[ChargeChange]) -> tuple[SubscriptionChange, ...]:
    grouped: dict[str, list[ChargeChange]] = {}
    for change in changes:
        grouped.setdefault(change.subscription, []).append(change)
    result = []
    for sub in sorted(grouped):
        items = grouped[sub]
        result.append(SubscriptionChange(
            sub, next((c.currency for c in items if c.currency), None),
            sum((_charged(c.old) for c in items), ZERO),
            sum((_charged(c.new) for c in items), ZERO),
            sum((_refunded(c.old) for c in items), ZERO),
            sum((_refunded(c.new) for c in items), ZERO), tuple(items)))
    return tuple(result)


# -- rendering -------------------------------------------------------------------------


def _signed(value: Decimal | int, currency: str, money: bool) -> str:
    text = money_str(abs(Decimal(value)), currency) if money else str(abs(int(value)))
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _fmt(value: Decimal | int, currency: str, money: bool) -> str:
    return money_str(Decimal(value), currency) if money else str(value)


def _percent(old: Decimal | int, new: Decimal | int) -> str:
    if not old:
        return ""
    change = ((Decimal(new) - Decimal(old)) / abs(Decimal(old)) * 100).quantize(Decimal("0.1"))
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    return f" ({sign}{abs(change)}%)"


@in_context
def render_diff(d: Diff, old_name: str = "old", new_name: str = "new") -> str:
    """A plain-text what-if report: per currency the totals and, month by month, every
    figure that moved; then the subscriptions whose charges changed and why."""
    lines = [(f"what-if: {old_name} ({_ruleset_label(d.old.ruleset)}) → {new_name} "
              f"({_ruleset_label(d.new.ruleset)}), {d.old.summary.events} events")]
    if not d.changed:
        lines.append("no figure and no charge changed")
        return printable_lines(lines)
    for currency, (old_total, new_total) in d.totals.items():
        lines.append("")
        lines.append(f"{currency}")
        rows: list[list[str]] = []
        for (c, month), (o, n) in d.months.items():
            if c == currency:
                rows.extend(_moves(month, o, n, currency))
        rows.extend(_moves("total", old_total, new_total, currency))
        if not rows:
            lines.append("  no figure moved")
            continue
        lines.extend("  " + line for line in _grid(
            ["month", "figure", old_name, new_name, "change"], rows))
    if d.subscriptions:
        lines.append("")
        lines.append(f"{len(d.subscriptions)} subscription"
                     f"{'s' if len(d.subscriptions) != 1 else ''} charged differently:")
        for sub in d.subscriptions:
            cur = sub.currency or ""
            text = (f"  {sub.subscription} {cur}: charged {_fmt(sub.old_charged, cur, True)} → "
                    f"{_fmt(sub.new_charged, cur, True)} "
                    f"({_signed(sub.new_charged - sub.old_charged, cur, True)})")
            if sub.old_refunded or sub.new_refunded:
                text += (f", refunded {_fmt(sub.old_refunded, cur, True)} → "
                         f"{_fmt(sub.new_refunded, cur, True)}")
            lines.append(text)
            for change in sub.changes:
                when = change.at.date().isoformat() if change.at else "?"
                lines.append(f"    {when} event {change.event}: {_decision_text(change.old, cur)}"
                             f" → {_decision_text(change.new, cur)}")
                for trace in change.rules:
                    lines.append(f"      rule {trace.rule} ({trace.source})")
    if d.outcomes:
        lines.append("")
        lines.append("events that applied under one ruleset only:")
        for event, a, b in d.outcomes:
            lines.append(f"  {event}: {old_name} {'ok' if a else 'failed'}, "
                         f"{new_name} {'ok' if b else 'failed'}")
    return printable_lines(lines)


def _ruleset_label(ruleset: Ruleset) -> str:
    return ruleset.name + (f" {ruleset.version}" if ruleset.version else "")


def _decision_text(decision: Decision | None, currency: str) -> str:
    if decision is None:
        return "nothing"
    cur = decision.currency or currency
    text = f"{decision.kind} {money_str(decision.total, cur)}"
    if decision.discounts:
        text += " (" + ", ".join(f"{d.rule} −{money_str(d.amount, cur)}"
                                 for d in decision.discounts) + ")"
    return text


def _moves(month: str, old: Figures, new: Figures, currency: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for name in FIELDS:
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        money = name in MONEY_FIELDS
        rows.append([month if not rows else "", name, _fmt(a, currency, money),
                     _fmt(b, currency, money), _signed(b - a, currency, money) + _percent(a, b)])
    return rows


def _grid(headings: list[str], rows: list[list[str]]) -> list[str]:
    rows = [[printable(c) for c in r] for r in rows]  # escaped before measuring
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headings), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


@in_context
def diff_to_wire(d: Diff) -> dict[str, Any]:
    """The diff as JSON-ready data (money as strings), deterministic."""
    def pair(currency: str, o: Figures, n: Figures) -> dict[str, Any]:
        return {"old": figures_to_wire(o, currency), "new": figures_to_wire(n, currency),
                "change": figures_to_wire(n - o, currency)}

    def decision(x: Decision | None) -> dict[str, Any] | None:
        if x is None:
            return None
        cur = x.currency or ""
        return {"kind": x.kind, "total": money_str(x.total, cur) if cur else str(x.total),
                "discounts": [{"rule": t.rule, "amount": money_str(t.amount, cur)}
                              for t in x.discounts]}

    return {
        "old": {"ruleset": d.old.ruleset.name, "version": d.old.ruleset.version},
        "new": {"ruleset": d.new.ruleset.name, "version": d.new.ruleset.version},
        "events": d.old.summary.events,
        "totals": {c: pair(c, o, n) for c, (o, n) in d.totals.items()},
        "months": [{"currency": c, "month": m, **pair(c, o, n)}
                   for (c, m), (o, n) in d.months.items() if o != n],
        "subscriptions": [{
            "subscription": s.subscription, "currency": s.currency,
            "charged": {"old": _wire_money(s.old_charged, s.currency),
                        "new": _wire_money(s.new_charged, s.currency)},
            "refunded": {"old": _wire_money(s.old_refunded, s.currency),
                         "new": _wire_money(s.new_refunded, s.currency)},
            "changes": [{"event": c.event, "at": c.at.isoformat() if c.at else None,
                         "old": decision(c.old), "new": decision(c.new),
                         "rules": [{"rule": t.rule, "source": t.source} for t in c.rules]}
                        for c in s.changes]} for s in d.subscriptions],
        "outcomes": [{"event": e, "old_ok": a, "new_ok": b} for e, a, b in d.outcomes],
    }


def _wire_money(amount: Decimal, currency: str | None) -> str:
    return money_str(amount, currency) if currency else decimal_str(amount)
