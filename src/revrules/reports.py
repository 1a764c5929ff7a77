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
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

import attrs
from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, get_group_symbol, is_currency

from .accrual import Accrual
from .engine import Engine
from .events import Event, EventError
from .ledger import FIELDS, MONEY_FIELDS, Figures, Group, Ledger
from .movements import Movement, Movements, movements
from .results import Error, Outcome
from .ruleset import Ruleset
from .runtime import in_context, money_str, quantize
from .state import State
from .taxes import Taxes
from .text import printable, printable_lines
from .wire import dumps

if TYPE_CHECKING:
    from .growth import Growth
    from .whatif import Diff

__all__ = [
    "DEFAULT_SECTIONS",
    "Card",
    "Cards",
    "Chart",
    "Money",
    "Note",
    "Rates",
    "Replay",
    "ReportInput",
    "Section",
    "Series",
    "Failure",
    "Fold",
    "Streamed",
    "Table",
    "Summary",
    "accrual_receivable",
    "amount",
    "diff_html",
    "figures_to_wire",
    "growth_html",
    "ledger_html",
    "ledger_receivable",
    "ledger_to_wire",
    "parse_fx",
    "parse_locale",
    "render_csv",
    "render_fragment",
    "render_html",
    "render_page",
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


# -- HTML: plain data ------------------------------------------------------------------
#
# The page is a list of sections; a section is a list of blocks (cards, tables, charts)
# holding plain values. A *section builder* turns a :class:`ReportInput` into sections,
# so a new view (accrual, MRR movements, tax) plugs in as one more function in
# ``DEFAULT_SECTIONS`` or the ``sections`` argument of :func:`render_html`. Values are
# formatted only when the page is written, for the reader's locale.


@attrs.frozen
class Money:
    """An amount in a currency, as a cell or card value."""

    amount: Decimal
    currency: str


#: A cell: text, a count, a plain decimal (a rate), money, or nothing (shown as "–").
Cell = str | int | Decimal | Money | None


@attrs.frozen
class Card:
    """A headline figure: a label, the value, and an optional note under it."""

    label: str
    value: Cell
    note: str | tuple[Cell, ...] = ""  # text, or parts formatted one by one and joined
    key: str = ""  # a class name for the card ("receivable")


@attrs.frozen
class Cards:
    cards: tuple[Card, ...]


@attrs.frozen
class Table:
    """A table of plain values.

    ``numeric`` names the columns written right-aligned (default: every column whose
    cells are all numbers or empty). Numeric columns that are zero or empty in every
    row are left out when ``collapse`` is set, and the page says which.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[str, ...] | None = None
    footer: tuple[tuple[Cell, ...], ...] = ()
    note: str = ""
    collapse: bool = True
    unit: str | None = None  # the one currency of every amount: named in the caption,
    # amounts written without its symbol (narrower columns)


@attrs.frozen
class Series:
    """One line of a chart: a key (a class name), its label, a value per category."""

    key: str
    label: str
    values: tuple[Decimal, ...]


@attrs.frozen
class Chart:
    """A line chart over categories (months) of amounts in one currency."""

    title: str
    currency: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]


@attrs.frozen
class Note:
    text: str


Block = Cards | Table | Chart | Note


@attrs.frozen
class Section:
    """A part of the page with its own heading; ``id`` is the anchor."""

    id: str
    title: str
    blocks: tuple[Block, ...]


@attrs.frozen
class Rates:
    """Explicit exchange rates (``--fx EUR=1,USD=0.92``): ``base`` is the reporting
    currency; ``rates[c]`` is the value of one unit of ``c`` in it (``base`` is 1)."""

    base: str
    rates: Mapping[str, Decimal]

    @in_context
    def convert(self, amount: Decimal, currency: str) -> Decimal:
        """``amount`` in the reporting currency, rounded once (half even) to its minor
        units."""
        return quantize(amount * self.rates[currency], self.base)

    def missing(self, currencies: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(c for c in currencies if c not in self.rates))


@in_context
def parse_fx(text: str) -> Rates:
    """``"EUR=1,USD=0.92"`` → :class:`Rates`. The first currency is the reporting one
    and must be given 1; every rate is a positive decimal. Raises ``ValueError`` with a
    one-line message."""
    rates: dict[str, Decimal] = {}
    for item in (part.strip() for part in text.split(",")):
        code, sep, value = item.partition("=")
        code = code.strip()
        if not sep or not code:
            raise ValueError(f"--fx wants CUR=RATE items separated by commas, not {item!r}")
        if not (len(code) == 3 and code.isascii() and code.isupper() and is_currency(code)):
            raise ValueError(f"--fx: {code!r} is not an ISO 4217 currency code")
        if code in rates:
            raise ValueError(f"--fx: {code} is given twice")
        try:
            rate = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"--fx: the rate of {code} is not a number: {value!r}") from None
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"--fx: the rate of {code} must be a positive number")
        if not -12 <= rate.adjusted() < 12 or len(rate.as_tuple().digits) > 20:
            raise ValueError(f"--fx: the rate of {code} must lie between 1e-12 and 1e12, "
                             "with at most 20 digits")
        rates[code] = rate
    base = next(iter(rates))
    if rates[base] != 1:
        raise ValueError(f"--fx: the first currency ({base}) is the reporting currency "
                         "and must be given 1")
    return Rates(base, rates)


def parse_locale(text: str) -> Locale:
    """A babel :class:`~babel.Locale` from ``de_CH`` or ``de-CH``; ``ValueError`` (one
    line) for an unknown one."""
    try:
        return Locale.parse(text.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(f"unknown locale {shown!r} (try en, de_CH, fr_FR, ja_JP)") from None


# -- HTML: the ledger's sections -------------------------------------------------------


def ledger_receivable(ledger: Ledger, currency: str) -> Decimal:
    """What customers owe at the end of the log: the ``outstanding`` figure (charges
    decided but not paid, tax-exclusive) at the end of the last month."""
    total = ledger.totals().get(currency)
    return total.outstanding if total is not None else Decimal(0)


def accrual_receivable(accrual: Accrual) -> Callable[[Ledger, str], Decimal]:
    """The receivables card's figure from the accrual view: its ``receivable`` at the
    end of the last month (the same charges decided and not paid as the ledger's
    ``outstanding``, the figure ``--basis accrual --format json`` gives); a currency the
    view has no charge in falls back to :func:`ledger_receivable`."""
    totals = accrual.totals()

    def receivable(ledger: Ledger, currency: str) -> Decimal:
        total = totals.get(currency)
        return total.receivable if total is not None else ledger_receivable(ledger, currency)

    return receivable


@attrs.frozen
class ReportInput:
    """What section builders read: the ledger, and what the page knows around it."""

    ledger: Ledger
    ruleset: Ruleset | None = None
    summary: Summary | None = None  # the log's counts, when known
    fx: Rates | None = None
    receivable: Callable[[Ledger, str], Decimal] = ledger_receivable
    accrual: Accrual | None = None  # the revenue views (accrual and tax need the
    movements: Movements | None = None  # ruleset and the outcomes)
    taxes: Taxes | None = None


SectionBuilder = Callable[[ReportInput], Iterable[Section]]

_SALES = ("payments", "gross", "discounts", "credits", "refunds", "net", "tax", "commission",
          "proceeds", "refund_count")
_BOOK = ("active", "trialing", "mrr", "churned", "outstanding", "written_off")
_LABELS = {**HEADINGS, "outstanding": "receivable", "mrr": "MRR", "net": "net revenue",
           "gross": "gross sales", "tax": "tax collected"}
_CHART = (("gross", "gross sales"), ("net", "net revenue"), ("refunds", "refunds"))


def _value(figures: Figures, name: str, currency: str) -> Cell:
    value = figures.get(name)
    return Money(value, currency) if isinstance(value, Decimal) else value


def overview_sections(data: ReportInput) -> Iterator[Section]:
    """Every currency side by side (no exchange rate assumed) and, with explicit
    rates, the consolidated figures in the reporting currency."""
    ledger = data.ledger
    totals = ledger.totals()
    if not totals:
        return
    names = ("net", "gross", "refunds", "tax", "proceeds", "mrr")
    side = Table(
        "Totals per currency, each in its own currency",
        ("currency", *(_LABELS[n] for n in names), "receivable", "written off", "active",
         "churned"),
        tuple((c, *(_value(t, n, c) for n in names), Money(data.receivable(ledger, c), c),
               Money(t.written_off, c), t.active, t.churned) for c, t in totals.items()),
        collapse=False)
    blocks: list[Block] = [side]
    months = ledger.by_month()
    currencies = tuple(totals)
    keys = sorted({m for _, m in months})
    fx = data.fx
    columns = ("month", *currencies) + ((f"total in {fx.base}",) if fx else ())
    rows: list[tuple[Cell, ...]] = []
    for month in keys:
        cells: list[Cell] = [month]
        total = Decimal(0)
        for c in currencies:
            f = months.get((c, month))
            cells.append(Money(f.net, c) if f is not None else None)
            if fx and f is not None:
                total += fx.convert(f.net, c)
        if fx:
            cells.append(Money(total, fx.base))
        rows.append(tuple(cells))
    blocks.append(Table("Net revenue by month, per currency" + (
        f", and in {fx.base} at the given rates" if fx else ""), columns, tuple(rows),
        collapse=False))
    if fx:
        converted = ("net", "gross", "refunds", "tax", "proceeds", "mrr")
        conv_rows: list[tuple[Cell, ...]] = []
        sums = [Decimal(0)] * (len(converted) + 1)
        for c, t in totals.items():
            values = [fx.convert(Decimal(t.get(n)), c) for n in converted]
            values.append(fx.convert(data.receivable(ledger, c), c))
            sums = [a + b for a, b in zip(sums, values, strict=True)]
            conv_rows.append((c, fx.rates[c], *(Money(v, fx.base) for v in values)))
        blocks.append(Table(
            "Consolidated at the given rates",
            ("currency", f"rate to {fx.base}", *(_LABELS[n] for n in converted), "receivable"),
            tuple(conv_rows), footer=(("total", None, *(Money(v, fx.base) for v in sums)),),
            collapse=False, unit=fx.base))
        blocks.append(Note(
            "Rates as given (--fx): " + ", ".join(f"1 {c} = {r} {fx.base}"
                                                   for c, r in fx.rates.items() if c != fx.base)
            + f". Each currency's figure is converted once and rounded to {fx.base}'s minor "
            "units, then the converted figures are added."))
    else:
        blocks.append(Note("Currencies are not added together: no exchange rate is assumed. "
                           "Give explicit rates (--fx EUR=1,USD=0.92) for a consolidated view."))
    yield Section("all-currencies", "All currencies", tuple(blocks))


def currency_sections(data: ReportInput) -> Iterator[Section]:
    """Per currency: headline cards (with the receivables card), the timeline chart, the
    monthly sales table, the monthly subscriptions and receivables table, and the totals
    by storefront, channel and plan."""
    ledger = data.ledger
    months = ledger.by_month()
    by_product = _by_product(ledger)
    views = _Views(data)
    for currency, total in ledger.totals().items():
        series = [(m, f) for (c, m), f in months.items() if c == currency]
        unbilled = views.unbilled(currency)
        cards = Cards((
            Card("net revenue", Money(total.net, currency)),
            Card("gross sales", Money(total.gross, currency)),
            Card("refunds", Money(total.refunds, currency)),
            Card("tax collected", Money(total.tax, currency)),
            Card("proceeds", Money(total.proceeds, currency), "net − commission"),
            Card("MRR at the end", Money(total.mrr, currency)),
            Card("receivable at the end", Money(data.receivable(ledger, currency), currency),
                 ("open charges, tax excl.; ",
                  *((Money(unbilled, currency), " unbilled; ") if unbilled is not None
                    else ()),
                  Money(total.written_off, currency), " written off"), key="receivable"),
            Card("active at the end", total.active),
            Card("churned", total.churned)))
        chart = Chart(f"{currency}: gross sales, net revenue and refunds by month", currency,
                      tuple(m for m, _ in series),
                      tuple(Series(key, label, tuple(Decimal(f.get(key)) for _, f in series))
                            for key, label in _CHART))
        sales = Table(
            f"{currency} sales by month", ("month", *(_LABELS[n] for n in _SALES)),
            tuple((m, *(_value(f, n, currency) for n in _SALES)) for m, f in series),
            footer=(("total", *(_value(total, n, currency) for n in _SALES)),), unit=currency)
        book = Table(
            f"{currency} subscriptions and receivables at each month end",
            ("month", *(_LABELS[n] for n in _BOOK)),
            tuple((m, *(_value(f, n, currency) for n in _BOOK)) for m, f in series),
            footer=(("at the end", *(_value(total, n, currency) for n in _BOOK)),),
            note="churned and written off count in the month; the rest at its end.",
            unit=currency)
        money = ("payments", "gross", "discounts", "credits", "refunds", "net", "tax",
                 "commission", "proceeds", "written_off")
        products = Table(
            f"{currency} by storefront, channel and plan",
            ("storefront", "channel", "plan", *(_LABELS[n] for n in money)),
            tuple((sf, ch, plan, *(_value(f, n, currency) for n in money))
                  for (c, sf, ch, plan), f in by_product.items() if c == currency),
            unit=currency)
        yield Section(currency, currency, (cards, chart, sales, book,
                                           *views.accrual_blocks(currency),
                                           *views.movement_blocks(currency),
                                           *views.tax_blocks(currency), products))


class _Views:
    """The revenue views' blocks of one currency section: the accrual chart and table,
    the MRR movements chart and table, and the tax table (each folded once per page)."""

    def __init__(self, data: ReportInput) -> None:
        self.accrual = data.accrual
        self.acc_months = data.accrual.by_month() if data.accrual is not None else {}
        self.acc_totals = data.accrual.totals() if data.accrual is not None else {}
        self.moves = data.movements.by_month() if data.movements is not None else {}
        self.has_taxes = data.taxes is not None
        self.taxes = data.taxes.rows() if data.taxes is not None else ()

    def unbilled(self, currency: str) -> Decimal | None:
        total = self.acc_totals.get(currency)
        return total.unbilled if total is not None else None

    def accrual_blocks(self, currency: str) -> tuple[Block, ...]:
        if self.accrual is None:
            return (Note("Accrual basis: left out, this replay did not fold the accrual "
                         "view (it needs the ruleset and the outcomes of the log)."),)
        rows = [(m, f) for (c, m), f in self.acc_months.items() if c == currency]
        total = self.acc_totals.get(currency)
        if not rows or total is None:
            return (Note(f"Accrual basis: no paid charge in {currency}."),)
        chart = Chart(f"{currency}: recognised revenue by month and deferred revenue at "
                      "month end (accrual basis)", currency, tuple(m for m, _ in rows),
                      (Series("recognised", "recognised", tuple(f.recognised for _, f in rows)),
                       Series("deferred", "deferred", tuple(f.deferred for _, f in rows))))
        where = "" if self.accrual.tz == "UTC" else f" Months in {self.accrual.tz}."
        table = Table(
            f"{currency} accrual basis: recognised revenue by month", ACCRUAL_COLUMNS,
            tuple((m, *(Money(getattr(f, n), currency) for n in ACCRUAL_COLUMNS[1:]))
                  for m, f in rows),
            footer=(("total", *(Money(getattr(total, n), currency)
                                for n in ACCRUAL_COLUMNS[1:])),),
            note="Paid, refunded and recognised in the month; deferred (paid, not yet "
                 "recognised), receivable and unbilled (receivable for service already "
                 "delivered) at its end; the total row: the flows over the log, the "
                 "balances at the end. Recognised + deferred = paid − refunded, to date."
                 + where, unit=currency)
        return chart, table

    def movement_blocks(self, currency: str) -> tuple[Block, ...]:
        rows = [(m, mv) for (c, m), mv in self.moves.items() if c == currency]
        if not rows:
            return (Note(f"MRR movements: no MRR in {currency}."),)
        chart = Chart(f"{currency}: MRR movements by month (contraction and churn below "
                      "zero)", currency, tuple(m for m, _ in rows),
                      tuple(Series(n, n, tuple(getattr(mv, n) * sign for _, mv in rows))
                            for n, sign in _MOVES))
        names = tuple(n for n, _ in MOVEMENT_COLUMNS)
        sums = [sum((getattr(mv, n) for _, mv in rows), Decimal(0)) for n in names[2:-1]]
        table = Table(
            f"{currency} MRR movements by month", tuple(h for _, h in MOVEMENT_COLUMNS),
            tuple((m, *(Money(getattr(mv, n), currency) for n in names[1:]))
                  for m, mv in rows),
            footer=(("over the log", Money(rows[0][1].opening, currency),
                     *(Money(v, currency) for v in sums),
                     Money(rows[-1][1].closing, currency)),),
            note=_tie_out(rows), unit=currency)
        return chart, table

    def tax_blocks(self, currency: str) -> tuple[Block, ...]:
        if not self.has_taxes:
            return (Note("Tax by jurisdiction: left out, this replay did not fold the "
                         "tax view (it needs the ruleset and the outcomes of the log)."),)
        rows = [(k, f) for k, f in self.taxes if k.currency == currency]
        if not rows:
            return (Note(f"Tax by jurisdiction: no payment or refund in {currency}."),)
        money = ("taxable", "tax", "refunded_taxable", "refunded_tax", "net_taxable",
                 "net_tax")
        summed = ("tax", "refunded_tax", "net_tax")
        total = {n: sum((getattr(f, n) for _, f in rows), Decimal(0)) for n in summed}
        return (Table(
            f"{currency} tax by jurisdiction: per month, tax table, rate and customer country",
            ("month", "tax table", "rate", "country", *(n.replace("_", " ") for n in money)),
            tuple((k.month, k.table, k.rate_text, k.country,
                   *(Money(getattr(f, n), currency) for n in money)) for k, f in rows),
            numeric=tuple(n.replace("_", " ") for n in money),
            footer=(("total", None, None, None,
                     *(Money(total[n], currency) if n in total else None for n in money)),),
            note="Cash basis, calendar months in UTC; a refund reduces the month it is made "
                 "in. Taxable is tax-exclusive; with two tax tables a payment is in the base "
                 "of both. The net tax of every row together is the tax collected.",
            unit=currency),)


#: The accrual table's columns: the JSON's field names.
ACCRUAL_COLUMNS = ("month", "paid", "refunded", "recognised", "deferred", "receivable",
                   "unbilled")
#: The MRR movements table's columns (the JSON's field names) and headings: the bridge
#: reads left to right.
MOVEMENT_COLUMNS = (("month", "month"), ("opening", "opening"), ("new", "+ new"),
                    ("reactivated", "+ reactivated"), ("expansion", "+ expansion"),
                    ("contraction", "− contraction"), ("churned", "− churned"),
                    ("closing", "= closing"))
_MOVES = (("new", 1), ("reactivated", 1), ("expansion", 1), ("contraction", -1),
          ("churned", -1))


def _tie_out(rows: list[tuple[str, Movement]]) -> str:
    """The tie-out, checked: each month and each month's opening against the last."""
    broken = [m for m, mv in rows if not mv.ties_out]
    broken += [m for (_, a), (m, b) in zip(rows, rows[1:], strict=False)
               if a.closing != b.opening]
    if broken:
        return "Does NOT tie out in: " + ", ".join(sorted(set(broken))) + "."
    return ("Every month ties out: opening + new + reactivated + expansion − contraction − "
            "churned = closing, the MRR at month end, and each opening is the month "
            "before's closing. MRR moves between plans cancel in this total.")


DEFAULT_SECTIONS: tuple[SectionBuilder, ...] = (overview_sections, currency_sections)


# -- HTML: writing ---------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2733;
margin:1.5rem auto;max-width:1200px;padding:0 1rem;background:#fbfbfd}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.3rem;margin:2.4rem 0 .4rem;
border-bottom:2px solid #1d2733;padding-bottom:.2rem}
nav a{margin-right:.8rem}
.sub{color:#4b5563;margin:0 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:.8rem 0 1rem}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:.5rem .8rem;
min-width:9rem;max-width:100%}.card b{display:block;font-size:1.2rem;white-space:nowrap}
.card span,.card small{display:block;color:#4b5563;font-size:.8rem}
.card.receivable{border:2px solid #1d2733}
table{border-collapse:separate;border-spacing:0;width:100%;background:#fff;
margin:.4rem 0 .3rem;font-size:13px;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.2rem 0;caption-side:top}
th,td{padding:.28rem .45rem;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef1f5;font-weight:600;position:sticky;top:0;z-index:1;text-align:left;
overflow-wrap:normal;hyphens:auto}
.n{text-align:right}
td.t{overflow-wrap:anywhere}td.t:first-child{white-space:nowrap}
tfoot td{font-weight:600;border-top:2px solid #9aa3ae}
.note{color:#4b5563;font-size:.85rem;margin:.2rem 0 1rem}
figure{margin:.6rem 0 1rem}figcaption{font-weight:600;padding:.2rem 0}
svg{background:#fff;border:1px solid #d5d9e0;border-radius:8px;max-width:100%;height:auto;
display:block}
.axis{stroke:#6b7280;stroke-width:1}.grid{stroke:#e3e6eb;stroke-width:1}
.lbl{fill:#374151;font-size:12px}.end{font-size:12px;font-weight:600}
.line{fill:none;stroke-width:2.4}
@media print{th{position:static}}
"""

# Each series is told apart by dash pattern, marker shape and a direct label, colour only
# adds to that (and the palette is safe for the common colour-vision deficiencies).
_STYLES = (("#1f5fbf", "", "circle"), ("#1b7f4b", "9 4", "square"),
           ("#b8401f", "2 4", "triangle"), ("#6b3fa0", "12 4 2 4", "diamond"),
           ("#7a5c00", "16 4 2 4 2 4", "down"))


class _Format:
    """Cell values as text for one locale (babel, CLDR data)."""

    def __init__(self, locale: Locale):
        self.locale = locale
        self.group = html.escape(str(get_group_symbol(locale)))
        pattern = locale.currency_formats["standard"].pattern
        # the locale's currency pattern without the symbol: "¤ #,##0.00" → "#,##0.00"
        self._bare = ";".join(part.replace("¤", "").strip(" \xa0\u200e\u200f")
                              for part in pattern.split(";"))

    def text(self, value: Cell, bare: bool = False) -> str:
        """``value`` as text; ``bare``: money without its currency symbol."""
        if value is None:
            return "–"
        if isinstance(value, Money):
            amount = value.amount if value.amount else abs(value.amount)  # no "-0.00"
            return str(format_currency(amount, value.currency, locale=self.locale,
                                       format=self._bare if bare else None))
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int | Decimal):
            return str(format_decimal(value, locale=self.locale, decimal_quantization=False))
        return printable(str(value))

    def axis(self, value: Decimal, currency: str, whole: bool) -> str:
        if whole:
            return str(format_decimal(value.quantize(Decimal(1)), locale=self.locale))
        return self.text(Money(value, currency))


def _is_number(value: Cell) -> bool:
    return isinstance(value, int | Decimal | Money) and not isinstance(value, bool)


def _is_zero(value: Cell) -> bool:
    if value is None:
        return True
    if isinstance(value, Money):
        return not value.amount
    return _is_number(value) and not value


def _table_html(table: Table, fmt: _Format) -> str:
    esc = html.escape
    rows = [*table.rows, *table.footer]
    if table.numeric is not None:
        numeric = set(table.numeric)
    else:
        numeric = {name for i, name in enumerate(table.columns)
                   if rows and all(_is_number(r[i]) or r[i] is None for r in rows)
                   and any(_is_number(r[i]) for r in rows)}
    keep = [i for i, name in enumerate(table.columns)
            if not (table.collapse and name in numeric and rows
                    and all(_is_zero(r[i]) for r in rows))]
    hidden = [table.columns[i] for i in range(len(table.columns)) if i not in keep]

    def cells(row: tuple[Cell, ...], tag: str = "td") -> str:
        out = []
        for i in keep:
            text = esc(fmt.text(row[i], bare))
            if table.columns[i] in numeric:
                # a very long figure may break after a group mark, never elsewhere
                out.append(f'<{tag} class="n">{text.replace(fmt.group, fmt.group + "<wbr>")}'
                           f"</{tag}>")
            else:
                out.append(f'<{tag} class="t">{text}</{tag}>')
        return "<tr>" + "".join(out) + "</tr>"

    unit = table.unit
    bare = unit is not None and all(v.currency == unit for r in rows for v in r
                                    if isinstance(v, Money))
    title = table.title + (f" ({unit})" if bare else "")
    out = ["<table>", f"<caption>{esc(printable(title))}</caption>", "<thead><tr>"]
    out += [f'<th scope="col" class="{"n" if table.columns[i] in numeric else "t"}">'
            f"{esc(printable(table.columns[i]))}</th>" for i in keep]
    out.append("</tr></thead>")
    out.append("<tbody>")
    out += [cells(r) for r in table.rows]
    if not table.rows:
        out.append(f'<tr><td class="t" colspan="{len(keep)}">none</td></tr>')
    out.append("</tbody>")
    if table.footer:
        out += ["<tfoot>", *(cells(r) for r in table.footer), "</tfoot>"]
    out.append("</table>")
    notes = [table.note] if table.note else []
    if hidden:
        notes.append("Zero throughout, not shown: " + ", ".join(hidden) + ".")
    if notes:
        out.append(f'<p class="note">{esc(printable(" ".join(notes)))}</p>')
    return "\n".join(out)


def _cards_html(cards: Cards, fmt: _Format) -> str:
    esc = html.escape
    out = ['<div class="cards">']
    for card in cards.cards:
        key = f" {card.key}" if card.key else ""
        parts = (card.note,) if isinstance(card.note, str) else card.note
        text = "".join(fmt.text(p) for p in parts)
        note = f"<small>{esc(text)}</small>" if text else ""
        out.append(f'<div class="card{key}"><span>{esc(printable(card.label))}</span>'
                   f"<b>{esc(fmt.text(card.value))}</b>{note}</div>")
    out.append("</div>")
    return "\n".join(out)


def _marker(shape: str, x: float, y: float, colour: str, title: str) -> str:
    tip = f"<title>{html.escape(title)}</title>"
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{tip}</circle>'
    if shape == "square":
        return (f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
                f'fill="{colour}">{tip}</rect>')
    if shape == "triangle":
        d = f"M{x:.1f},{y - 4.5:.1f}L{x + 4.5:.1f},{y + 3.5:.1f}L{x - 4.5:.1f},{y + 3.5:.1f}Z"
    elif shape == "down":
        d = f"M{x:.1f},{y + 4.5:.1f}L{x + 4.5:.1f},{y - 3.5:.1f}L{x - 4.5:.1f},{y - 3.5:.1f}Z"
    else:
        d = f"M{x:.1f},{y - 5:.1f}L{x + 5:.1f},{y:.1f}L{x:.1f},{y + 5:.1f}L{x - 5:.1f},{y:.1f}Z"
    return f'<path d="{d}" fill="{colour}">{tip}</path>'


def _chart_html(chart: Chart, fmt: _Format) -> str:
    """An inline SVG line chart; each line has its own dash pattern, marker shape and a
    label with its last value at its end, so no line needs its colour to be told."""
    esc = html.escape
    ends = {s.key: f"{s.label} {fmt.text(Money(s.values[-1], chart.currency))}"
            for s in chart.series if s.values}
    values = [v for s in chart.series for v in s.values]
    high = max([*values, Decimal(0)])
    low = min([*values, Decimal(0)])
    top_value = _nice(high) if high > 0 else Decimal(1)
    bottom_value = Decimal(0)
    steps = 4
    ticks = [top_value * k / steps for k in range(steps + 1)]
    if low < 0:  # lines below zero (losses): tidy steps on both sides, one at zero
        step = _nice((high - low) / steps)
        below = int((-low / step).to_integral_value(rounding=ROUND_CEILING))
        above = max(1, int((high / step).to_integral_value(rounding=ROUND_CEILING)))
        bottom_value, top_value = -below * step, above * step
        ticks = [step * k for k in range(-below, above + 1)]
    span = top_value - bottom_value
    count = len(chart.categories)
    axis = [fmt.axis(v, chart.currency, top_value >= 100) for v in ticks]
    # room for the longest axis label on the left and direct label on the right (about
    # 7.5 px a character at 12 px)
    left = max(60, 20 + int(7.5 * max(len(t) for t in axis)))
    right = max(120, 24 + int(7.5 * max((len(t) for t in ends.values()), default=0)))
    top, bottom, plot_w, plot_h = 24, 70, 716, 236
    width, height = left + plot_w + right, top + plot_h + bottom

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / count if count else 0)

    def y(value: Decimal) -> float:
        return top + plot_h * float((top_value - value) / span)

    title = printable(chart.title)
    out = ['<figure class="chart">', f"<figcaption>{esc(title)}</figcaption>",
           (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'),
           f"<title>{esc(title)}</title>"]
    for value, label in zip(ticks, axis, strict=True):
        yy = y(value)
        out.append(f'<line class="grid" x1="{left}" y1="{yy:.1f}" x2="{width - right}" '
                   f'y2="{yy:.1f}"/>')
        out.append(f'<text class="lbl" x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">'
                   f"{esc(label)}</text>")
    out.append(f'<text class="lbl" x="{left - 8}" y="{top - 10}" text-anchor="end">'
               f"{esc(printable(chart.currency))}</text>")
    zero = y(Decimal(0))
    out.append(f'<line class="axis" x1="{left}" y1="{zero:.1f}" x2="{width - right}" '
               f'y2="{zero:.1f}"/>')
    every = max(1, (count + 11) // 12)
    for i, month in enumerate(chart.categories):
        if i % every == 0:
            out.append(f'<text class="lbl" x="{x(i):.1f}" y="{height - bottom + 18}" '
                       f'text-anchor="middle">{esc(printable(month))}</text>')
    labels: list[tuple[float, str, str]] = []
    for n, series in enumerate(chart.series):
        colour, dash, shape = _STYLES[n % len(_STYLES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        points = [(x(i), y(v)) for i, v in enumerate(series.values)]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            out.append(f'<polyline class="line {esc(series.key)}" points="{path}" '
                       f'stroke="{colour}"{dashed}/>')
        for (px, py), month, v in zip(points, chart.categories, series.values, strict=True):
            out.append(_marker(shape, px, py, colour,
                               f"{month} {series.label}: {fmt.text(Money(v, chart.currency))}"))
        if points:
            labels.append((points[-1][1], colour, ends[series.key]))
    # direct labels at the lines' ends, pushed apart so they never overlap
    placed: list[float] = []
    for yy, colour, text in sorted(labels, key=lambda e: e[0]):
        yy = max(yy, placed[-1] + 15) if placed else yy
        placed.append(yy)
        out.append(f'<text class="end" x="{width - right + 12}" y="{yy + 4:.1f}" '
                   f'fill="{colour}">{esc(printable(text))}</text>')
    lx = left
    for n, series in enumerate(chart.series):
        colour, dash, shape = _STYLES[n % len(_STYLES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        ly = height - 16
        out.append(f'<line class="line" x1="{lx}" y1="{ly}" x2="{lx + 34}" y2="{ly}" '
                   f'stroke="{colour}"{dashed}/>')
        out.append(_marker(shape, lx + 17, ly, colour, series.label))
        out.append(f'<text class="lbl" x="{lx + 42}" y="{ly + 4}">'
                   f"{esc(printable(series.label))}</text>")
        lx += 170
    out += ["</svg>", "</figure>"]
    return "\n".join(out)


def _block_html(block: Block, fmt: _Format) -> str:
    if isinstance(block, Cards):
        return _cards_html(block, fmt)
    if isinstance(block, Table):
        return _table_html(block, fmt)
    if isinstance(block, Chart):
        return _chart_html(block, fmt)
    return f'<p class="note">{html.escape(printable(block.text))}</p>'


@in_context
def render_page(title: str, facts: Iterable[str], sections: Iterable[Section],
                locale: str | Locale = "en", footer: str = "") -> str:
    """A self-contained HTML page (inline CSS and SVG, no script, no external asset)
    of ``sections``, amounts formatted for ``locale``."""
    chosen = locale if isinstance(locale, Locale) else parse_locale(locale)
    fmt = _Format(chosen)
    esc = html.escape
    done = list(sections)
    lang = str(chosen).replace("_", "-")
    parts = ["<!DOCTYPE html>", f'<html lang="{esc(lang)}">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(printable(title))}</title>", f"<style>{_CSS}</style>", "</head>",
             "<body>", f"<h1>{esc(printable(title))}</h1>",
             f'<p class="sub">{esc(printable(" · ".join(facts)))}</p>']
    if len(done) > 1:
        parts.append("<nav>" + "".join(f'<a href="#{esc(s.id)}">{esc(printable(s.title))}</a>'
                                       for s in done) + "</nav>")
    for section in done:
        parts.append(f'<section id="{esc(section.id)}">')
        parts.append(f"<h2>{esc(printable(section.title))}</h2>")
        parts.extend(_block_html(b, fmt) for b in section.blocks)
        parts.append("</section>")
    if footer:
        parts.append(f'<p class="note">{esc(printable(footer))}</p>')
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts) + "\n"


@in_context
def render_html(ledger: Ledger, ruleset: Ruleset | None = None,
                outcomes: Iterable[Outcome] | Summary | None = None,
                title: str | None = None, *, locale: str | Locale = "en", fx: Rates | None = None,
                receivable: Callable[[Ledger, str], Decimal] | None = None,
                sections: Iterable[SectionBuilder] = DEFAULT_SECTIONS,
                accrual: Accrual | None = None, taxes: Taxes | None = None) -> str:
    """The ledger as a self-contained HTML page (inline CSS and SVG, no script, no
    external asset): all currencies side by side (consolidated with explicit ``fx``
    rates), then per currency the headline and receivables cards, a chart of gross
    sales, net revenue and refunds, the monthly tables, the accrual chart and table,
    the MRR movements chart and table and the tax by jurisdiction table. Amounts are
    formatted for ``locale`` (``"de_CH"`` → ``CHF 1'234.50``). The accrual and tax
    views are ``accrual`` and ``taxes`` when given (a streamed replay folds them beside
    the ledger), else folded from ``outcomes`` with ``ruleset`` (not from a
    :class:`Summary`). ``receivable`` gives the receivables card its figure (default:
    the accrual view's, :func:`accrual_receivable`, else :func:`ledger_receivable`);
    ``sections`` are the section builders, in page order."""
    kept = tuple(outcomes) if outcomes is not None and not isinstance(outcomes, Summary) \
        else None
    done = _summary(kept if kept is not None else outcomes)
    if fx is not None and (missing := fx.missing(ledger.currencies())):
        raise ValueError(f"no exchange rate for {', '.join(missing)}")
    if ruleset is not None and kept is not None:
        accrual = accrual if accrual is not None else Accrual.from_outcomes(kept, ruleset)
        taxes = taxes if taxes is not None else Taxes.from_outcomes(kept, ruleset)
    data = ReportInput(ledger, ruleset, done, fx, receivable or (
        accrual_receivable(accrual) if accrual is not None else ledger_receivable),
        accrual, movements(ledger), taxes)
    name = title or (f"Revenue — {ruleset.name}" if ruleset is not None else "Revenue")
    facts = []
    if ruleset is not None:
        facts.append(f"ruleset {ruleset.name}" + (f" version {ruleset.version}"
                                                   if ruleset.version else ""))
    if done is not None:
        facts.append(f"{done.events} events, {done.failed} failed")
    facts.append("cash basis unless a table says accrual basis, tax-exclusive figures, "
                 "calendar months in UTC")
    built = [s for builder in sections for s in builder(data)]
    if not built:
        built = [Section("empty", "No revenue", (Note("No revenue in this log."),))]
    return render_page(name, facts, built, locale, footer=(
        "Net revenue = gross − discounts − refunds − credits; proceeds = net − commission. "
        "Active, trialing, MRR and receivable are counted at month end; the total row "
        "shows them at the end of the last month. Receivable is what is decided but not "
        "paid (tax-exclusive); unbilled, the part of it for service already delivered. "
        "Accrual basis: each paid charge is recognised by day over its service period; "
        "deferred is paid and not yet recognised. MRR movements: opening + new + "
        "reactivated + expansion − contraction − churned = closing."))


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


# -- notebooks: HTML fragments ---------------------------------------------------------

_FRAGMENT_CSS = (".revrules table{border-collapse:collapse;margin:.3rem 0 .8rem;"
                 "font-variant-numeric:tabular-nums}.revrules caption{text-align:left;"
                 "font-weight:600}.revrules th,.revrules td{padding:.2rem .5rem;"
                 "border-bottom:1px solid #ddd}.revrules .n{text-align:right;"
                 "white-space:nowrap}.revrules .t{text-align:left}"
                 ".revrules .note{font-size:.85em;color:#555}")


@in_context
def render_fragment(blocks: Iterable[Block], locale: str | Locale = "en") -> str:
    """Blocks as an HTML fragment (a ``<div>`` with its own small style), what a
    notebook shows for ``_repr_html_``."""
    fmt = _Format(locale if isinstance(locale, Locale) else parse_locale(locale))
    return ('<div class="revrules">' + f"<style>{_FRAGMENT_CSS}</style>"
            + "\n".join(_block_html(b, fmt) for b in blocks) + "</div>")


@in_context
def ledger_html(ledger: Ledger) -> str:
    """:meth:`Ledger._repr_html_`: the totals per currency and the figures by month."""
    totals = ledger.totals()
    if not totals:
        return render_fragment([Note("Ledger: no revenue")])
    names = ("payments", "gross", "discounts", "refunds", "net", "tax", "proceeds", "mrr",
             "outstanding", "active", "churned")
    heads = tuple(_LABELS[n] for n in names)
    return render_fragment([
        Table("Ledger totals per currency", ("currency", *heads),
              tuple((c, *(_value(t, n, c) for n in names)) for c, t in totals.items()),
              collapse=False),
        Table("By month", ("currency", "month", *heads),
              tuple((c, m, *(_value(f, n, c) for n in names))
                    for (c, m), f in ledger.by_month().items()), collapse=False)])


def _signed_money(amount: Decimal, currency: str | None) -> Cell:
    return Money(amount, currency) if currency else amount


@in_context
def diff_html(d: Diff) -> str:
    """:meth:`Diff._repr_html_`: per currency the totals that moved (old, new, change),
    and the subscriptions charged differently with the rules that explain it."""
    blocks: list[Block] = []
    rows: list[tuple[Cell, ...]] = []
    for currency, (old, new) in d.totals.items():
        for name in FIELDS:
            a, b = old.get(name), new.get(name)
            if a != b:
                money = name in MONEY_FIELDS
                rows.append((currency, _LABELS[name],
                             Money(Decimal(a), currency) if money else a,
                             Money(Decimal(b), currency) if money else b,
                             Money(Decimal(b - a), currency) if money else b - a))
    label = f"{d.old.ruleset.name} → {d.new.ruleset.name}, {d.old.summary.events} events"
    if not d.changed:
        return render_fragment([Note(f"What-if {label}: no figure and no charge changed")])
    blocks.append(Table(f"What-if {label}: totals that moved",
                        ("currency", "figure", "old", "new", "change"), tuple(rows),
                        numeric=("old", "new", "change"), collapse=False))
    blocks.append(Table(
        "Subscriptions charged differently",
        ("subscription", "currency", "charged (old)", "charged (new)", "change", "rules"),
        tuple((s.subscription, s.currency, _signed_money(s.old_charged, s.currency),
               _signed_money(s.new_charged, s.currency),
               _signed_money(s.new_charged - s.old_charged, s.currency),
               ", ".join(s.rules)) for s in d.subscriptions),
        numeric=("charged (old)", "charged (new)", "change"), collapse=False))
    if d.outcomes:
        blocks.append(Table("Events that applied under one ruleset only",
                            ("event", "old", "new"),
                            tuple((e, "ok" if a else "failed", "ok" if b else "failed")
                                  for e, a, b in d.outcomes), collapse=False))
    return render_fragment(blocks)


def _share(rate: Decimal | None) -> Cell:
    return None if rate is None else f"{(rate * 100).quantize(Decimal('0.1'))} %"


@in_context
def growth_html(g: Growth, cycles: int = 12) -> str:
    """:meth:`Growth._repr_html_`: conversion, price points, retention by month and by
    charges (up to ``cycles`` columns) and revenue per promotion."""
    rate_columns = ("started", "trials", "converted", "trial → paid", "first paid",
                    "first charge", "refunded")
    months = min(cycles, max((len(r.retained) for r in g.retention), default=0))
    month_columns = tuple(f"M{n}" for n in range(months))
    width = min(cycles, max((len(c.retained) for c in g.cohorts), default=0))
    share_columns = tuple(f"N={n}" for n in range(1, width + 1))
    return render_fragment([
        Table("Conversion", ("by", "value", *rate_columns),
              tuple((c.dimension, c.value, c.started, c.trials, c.trials_converted,
                     _share(c.trial_conversion), c.first_charges,
                     _share(c.first_charge_conversion), c.refunded) for c in g.conversions),
              numeric=rate_columns, collapse=False),
        Table("Price points: plan@storefront#N is the plan's N-th price line there",
              ("price point", "list price", "in force"),
              tuple((p.id, Money(p.list, p.currency) if p.list is not None else None,
                     "contract" if p.contract else
                     (f"from {p.effective}" if p.effective else "from the start"))
                    for p in g.price_points), numeric=("list price",), collapse=False),
        Table("Retention by month: share of each cohort paying and not churned at the end "
              "of month N", ("by", "value", "cohort", "size", *month_columns),
              tuple((r.dimension, r.value, r.month, r.size,
                     *(_share(r.share(n)) if n < len(r.retained) else None
                       for n in range(months))) for r in g.retention),
              numeric=("size", *month_columns), collapse=False),
        Table("Retention by charges: share of each cohort that paid at least N charges",
              ("plan", "cohort", "size", *share_columns),
              tuple((c.plan, c.month, c.size, *(_share(c.share(n)) if n <= len(c.retained)
                                                else None for n in range(1, width + 1)))
                    for c in g.cohorts), numeric=("size", *share_columns), collapse=False),
        Table("Promotions: redemptions, and what the redeeming subscriptions paid since",
              ("promotion", "currency", "redeemed", "payments", "gross", "given away", "net"),
              tuple((p.promotion, p.currency, p.redemptions, p.payments,
                     Money(p.gross, p.currency), Money(p.discounts, p.currency),
                     Money(p.net, p.currency)) for p in g.promotions), collapse=False)])
