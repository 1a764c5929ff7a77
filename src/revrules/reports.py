"""Replay an event log and render its ledger: a text table, JSON, CSV and an HTML page.

Every renderer is deterministic: the same ledger always gives the same bytes. Money
is written with exactly its currency's minor units (``"109.92"``, ``"1200"``),
never as a float.

>>> from revrules.ledger import Ledger
>>> print(render_table(Ledger()))
no revenue in this log
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs

from .engine import Engine
from .events import Event, EventError
from .ledger import FIELDS, MONEY_FIELDS, Figures, Group, Ledger
from .results import Error, Outcome
from .ruleset import Ruleset
from .runtime import in_context, money_str
from .state import State
from .text import printable, printable_lines
from .wire import dumps

__all__ = [
    "Failure",
    "Fold",
    "Replay",
    "Streamed",
    "Summary",
    "amount",
    "figures_to_wire",
    "ledger_to_wire",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
    "replay",
    "stream",
]

#: Short column headings of the text table.
HEADINGS = {"payments": "payments", "gross": "gross", "discounts": "discounts",
            "credits": "credits", "refunds": "refunds", "net": "net", "tax": "tax",
            "commission": "commission", "proceeds": "proceeds", "refund_count": "refunded",
            "active": "active", "trialing": "trialing", "mrr": "MRR", "churned": "churned",
            "outstanding": "outstanding", "written_off": "written off"}


@attrs.frozen
class Failure:
    """The first event of a log that did not apply: its place (1-based), id and error."""

    index: int
    event: str
    code: str | None
    message: str | None


@attrs.frozen
class Summary:
    """What a report needs of a log's outcomes: how many, how many failed, the first
    failure. A streamed replay keeps this instead of every :class:`Outcome`."""

    events: int = 0
    failed: int = 0
    first_failure: Failure | None = None

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Summary:
        fold = _Tally()
        for outcome in outcomes:
            fold.count(outcome)
        return fold.summary()


class _Tally:
    __slots__ = ("events", "failed", "first")

    def __init__(self) -> None:
        self.events = self.failed = 0
        self.first: Failure | None = None

    def count(self, outcome: Outcome) -> None:
        self.events += 1
        if not outcome.ok:
            self.failed += 1
            if self.first is None:
                error = outcome.error
                self.first = Failure(self.events, outcome.event,
                                     error.code if error else None,
                                     error.message if error else None)

    def summary(self) -> Summary:
        return Summary(self.events, self.failed, self.first)


@attrs.frozen
class Replay:
    """A log applied under one ruleset: every outcome, the final state and the ledger."""

    ruleset: Ruleset = attrs.field(repr=False)
    outcomes: tuple[Outcome, ...] = attrs.field(repr=False)
    state: State = attrs.field(repr=False)
    ledger: Ledger = attrs.field(repr=False)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def summary(self) -> Summary:
        return Summary.of(self.outcomes)


@attrs.frozen
class Streamed:
    """A log applied under one ruleset and folded as it went: the final state, the
    ledger and the :class:`Summary` of the outcomes (not the outcomes themselves)."""

    ruleset: Ruleset = attrs.field(repr=False)
    summary: Summary
    state: State = attrs.field(repr=False)
    ledger: Ledger = attrs.field(repr=False)


class Fold:
    """A replay folded event by event, in constant memory per event: it keeps the
    state, the ledger (unless ``ledger=False``) and the counts of a :class:`Summary`,
    never the outcomes. :meth:`feed` applies one event (an :class:`EventError`, a bad
    JSONL line, becomes a failed outcome, as in ``revrules eval``) and returns its
    outcome; :meth:`outcomes` does it for a whole log, lazily.

    >>> import revrules
    >>> fold = Fold(revrules.load("rulesets/streaming.rr"))
    >>> fold.feed({"id": "t1", "type": "tick", "at": "2027-01-01"}).ok
    True
    >>> fold.result().summary
    Summary(events=1, failed=0, first_failure=None)
    """

    __slots__ = ("ruleset", "engine", "state", "ledger", "_tally", "_fold_ledger")

    def __init__(self, ruleset: Ruleset, engine: Engine | None = None,
                 state: State | None = None, ledger: bool = True) -> None:
        self.ruleset = ruleset
        self.engine = engine if engine is not None else Engine(ruleset)
        self.state = state if state is not None else State()
        self.ledger = Ledger.fold((), ruleset)
        self._fold_ledger = ledger
        self._tally = _Tally()

    def feed(self, item: Mapping[str, Any] | EventError | Event) -> Outcome:
        if isinstance(item, EventError):
            outcome = Outcome("", False, self.state, error=Error(item.code, item.message))
        else:
            outcome = self.engine.apply(self.state, item)
        self.state = outcome.state
        self._tally.count(outcome)
        if self._fold_ledger and outcome.ok and outcome.events:
            self.ledger = self.ledger.extend(outcome.events)
        return outcome

    def outcomes(self, events: Iterable[Mapping[str, Any] | EventError],
                 progress: Callable[[int], None] | None = None) -> Iterator[Outcome]:
        """Feed ``events`` one by one, yielding each outcome (to a fold that keeps
        what it needs: :func:`revrules.growth.growth_of_outcomes`, …)."""
        feed = self.feed
        for n, item in enumerate(events, 1):
            yield feed(item)
            if progress is not None:
                progress(n)

    @property
    def summary(self) -> Summary:
        return self._tally.summary()

    def result(self) -> Streamed:
        return Streamed(self.ruleset, self._tally.summary(), self.state, self.ledger)


@in_context
def stream(ruleset: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
           progress: Callable[[int], None] | None = None) -> Streamed:
    """:func:`replay` without keeping the outcomes: apply ``events`` in order from the
    empty state, fold the ledger as it goes and keep only a :class:`Summary`. Memory
    grows with the subscriptions of the log, not with its events."""
    fold = Fold(ruleset)
    for _ in fold.outcomes(events, progress):
        pass
    return fold.result()


@in_context
def replay(ruleset: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
           progress: Callable[[int], None] | None = None) -> Replay:
    """Apply ``events`` in order from the empty state and fold the ledger, keeping every
    outcome (:func:`stream` keeps only their :class:`Summary`).

    An :class:`EventError` in the input (a bad JSONL line) becomes a failed outcome,
    as in ``revrules eval``. ``progress`` is called with the number of events done.
    """
    fold = Fold(ruleset)
    outcomes = tuple(fold.outcomes(events, progress))
    return Replay(ruleset, outcomes, fold.state, fold.ledger)


def _summary(outcomes: Iterable[Outcome] | Summary | None) -> Summary | None:
    if outcomes is None or isinstance(outcomes, Summary):
        return outcomes
    return Summary.of(outcomes)


# -- values ----------------------------------------------------------------------------


def amount(figures: Figures, name: str, currency: str) -> str:
    """One figure as text: money with the currency's minor units, counts as integers."""
    value = figures.get(name)
    if name in MONEY_FIELDS:
        assert isinstance(value, Decimal)
        return money_str(value, currency)
    return str(value)


def figures_to_wire(figures: Figures, currency: str) -> dict[str, str | int]:
    """Figures as JSON-ready data: money as strings, counts as integers, in FIELDS order."""
    out: dict[str, str | int] = {}
    for name in FIELDS:
        value = figures.get(name)
        out[name] = money_str(value, currency) if isinstance(value, Decimal) else value
    return out


@in_context
def ledger_to_wire(ledger: Ledger, ruleset: Ruleset | None = None,
                   outcomes: Iterable[Outcome] | Summary | None = None) -> dict[str, Any]:
    """The whole report as JSON-ready data: totals, months and groups, sorted
    (``outcomes``: the log's outcomes, or their :class:`Summary`, for the counts)."""
    done = _summary(outcomes)
    out: dict[str, Any] = {}
    if ruleset is not None:
        out["ruleset"] = ruleset.name
        out["version"] = ruleset.version
    if done is not None:
        out["events"] = done.events
        out["failed"] = done.failed
    out["totals"] = {c: figures_to_wire(f, c) for c, f in ledger.totals().items()}
    out["months"] = [{"currency": c, "month": m, **figures_to_wire(f, c)}
                     for (c, m), f in ledger.by_month().items()]
    out["groups"] = [{**_group_wire(g), **figures_to_wire(f, g.currency)}
                     for g, f in ledger.rows()]
    return out


def _group_wire(group: Group) -> dict[str, str]:
    return {"currency": group.currency, "month": group.month, "storefront": group.storefront,
            "channel": group.channel, "plan": group.plan}


# -- JSON and CSV ----------------------------------------------------------------------


@in_context
def render_json(ledger: Ledger, ruleset: Ruleset | None = None,
                outcomes: Iterable[Outcome] | Summary | None = None) -> str:
    """The report as one deterministic JSON document (see :func:`ledger_to_wire`)."""
    return dumps(ledger_to_wire(ledger, ruleset, outcomes))


@in_context
def render_csv(ledger: Ledger) -> str:
    """One line per group (currency, month, storefront, channel, plan) and every figure."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["currency", "month", "storefront", "channel", "plan", *FIELDS])
    for group, figures in ledger.rows():
        writer.writerow([group.currency, group.month, group.storefront, group.channel,
                         group.plan, *(amount(figures, n, group.currency) for n in FIELDS)])
    return buffer.getvalue()


# -- the text table --------------------------------------------------------------------


@in_context
def render_table(ledger: Ledger, ruleset: Ruleset | None = None,
                 outcomes: Iterable[Outcome] | Summary | None = None) -> str:
    """A plain-text report for the terminal: per currency, a table by month, the
    totals, and the totals by storefront, channel and plan."""
    done = _summary(outcomes)
    lines: list[str] = []
    if ruleset is not None:
        version = f" version {ruleset.version}" if ruleset.version else ""
        lines.append(f"ruleset {ruleset.name}{version}")
    if done is not None:
        lines.append(f"{done.events} events, {done.failed} failed")
    totals = ledger.totals()
    if not totals:
        lines.append("no revenue in this log")
        return printable_lines(lines)
    months = ledger.by_month()
    by_product = _by_product(ledger)
    for currency, total in totals.items():
        if lines:
            lines.append("")
        lines.append(f"{currency}: net revenue {money_str(total.net, currency)}, gross "
                     f"{money_str(total.gross, currency)}, refunds "
                     f"{money_str(total.refunds, currency)}, MRR "
                     f"{money_str(total.mrr, currency)} ({total.active} active, "
                     f"{total.trialing} trialing at the end)")
        rows = [[m, *(amount(f, n, currency) for n in FIELDS)]
                for (c, m), f in months.items() if c == currency]
        rows.append(["total", *(amount(total, n, currency) for n in FIELDS)])
        lines.extend(_grid(["month", *(HEADINGS[n] for n in FIELDS)], rows, footer=True))
        money = [n for n in FIELDS if n in MONEY_FIELDS and n not in ("mrr", "outstanding")]
        product_rows = [[sf, ch, plan, *(amount(f, n, currency) for n in ["payments", *money])]
                        for (c, sf, ch, plan), f in by_product.items() if c == currency]
        lines.append("")
        lines.extend(_grid(["storefront", "channel", "plan",
                            *(HEADINGS[n] for n in ["payments", *money])], product_rows))
    return printable_lines(lines)


def _by_product(ledger: Ledger) -> dict[tuple[str, str, str, str], Figures]:
    result: dict[tuple[str, str, str, str], Figures] = {}
    for g, f in ledger.rows():
        key = (g.currency, g.storefront, g.channel, g.plan)
        result[key] = result.get(key, Figures()) + f
    return dict(sorted(result.items()))


def _grid(headings: list[str], rows: list[list[str]], footer: bool = False) -> list[str]:
    rows = [[printable(str(c)) for c in r] for r in rows]  # escaped before measuring
    widths = [max(len(str(r[i])) for r in [headings, *rows]) for i in range(len(headings))]
    text_columns = sum(1 for h in headings if h in ("month", "storefront", "channel", "plan"))

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < text_columns else c.rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(headings), rule]
    body = rows[:-1] if footer else rows
    out.extend(line(r) for r in body)
    if footer and rows:
        out.append(rule)
        out.append(line(rows[-1]))
    return out


# -- HTML ------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2733;
margin:2rem auto;max-width:1100px;padding:0 1rem;background:#fbfbfd}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.25rem;margin:2.2rem 0 .4rem}
.sub{color:#5b6675;margin:0 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:.8rem 0 1rem}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:8px;padding:.6rem .9rem;
min-width:8.5rem}.card b{display:block;font-size:1.2rem}.card span{color:#5b6675;font-size:.8rem}
table{border-collapse:collapse;width:100%;background:#fff;margin:.6rem 0 1.2rem;
font-variant-numeric:tabular-nums}th,td{padding:.3rem .5rem;border-bottom:1px solid #eceef2;
text-align:right;white-space:nowrap}th{background:#f3f5f8;font-weight:600}
td.l,th.l{text-align:left}tr.total td{font-weight:600;border-top:2px solid #c9ced6}
svg{background:#fff;border:1px solid #e3e6eb;border-radius:8px;max-width:100%;height:auto}
.axis{stroke:#9aa3ae;stroke-width:1}.grid{stroke:#eceef2;stroke-width:1}
.lbl{fill:#5b6675;font-size:11px}.gross{stroke:#2f6fd6}.net{stroke:#1b9e5a}
.refunds{stroke:#d6452f}.line{fill:none;stroke-width:2.2}
.dot-gross{fill:#2f6fd6}.dot-net{fill:#1b9e5a}.dot-refunds{fill:#d6452f}
.note{color:#5b6675;font-size:.85rem}
"""

_SERIES = (("gross", "gross sales"), ("net", "net revenue"), ("refunds", "refunds"))


@in_context
def render_html(ledger: Ledger, ruleset: Ruleset | None = None,
                outcomes: Iterable[Outcome] | Summary | None = None,
                title: str | None = None) -> str:
    """A self-contained HTML page (inline CSS and SVG, no script, no external asset):
    per currency, headline figures, a timeline chart of gross sales, net revenue and
    refunds by month, and the monthly table."""
    done = _summary(outcomes)
    esc = html.escape
    name = title or (f"Revenue — {ruleset.name}" if ruleset is not None else "Revenue")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{esc(name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{esc(name)}</h1>"]
    facts = []
    if ruleset is not None:
        facts.append(f"ruleset {ruleset.name}" + (f" version {ruleset.version}"
                                                   if ruleset.version else ""))
    if done is not None:
        facts.append(f"{done.events} events, {done.failed} failed")
    facts.append("cash basis, tax-exclusive figures, calendar months in UTC")
    parts.append(f'<p class="sub">{esc(" · ".join(facts))}</p>')
    totals = ledger.totals()
    if not totals:
        parts.append("<p>No revenue in this log.</p>")
    months = ledger.by_month()
    by_product = _by_product(ledger)
    for currency, total in totals.items():
        series = [(m, f) for (c, m), f in months.items() if c == currency]
        parts.append(f'<section id="{esc(currency)}">')
        parts.append(f"<h2>{esc(currency)}</h2>")
        parts.append('<div class="cards">')
        for label, value in (("net revenue", money_str(total.net, currency)),
                             ("gross sales", money_str(total.gross, currency)),
                             ("refunds", money_str(total.refunds, currency)),
                             ("proceeds", money_str(total.proceeds, currency)),
                             ("MRR at the end", money_str(total.mrr, currency)),
                             ("active at the end", str(total.active)),
                             ("churned", str(total.churned))):
            parts.append(f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>')
        parts.append("</div>")
        parts.append(_chart(currency, series))
        parts.append("<table>")
        parts.append("<tr>" + '<th class="l">month</th>'
                     + "".join(f"<th>{esc(HEADINGS[n])}</th>" for n in FIELDS) + "</tr>")
        for month, figures in series:
            parts.append(f'<tr><td class="l">{esc(month)}</td>' + "".join(
                f"<td>{esc(amount(figures, n, currency))}</td>" for n in FIELDS) + "</tr>")
        parts.append('<tr class="total"><td class="l">total</td>' + "".join(
            f"<td>{esc(amount(total, n, currency))}</td>" for n in FIELDS) + "</tr>")
        parts.append("</table>")
        money = ["payments", *(n for n in FIELDS
                               if n in MONEY_FIELDS and n not in ("mrr", "outstanding"))]
        parts.append("<table>")
        parts.append("<tr>" + "".join(f'<th class="l">{h}</th>' for h in
                                      ("storefront", "channel", "plan"))
                     + "".join(f"<th>{esc(HEADINGS[n])}</th>" for n in money) + "</tr>")
        for (c, sf, ch, plan), figures in by_product.items():
            if c == currency:
                parts.append("<tr>" + "".join(f'<td class="l">{esc(v)}</td>' for v in
                                              (sf, ch, plan))
                             + "".join(f"<td>{esc(amount(figures, n, currency))}</td>"
                                       for n in money) + "</tr>")
        parts.append("</table>")
        parts.append("</section>")
    parts.append('<p class="note">Net revenue = gross − discounts − refunds − credits; '
                 "proceeds = net − commission. Active, trialing and MRR are counted at "
                 "month end; the total row shows them at the end of the last month.</p>")
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts) + "\n"


def _chart(currency: str, series: list[tuple[str, Figures]]) -> str:
    """An inline SVG line chart of gross, net and refunds by month."""
    width, height = 960, 320
    left, right, top, bottom = 80, 20, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [f.get(n) for _, f in series for n, _ in _SERIES]
    high = max([Decimal(v) for v in values] + [Decimal(0)])
    low = min([Decimal(v) for v in values] + [Decimal(0)])
    top_value = _nice(high) if high > 0 else Decimal(1)
    bottom_value = -_nice(-low) if low < 0 else Decimal(0)
    span = top_value - bottom_value
    count = len(series)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / count if count else 0)

    def y(value: Decimal) -> float:
        return top + plot_h * float((top_value - value) / span)

    esc = html.escape
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(currency)} gross sales, net revenue and refunds by month">'),
           f"<title>{esc(currency)}: gross sales, net revenue and refunds by month</title>"]
    steps = 4
    for k in range(steps + 1):
        value = bottom_value + span * k / steps
        yy = y(value)
        out.append(f'<line class="grid" x1="{left}" y1="{yy:.1f}" x2="{width - right}" '
                   f'y2="{yy:.1f}"/>')
        label = f"{value.quantize(Decimal(1)):,}" if top_value >= 100 else money_str(
            value, currency)
        out.append(f'<text class="lbl" x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">'
                   f"{esc(label)}</text>")
    out.append(f'<line class="axis" x1="{left}" y1="{y(Decimal(0)):.1f}" x2="{width - right}" '
               f'y2="{y(Decimal(0)):.1f}"/>')
    every = max(1, (count + 11) // 12)
    for i, (month, _) in enumerate(series):
        if i % every == 0:
            out.append(f'<text class="lbl" x="{x(i):.1f}" y="{height - bottom + 18}" '
                       f'text-anchor="middle">{esc(month)}</text>')
    for name, label in _SERIES:
        points = [(x(i), y(Decimal(f.get(name)))) for i, (_, f) in enumerate(series)]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            out.append(f'<polyline class="line {name}" points="{path}"/>')
        for (px, py), (month, f) in zip(points, series, strict=True):
            text = f"{month} {label}: {money_str(Decimal(f.get(name)), currency)} {currency}"
            out.append(f'<circle class="dot-{name}" cx="{px:.1f}" cy="{py:.1f}" r="3.5">'
                       f"<title>{esc(text)}</title></circle>")
    lx = left
    for name, label in _SERIES:
        out.append(f'<line class="line {name}" x1="{lx}" y1="{height - 12}" x2="{lx + 22}" '
                   f'y2="{height - 12}"/>')
        out.append(f'<text class="lbl" x="{lx + 28}" y="{height - 8}">{esc(label)}</text>')
        lx += 140
    out.append("</svg>")
    return "\n".join(out)


def _nice(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (a tidy axis top)."""
    exp = value.adjusted()
    for _ in range(3):
        base = Decimal(1).scaleb(exp)
        for step in (1, 2, Decimal("2.5"), 5, 10):
            candidate = base * step
            if candidate >= value:
                return candidate
        exp += 1
    return value
