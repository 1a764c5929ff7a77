"""Explain one event: its decisions line by line, with the rules behind each figure.

:func:`explain` replays a log up to an event and applies it; :func:`render_explanation`
prints each decision's figures with the rule that produced them and its source
(``file:line:col`` and the source line itself), the candidates that were rejected
and why (eligibility denials, promotion refusals), and every revenue event with its
rule, ruleset and version.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .diagnostics import did_you_mean
from .engine import Engine
from .events import EventError
from .results import Decision, Outcome, RevenueEvent, Trace
from .ruleset import Ruleset
from .runtime import decimal_str, in_context, money_str
from .text import printable_lines
from .state import State

__all__ = ["Explanation", "UnknownEvent", "explain", "render_explanation"]


class UnknownEvent(LookupError):
    """The log has no event with that id."""


@attrs.frozen
class Explanation:
    """One input event applied after everything before it in the log."""

    ruleset: Ruleset = attrs.field(repr=False)
    event: Mapping[str, Any]
    before: State = attrs.field(repr=False)
    outcome: Outcome
    position: int  # 1-based, in the log


@in_context
def explain(ruleset: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
            event_id: str) -> Explanation:
    """Apply ``events`` up to the first one whose id is ``event_id`` and return how it
    was decided; raise :class:`UnknownEvent` (with a suggestion) when there is none."""
    engine = Engine(ruleset)
    state = State()
    seen: list[str] = []
    for n, item in enumerate(events, 1):
        if isinstance(item, EventError):
            continue
        if str(item.get("id")) == event_id:
            return Explanation(ruleset, item, state, engine.apply(state, item), n)
        seen.append(str(item.get("id")))
        state = engine.apply(state, item).state
    raise UnknownEvent(f"no event '{event_id}' in the log{did_you_mean(event_id, seen)}")


@in_context
def render_explanation(x: Explanation) -> str:
    """The explanation as text, one fact per line."""
    ev, outcome, rules = x.event, x.outcome, x.ruleset
    head = f"event {ev.get('id')} ({ev.get('type')}) at {ev.get('at')}"
    if ev.get("subscription"):
        head += f", subscription {ev.get('subscription')}"
    version = f" version {rules.version}" if rules.version else ""
    lines = [head, f"  #{x.position} in the log, under ruleset {rules.name}{version}"]
    if not outcome.ok:
        error = outcome.error
        lines.append(f"  not applied: {error.code}: {error.message}" if error else
                     "  not applied")
        lines.append("  the state is unchanged")
        return printable_lines(lines)
    if outcome.replayed:
        lines.append("  already applied earlier in the log: a replay changes nothing")
        return printable_lines(lines)
    if not outcome.decisions:
        lines.append("  no decision")
    for i, decision in enumerate(outcome.decisions, 1):
        lines.append("")
        lines.extend(_decision_lines(i, decision, rules))
    if outcome.events:
        lines.append("")
        lines.append("revenue events:")
        for event in outcome.events:
            lines.extend(_event_lines(event, rules))
    return printable_lines(lines)


def _cite(trace: Trace | None, rules: Ruleset) -> str:
    if trace is None:
        return ""
    text = _source_line(rules, trace.source)
    return f"{trace.rule} ({trace.source})" + (f"  `{text}`" if text else "")


def _source_line(rules: Ruleset, source: str | None) -> str | None:
    if not source:
        return None
    try:
        line = int(source.rsplit(":", 2)[-2])
    except (ValueError, IndexError):
        return None
    return rules.lines[line - 1].strip() if 0 < line <= len(rules.lines) else None


def _find(trace: tuple[Trace, ...], *prefixes: str) -> list[Trace]:
    return [t for t in trace if t.rule.startswith(prefixes)]


def _decision_lines(i: int, d: Decision, rules: Ruleset) -> list[str]:
    cur = d.currency or ""

    def money(amount: Any) -> str:
        return money_str(amount, cur) if cur else decimal_str(amount)

    lines = [f"decision {i}: {d.kind} for subscription {d.subscription}"
             + (f" in {cur}" if cur else "")]
    rows: list[tuple[str, str, str]] = []
    used: set[Trace] = set()

    def row(label: str, value: str, traces: list[Trace]) -> None:
        if not traces:
            rows.append((label, value, ""))
        for k, trace in enumerate(traces):
            rows.append((label if k == 0 else "", value if k == 0 else "", _cite(trace, rules)))
            used.add(trace)

    if d.kind in ("charge", "credit", "refund"):
        if d.kind != "refund":
            row("list price", money(d.list), _find(d.trace, "price ", "contract "))
            for disc in d.discounts:
                row("discount", "−" + money(disc.amount),
                    [t for t in d.trace if t.rule == disc.rule])
            if d.credit:
                row("credit", "−" + money(d.credit), _find(d.trace, "plan "))
        row("tax", money(d.tax), _find(d.trace, "tax "))
        row("net", money(d.net), [])
        row("total", money(d.total), _find(d.trace, "lifecycle refund") if d.kind == "refund"
            else [])
        if d.psp:
            row("psp", d.psp, _find(d.trace, "route ", "storefront ", "dunning "))
    if d.trial_days:
        row("trial", f"{d.trial_days} days", [t for t in d.trace if t.rule.endswith(" trial")])
    for label, day in (("next charge", d.next_charge), ("due", d.due),
                       ("retry at", d.retry_at), ("grace ends", d.grace_ends)):
        if day is not None:
            row(label, day.isoformat(), [])
    width = max([len(r[0]) for r in rows] + [0])
    value_width = max([len(r[1]) for r in rows] + [0])
    for label, value, cite in rows:
        lines.append(f"  {label.ljust(width)}  {value.rjust(value_width)}"
                     + (f"   {cite}" if cite else "").rstrip())
    rest = [t for t in d.trace if t not in used]
    if rest:
        lines.append("  also cited:")
        lines.extend(f"    {_cite(t, rules)}" for t in rest)
    if d.reasons:
        lines.append("  reasons (rejected candidates, denials, notes):")
        for reason in d.reasons:
            where = _reason_source(reason, rules)
            lines.append(f"    {reason}" + (f"   ({where})" if where else ""))
    return [line.rstrip() for line in lines]


def _reason_source(reason: str, rules: Ruleset) -> str | None:
    """Where the rule a reason names is declared (``trial_ok: …``, ``black_friday not …``)."""
    for e in rules.model.eligibilities:
        if reason.startswith(f"{e.name}: "):
            text = reason[len(e.name) + 2:]
            for deny in e.denies:
                if deny.reason == text:  # the deny rule itself, not just its block
                    where = deny.rule.span
                    return f"{os.path.basename(where.file)}:{where.line}:{where.column}"
    for p in rules.model.dunning:
        if p.no_retry is not None and reason.startswith(f"dunning {p.name}: no retry when "):
            where = p.no_retry.span  # the hard decline's own line, not the policy block
            return f"{os.path.basename(where.file)}:{where.line}:{where.column}"
    names = {e.name: e.span for e in rules.model.eligibilities}
    names.update({p.name: p.span for p in rules.model.promotions})
    names.update({f"dunning {p.name}": p.span for p in rules.model.dunning})
    match = re.match(r"(dunning \w+|\w+)", reason)
    if match is None:
        return None
    span = names.get(match.group(1))
    # the base name of the file, as the engine writes sources in traces
    return f"{os.path.basename(span.file)}:{span.line}:{span.column}" if span else None


def _event_lines(e: RevenueEvent, rules: Ruleset) -> list[str]:
    cur = e.currency
    figures = []
    for name in ("gross", "discount", "credit", "tax", "net", "amount", "commission"):
        value = getattr(e, name)
        if value:
            figures.append(f"{name} {money_str(value, cur)}")
    text = f"  {e.id} {e.type} {e.subscription}"
    if figures:
        text += f" {cur} " + ", ".join(figures)
    if e.entitlements:
        text += " [" + ", ".join(e.entitlements) + "]"
    if e.date is not None:
        text += f" on {e.date.isoformat()}"
    lines = [text]
    if e.rule:
        source = _source_line(rules, e.source)
        lines.append(f"      rule {e.rule}" + (f" ({e.source})" if e.source else "")
                     + (f"  `{source}`" if source else "")
                     + (f" — {e.ruleset} {e.version}" if e.ruleset else ""))
    if e.reasons:
        lines.append("      reasons: " + "; ".join(e.reasons))
    return lines
