"""The HTML report without a browser: locale, exchange rates, the receivables card,
tables that fit (columns collapsed, numbers right-aligned, sticky headers), charts told
apart without colour, pluggable sections, and the command's options."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_currency, get_group_symbol, parse_decimal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Ledger, wire
from revrules.accrual import Accrual
from revrules.cli import main
from revrules.generator import generate
from revrules.reports import (
    DEFAULT_SECTIONS,
    Chart,
    Money,
    Note,
    ReportInput,
    Section,
    Series,
    Table,
    currency_sections,
    parse_fx,
    parse_locale,
    render_html,
    render_json,
    render_page,
    replay,
)
from revrules.movements import Movement, Movements, movements
from revrules.results import RevenueEvent
from revrules.taxes import Taxes

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
D = Decimal


def paid(n: int, currency: str, gross: str, month: int = 1, storefront: str = "web",
         kind: str = "payment.succeeded") -> RevenueEvent:
    return RevenueEvent(f"e{n}", kind, dt.datetime(2027, month, 5, tzinfo=dt.UTC), f"s{n}",
                        f"c{n}", storefront, "web", "monthly", currency, gross=D(gross),
                        net=D(gross), amount=D(gross))


@cache
def demo() -> tuple[revrules.Ruleset, Ledger]:
    rules = revrules.load(STREAMING)
    return rules, replay(rules, generate(rules, 40, 10, seed=7)).ledger


class Page(HTMLParser):
    """Text per element, attributes per tag, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.open: list[int] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), []))
        if tag not in ("line", "rect", "circle", "path", "polyline", "meta"):
            self.open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if not any(self.elements[i][0] == tag for i in self.open):
            return  # the end of an element never opened (a marker's </circle>)
        while self.open and self.elements[self.open[-1]][0] != tag:
            self.open.pop()
        if self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for i in self.open:
            self.elements[i][2].append(data)

    def all(self, tag: str, cls: str | None = None) -> Iterator[tuple[dict[str, str | None], str]]:
        for t, a, words in self.elements:
            if t == tag and (cls is None or cls in (a.get("class") or "").split()):
                yield a, "".join(words)


def parsed(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def tables_of(page: Page) -> dict[str, list[list[str]]]:
    """Every table by its caption: the heading row, then the body and footer rows."""
    tables: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for tag, _, words in page.elements:
        if tag == "caption":
            current = tables.setdefault("".join(words).strip(), [])
        elif tag == "tr" and current is not None:
            current.append([])
        elif tag in ("td", "th") and current is not None:
            current[-1].append("".join(words).strip())
    return tables


def check_revenue_views(tables: dict[str, list[list[str]]], data: dict[str, Any],
                        number: Callable[[str], Decimal]) -> int:
    """Every figure of the accrual, MRR movements and tax tables as the page shows them
    equals the JSON of ``replay --basis accrual --movements --tax --format json``; a
    column left out is zero in every row of the JSON. Returns the figures compared."""
    checked = 0

    def same(heads: list[str], names: dict[str, str], row: list[str],
             want: dict[str, Any]) -> None:
        nonlocal checked
        for head, cell in zip(heads, row, strict=True):
            if names.get(head, head) in ("month", "table", "rate", "country"):
                assert cell == want[names.get(head, head)], (head, cell, want)
            else:
                assert number(cell) == Decimal(str(want[names.get(head, head)])), \
                    (head, cell, want)
                checked += 1

    def hidden_are_zero(heads: list[str], names: dict[str, str], fields: tuple[str, ...],
                        rows: list[dict[str, Any]]) -> None:
        shown = {names.get(h, h) for h in heads}
        for field in set(fields) - shown:
            assert all(Decimal(str(r[field])) == 0 for r in rows), field

    accrual = ("paid", "refunded", "recognised", "deferred", "receivable", "unbilled")
    for currency, total in data["totals"].items():
        months = [m for m in data["months"] if m["currency"] == currency]
        heads, *body = tables[f"{currency} accrual basis: recognised revenue by month "
                              f"({currency})"]
        assert [r[0] for r in body] == [m["month"] for m in months] + ["total"]
        for row, want in zip(body, [*months, total], strict=True):
            same(heads[1:], {}, row[1:], want)
        hidden_are_zero(heads, {}, accrual, [*months, total])
    signs = {h: h.lstrip("+−= ") for h in ("opening", "+ new", "+ reactivated", "+ expansion",
                                           "− contraction", "− churned", "= closing")}
    moves = data["movements"]["total"]
    fields = ("opening", "new", "reactivated", "expansion", "contraction", "churned",
              "closing")
    for currency in sorted({m["currency"] for m in moves}):
        months = [m for m in moves if m["currency"] == currency]
        heads, *body = tables[f"{currency} MRR movements by month ({currency})"]
        assert heads[0] == "month" and [r[0] for r in body] == [m["month"] for m in months] \
            + ["over the log"]
        for row, want in zip(body[:-1], months, strict=True):
            same(heads, signs, row, want)
        over = {n: sum((Decimal(m[n]) for m in months), Decimal(0)) for n in fields}
        over.update(month="over the log", opening=months[0]["opening"],
                    closing=months[-1]["closing"])
        same(heads, signs, body[-1], over)
        hidden_are_zero(heads, signs, fields, months)
    names = {"tax table": "table", "refunded taxable": "refunded_taxable",
             "refunded tax": "refunded_tax", "net taxable": "net_taxable",
             "net tax": "net_tax"}
    taxes = data["tax"]["rows"]
    money = ("taxable", "tax", "refunded_taxable", "refunded_tax", "net_taxable", "net_tax")
    for currency in sorted({r["currency"] for r in taxes}):
        rows = [r for r in taxes if r["currency"] == currency]
        heads, *body = tables[f"{currency} tax by jurisdiction: per month, tax table, rate "
                              f"and customer country ({currency})"]
        assert heads[:4] == ["month", "tax table", "rate", "country"]
        for row, want in zip(body[:-1], rows, strict=True):
            same(heads, names, row, want)
        assert len(body) == len(rows) + 1 and body[-1][0] == "total"
        for head, cell in zip(heads[4:], body[-1][4:], strict=True):
            if names.get(head, head) in ("tax", "refunded_tax", "net_tax"):
                field = names.get(head, head)
                assert number(cell) == sum((Decimal(r[field]) for r in rows), Decimal(0))
            else:
                assert cell == "–"
        hidden_are_zero(heads, names, money, rows)
    return checked


# -- locale ------------------------------------------------------------------------------


def test_amounts_are_formatted_for_the_readers_locale() -> None:
    ledger = Ledger.fold([paid(1, "CHF", "1234.50")])
    group = get_group_symbol("de_CH")
    assert group in ("'", "’")  # CLDR's mark for Swiss German (’ before CLDR 42)
    swiss = parsed(render_html(ledger, locale="de_CH"))
    assert f"CHF\xa01{group}234.50" in " ".join(swiss.text)
    assert next(a for a, _ in swiss.all("html"))["lang"] == "de-CH"
    english = parsed(render_html(ledger))
    assert "CHF1,234.50" in " ".join(english.text)  # en: no symbol for CHF, the code
    usd = " ".join(parsed(render_html(Ledger.fold([paid(1, "USD", "1234.5")]))).text)
    assert "$1,234.50" in usd
    french = " ".join(parsed(render_html(Ledger.fold([paid(1, "EUR", "1234.5")]),
                                         locale="fr_FR")).text)
    assert "1\u202f234,50\xa0€" in french
    yen = " ".join(parsed(render_html(Ledger.fold([paid(1, "JPY", "1200")]))).text)
    assert "¥1,200" in yen and "¥1,200.00" not in yen


def test_a_locale_is_checked() -> None:
    assert str(parse_locale("de-CH")) == "de_CH"
    with pytest.raises(ValueError, match="unknown locale 'xx_YY'"):
        parse_locale("xx_YY")
    with pytest.raises(ValueError, match="unknown locale 'xxxx.*…'"):
        parse_locale("x" * 300)


def test_negative_zero_never_shows_a_sign() -> None:
    ledger = Ledger.fold([paid(1, "EUR", "5.00"), paid(2, "EUR", "5.00", kind="payment.refunded")])
    text = " ".join(parsed(render_html(ledger)).text)
    assert "-€0.00" not in text and "€0.00" in text


# -- exchange rates and the consolidated view --------------------------------------------


def test_fx_rates_are_parsed_strictly() -> None:
    fx = parse_fx("EUR=1, USD=0.92,JPY=0.0061")
    assert fx.base == "EUR" and fx.rates == {"EUR": 1, "USD": D("0.92"), "JPY": D("0.0061")}
    assert fx.convert(D("13.99"), "USD") == D("12.87")  # 12.8708, rounded once, half even
    assert fx.convert(D("1200"), "JPY") == D("7.32")
    for text, message in [("EUR", "CUR=RATE"), ("EUR=1,EUR=1", "given twice"),
                          ("USD=0.92,EUR=1", "must be given 1"), ("EUR=1,USD=-1", "positive"),
                          ("EUR=1,USD=x", "not a number"), ("EUR=1,XXY=2", "ISO 4217"),
                          ("EUR=1,USD=NaN", "positive"), ("eur=1", "ISO 4217"),
                          ("EUR=1,USD=1e999999999", "between 1e-12 and 1e12"),
                          ("EUR=1,USD=" + "9" * 30, "at most 20 digits"), ("", "CUR=RATE")]:
        with pytest.raises(ValueError, match=message):
            parse_fx(text)


def test_without_rates_currencies_stand_side_by_side() -> None:
    ledger = Ledger.fold([paid(1, "EUR", "10.00"), paid(2, "USD", "20.00")])
    page = parsed(render_html(ledger))
    (overview,) = [t for a, t in page.all("section") if "All currencies" in t]
    assert "Currencies are not added together" in overview
    assert "€10.00" in overview and "$20.00" in overview and "€30.00" not in overview


def test_with_rates_a_consolidated_view_in_the_reporting_currency() -> None:
    ledger = Ledger.fold([paid(1, "EUR", "10.00"), paid(2, "USD", "13.99"),
                          paid(3, "JPY", "1200", month=2)])
    html = render_html(ledger, fx=parse_fx("EUR=1,USD=0.92,JPY=0.0061"))
    page = parsed(html)
    captions = [t.strip() for _, t in page.all("caption")]
    assert "Consolidated at the given rates (EUR)" in captions
    rows = [t for _, t in page.all("tr")]
    # total: 10.00 + 12.87 (13.99 × 0.92) + 7.32 (1200 × 0.0061)
    assert "total–30.19" in [r[:11] for r in rows]  # net: no rate (–), then €30.19
    by_month = [r for r in rows if r.startswith("2027-")]
    assert "€22.87" in by_month[0] and "€7.32" in by_month[1]
    assert "1 USD = 0.92 EUR" in " ".join(page.text)
    with pytest.raises(ValueError, match="no exchange rate for JPY, USD"):
        render_html(ledger, fx=parse_fx("EUR=1"))


# -- tables ------------------------------------------------------------------------------


def test_tables_right_align_numbers_collapse_empty_columns_and_have_sticky_headers() -> None:
    rules, ledger = demo()
    html = render_html(ledger, rules)
    page = parsed(html)
    assert "position:sticky" in html and "thead" in html
    for a, text in page.all("td"):
        looks_numeric = bool(re.fullmatch(r"-?[€$¥]?-?[\d,]+(\.\d+)?", text))
        if looks_numeric:
            assert a.get("class") == "n", text
    collapsed = 0
    for chunk in html.split("<table>")[1:]:
        part = parsed("<table>" + chunk.split("</table>")[0] + "</table>"
                      + chunk.split("</table>")[1].split("<table>")[0])
        heads = [t for _, t in part.all("th")]
        for _, note in part.all("p", "note"):
            if "not shown" in note:
                hidden = note.split("not shown: ", 1)[1].rstrip(".").split(", ")
                assert hidden and not set(hidden) & set(heads), (hidden, heads)
                collapsed += 1
    assert collapsed, "some column is zero throughout in this log"
    # no table of the page has more than 13 columns (the old one had 17)
    widths = [len(re.findall("<th ", t)) for t in html.split("<table>")[1:]]
    assert max(widths) <= 13 and min(widths) >= 3


def test_a_table_of_plain_data() -> None:
    table = Table("Tax by country", ("country", "rate", "tax", "count"),
                  ((("DE", D("0.19"), Money(D("19.00"), "EUR"), 3)),
                   ("FR", D("0.2"), Money(D("0"), "EUR"), 0)),
                  footer=(("total", None, Money(D("19.00"), "EUR"), 3),))
    html = render_page("t", [], [Section("tax", "Tax", (table,))], "de_CH")
    page = parsed(html)
    cells = [(a.get("class"), t) for a, t in page.all("td")]
    assert cells[:4] == [("t", "DE"), ("n", "0.19"), ("n", "EUR\xa019.00"), ("n", "3")]
    assert ("n", "–") in cells  # nothing: a dash
    assert [t for _, t in page.all("th")] == ["country", "rate", "tax", "count"]


# -- the receivables card ------------------------------------------------------------


def test_the_receivables_card_shows_what_is_owed_at_the_end() -> None:
    rules, ledger = demo()
    page = parsed(render_html(ledger, rules))
    cards = [t for _, t in page.all("div", "receivable")]
    assert len(cards) == len(ledger.totals())
    for card, (currency, total) in zip(cards, ledger.totals().items(), strict=True):
        assert card.startswith("receivable at the end")
        written_off = format_currency(total.written_off, currency, locale="en")
        assert card.endswith(f"open charges, tax excl.; {written_off} written off")
    # the figure comes from a function: an accrual view can give its own
    own = parsed(render_html(ledger, rules, receivable=lambda _, c: D("42.00")))
    assert [t.split("end")[1].split("open")[0] for _, t in own.all("div", "receivable")] == [
        "€42.00", "¥42", "$42.00"]


def test_the_receivables_card_takes_the_accrual_views_receivable_and_unbilled() -> None:
    rules = demo()[0]
    done = replay(rules, generate(rules, 60, 14, seed=7))
    accrual = Accrual.from_outcomes(done.outcomes, rules).totals()
    page = parsed(render_html(done.ledger, rules, done.outcomes))
    cards = [t for _, t in page.all("div", "receivable")]
    assert len(cards) == len(accrual) == 3
    assert any(t.unbilled for t in accrual.values())  # the log has some
    for card, (currency, total) in zip(cards, accrual.items(), strict=True):
        owed = format_currency(total.receivable, currency, locale="en")
        unbilled = format_currency(total.unbilled, currency, locale="en")
        written_off = format_currency(done.ledger.totals()[currency].written_off, currency,
                                      locale="en")
        assert card == (f"receivable at the end{owed}open charges, tax excl.; {unbilled} "
                        f"unbilled; {written_off} written off")
        # the same charges as the cash ledger's outstanding
        assert total.receivable == done.ledger.totals()[currency].outstanding


# -- the revenue views ---------------------------------------------------------------


def revenue_json(done: Any, rules: revrules.Ruleset) -> dict[str, Any]:
    """What ``replay --basis accrual --movements --tax --format json`` prints."""
    data: dict[str, Any] = json.loads(Accrual.from_outcomes(done.outcomes, rules).to_json())
    data["movements"] = movements(done.ledger).to_wire()
    data["tax"] = Taxes.from_outcomes(done.outcomes, rules).to_wire()
    return json.loads(wire.dumps(data))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), customers=st.integers(1, 12), months=st.integers(1, 14),
       locale=st.sampled_from(["en", "de_CH", "fr_FR", "ja_JP"]))
def test_the_revenue_views_on_the_page_are_the_json_reports(seed: int, customers: int,
                                                            months: int, locale: str) -> None:
    rules = demo()[0]
    done = replay(rules, generate(rules, customers, months, seed=seed))
    data = revenue_json(done, rules)
    page = parsed(render_html(done.ledger, rules, done.outcomes, locale=locale))
    checked = check_revenue_views(tables_of(page), data, lambda t: _number(t, locale))
    assert checked or not data["totals"]


def test_the_revenue_views_per_currency_section() -> None:
    rules = demo()[0]
    done = replay(rules, generate(rules, 60, 14, seed=7))
    html = render_html(done.ledger, rules, done.outcomes)
    page = parsed(html)
    sections = {a.get("id"): t for a, t in page.all("section")}
    assert list(sections) == ["all-currencies", "EUR", "JPY", "USD"]
    data = revenue_json(done, rules)
    assert check_revenue_views(tables_of(page), data, lambda t: _number(t, "en")) > 1000
    for currency in ("EUR", "JPY", "USD"):
        text = sections[currency]
        for title in ("recognised revenue by month and deferred revenue at month end "
                      "(accrual basis)", "MRR movements by month", "tax by jurisdiction"):
            assert f"{currency}: {title}" in text or f"{currency} {title}" in text, title
        assert "Every month ties out" in text and "NOT" not in text
    # 3 charts per currency, each told apart without colour; at most 13 columns a table
    assert len(list(page.all("svg"))) == 9
    assert max(len(re.findall("<th ", t)) for t in html.split("<table>")[1:]) <= 13
    # EUR, an example: what March 2026 shows
    eur = tables_of(page)["EUR accrual basis: recognised revenue by month (EUR)"]
    march = next(r for r in eur if r[0] == "2026-03")
    want = next(m for m in data["months"] if m["month"] == "2026-03" and m["currency"] == "EUR")
    assert march[eur[0].index("recognised")] == want["recognised"]  # bare: EUR in the caption
    assert march[eur[0].index("deferred")] == want["deferred"]


def test_the_html_page_is_the_same_whatever_the_text_views_asked(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The page always carries the revenue views; its figures are the JSON's."""
    events = generate(revrules.load(STREAMING), 30, 8, seed=3)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(wire.dumps(e) + "\n" for e in events), "utf-8")
    plain, views = tmp_path / "plain.html", tmp_path / "views.html"
    assert main(["replay", str(STREAMING), str(log), "--html", str(plain)]) == 0
    capsys.readouterr()
    assert main(["replay", str(STREAMING), str(log), "--basis", "accrual", "--movements",
                 "--tax", "--format", "json", "--html", str(views)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert plain.read_bytes() == views.read_bytes()
    # the views the command folds beside the streamed ledger are those of the outcomes
    rules = revrules.load(STREAMING)
    done = replay(rules, events)
    assert render_html(done.ledger, rules, done.outcomes).encode() == plain.read_bytes()
    page = parsed(views.read_text("utf-8"))
    assert check_revenue_views(tables_of(page), data, lambda t: _number(t, "en")) > 100
    cards = [t for _, t in page.all("div", "receivable")]
    for card, (currency, total) in zip(cards, data["totals"].items(), strict=True):
        assert _number(card.split("end", 1)[1].split("open")[0], "en") == \
            Decimal(total["receivable"]), currency


def test_movements_that_do_not_tie_out_are_flagged() -> None:
    ledger = Ledger.fold([paid(1, "EUR", "10.00")])
    good = Movements(((("total", "EUR", "", "2027-01"), Movement(new=D(5), closing=D(5))),
                      (("total", "EUR", "", "2027-02"), Movement(opening=D(5), closing=D(5)))))
    bad = Movements(((("total", "EUR", "", "2027-01"), Movement(new=D(5), closing=D(5))),
                     (("total", "EUR", "", "2027-02"), Movement(opening=D(4), closing=D(4))),
                     (("total", "EUR", "", "2027-03"), Movement(opening=D(4), closing=D(3)))))

    def notes(moves: Movements) -> list[str]:
        (section,) = currency_sections(ReportInput(ledger, movements=moves))
        return [b.text for b in section.blocks if isinstance(b, Note)] + [
            b.note for b in section.blocks if isinstance(b, Table) and "MRR" in b.title]

    assert any(n.startswith("Every month ties out") for n in notes(good))
    assert "Does NOT tie out in: 2027-02, 2027-03." in notes(bad)


def test_without_outcomes_the_page_says_what_is_left_out() -> None:
    rules, ledger = demo()
    text = " ".join(parsed(render_html(ledger, rules)).text)
    assert "Accrual basis: left out, this replay did not fold the accrual view" in text
    assert "Tax by jurisdiction: left out" in text
    assert "EUR MRR movements by month" in text  # from the ledger alone


# -- charts ------------------------------------------------------------------------------


def test_charts_are_readable_without_colour() -> None:
    rules, ledger = demo()
    page = parsed(render_html(ledger, rules))
    svgs = list(page.all("svg"))
    assert len(svgs) == 2 * len(ledger.totals())  # sales, MRR movements (no outcomes: no
    # accrual)
    lines = [a for t, a, _ in page.elements if t == "polyline"]
    dashes = {a.get("class"): a.get("stroke-dasharray") for a in lines}
    sales = {k: v for k, v in dashes.items() if k in ("line gross", "line net", "line refunds")}
    assert len(set(sales.values())) == 3  # solid, dashed, dotted
    # the MRR movements: five lines, five patterns
    moves = {k: v for k, v in dashes.items() if k in (
        "line new", "line reactivated", "line expansion", "line contraction", "line churned")}
    assert len(set(moves.values())) == len(moves) == 5, moves
    markers = {t for t, a, _ in page.elements if t in ("circle", "rect", "path")}
    assert markers == {"circle", "rect", "path"}
    shapes = {a.get("d", "")[:1] + str(float(a["d"].split("L")[1].split(",")[1]) -
                                       float(a["d"].split(",")[1].split("L")[0]) > 0)
              for t, a, _ in page.elements if t == "path" and a.get("d", "").count("L") == 2}
    assert shapes == {"MTrue", "MFalse"}  # triangles up and down
    captions = [t for _, t in page.all("figcaption")]
    assert captions[:2] == ["EUR: gross sales, net revenue and refunds by month",
                            "EUR: MRR movements by month (contraction and churn below zero)"]
    ends = [t for _, t in page.all("text", "end")]
    eur = ledger.totals()["EUR"]
    last = ledger.by_month()[("EUR", ledger.last_month or "")]
    assert f"net revenue €{last.net:,}" in ends and eur.net
    assert any(t.startswith("gross sales") for t in ends)


def test_chart_labels_at_the_end_never_overlap() -> None:
    chart = Chart("c", "EUR", ("2027-01", "2027-02"),
                  (Series("a", "a", (D(1), D(5))), Series("b", "b", (D(1), D(5))),
                   Series("c", "c", (D(1), D("5.01")))))
    html = render_page("t", [], [Section("x", "x", (chart,))])
    ys = sorted(float(y) for y in re.findall(r'class="end" x="[\d.]+" y="([\d.]+)"', html))
    assert len(ys) == 3 and all(b - a >= 15 for a, b in zip(ys, ys[1:], strict=False))


def test_a_chart_below_zero_has_even_steps_and_a_line_at_zero() -> None:
    chart = Chart("c", "EUR", ("2027-01", "2027-02"),
                  (Series("new", "new", (D(69), D(10))), Series("churned", "churned",
                                                               (D(0), D(-26)))))
    page = parsed(render_page("t", [], [Section("x", "x", (chart,))]))
    axis = [t for a, t in page.all("text", "lbl") if a.get("text-anchor") == "end"]
    assert axis == ["-€50.00", "-€25.00", "€0.00", "€25.00", "€50.00", "€75.00", "EUR"]
    (zero,) = [a for t, a, _ in page.elements if t == "line" and a.get("class") == "axis"]
    (tick,) = [a for t, a, w in page.elements if t == "text" and "".join(w) == "€0.00"]
    assert float(zero["y1"] or 0) + 4 == pytest.approx(float(tick["y"] or 0))


# -- sections plug in ----------------------------------------------------------------


def test_a_new_view_plugs_in_as_a_section_builder() -> None:
    rules, ledger = demo()

    def tax(data: ReportInput) -> Iterator[Section]:
        for currency, total in data.ledger.totals().items():
            yield Section(f"tax-{currency}", f"Tax {currency}", (
                Table("Tax collected", ("currency", "tax"), ((currency, Money(total.tax,
                                                                            currency)),)),
                Note("by jurisdiction: to come")))

    page = parsed(render_html(ledger, rules, sections=(*DEFAULT_SECTIONS, tax)))
    ids = [a.get("id") for a, _ in page.all("section")]
    assert ids == ["all-currencies", "EUR", "JPY", "USD", "tax-EUR", "tax-JPY", "tax-USD"]
    assert [a.get("href") for a, _ in page.all("a")] == [f"#{i}" for i in ids]


def test_an_empty_ledger_says_so() -> None:
    text = " ".join(parsed(render_html(Ledger())).text)
    assert "No revenue in this log." in text


def test_the_page_escapes_names_and_is_deterministic() -> None:
    ledger = Ledger.fold([paid(1, "EUR", "1.00", storefront="<b>x</b>\u202e")])
    html = render_html(ledger, title="<script>")
    assert "<script>" not in html and "<b>x" not in html and "\u202e" not in html
    assert render_html(ledger) == render_html(Ledger.fold(
        [paid(1, "EUR", "1.00", storefront="<b>x</b>\u202e")]))


# -- the command -----------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> str:
    events = generate(revrules.load(STREAMING), 6, 3, seed=1)
    path = tmp_path / "log.jsonl"
    path.write_text("".join(wire.dumps(e) + "\n" for e in events), "utf-8")
    return str(path)


def test_replay_html_with_locale_and_rates(capsys: pytest.CaptureFixture[str], log_file: str,
                                           tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    status = main(["replay", str(STREAMING), log_file, "--html", str(target),
                   "--locale", "de_CH", "--fx", "EUR=1,USD=0.92,JPY=0.0061"])
    out, err = capsys.readouterr()
    assert status == 0, err
    text = target.read_text("utf-8")
    assert 'lang="de-CH"' in text and "Consolidated at the given rates (EUR)" in text


@pytest.mark.parametrize("options, message", [
    (["--locale", "xx_YY"], "unknown locale 'xx_YY'"),
    (["--fx", "EUR=2"], "must be given 1"),
    (["--fx", "EUR=1"], "--fx gives no rate for JPY, USD, a currency of the log"),
    (["--fx", "GBP=1,EUR=0.85,JPY=x"], "the rate of JPY is not a number"),
])
def test_replay_option_errors_are_one_line(capsys: pytest.CaptureFixture[str], log_file: str,
                                           tmp_path: Path, options: list[str],
                                           message: str) -> None:
    target = tmp_path / "r.html"
    status = main(["replay", str(STREAMING), log_file, "--html", str(target), *options])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not target.exists()


def test_locale_and_fx_need_the_html_page(capsys: pytest.CaptureFixture[str],
                                          log_file: str) -> None:
    assert main(["replay", str(STREAMING), log_file, "--locale", "de_CH"]) == 2
    assert "add --html FILE" in capsys.readouterr().err


# -- the page's figures are the JSON report's ------------------------------------------


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), customers=st.integers(1, 12), months=st.integers(1, 8),
       locale=st.sampled_from(["en", "de_CH", "fr_FR", "ja_JP"]))
def test_every_monthly_figure_on_the_page_is_the_json_reports(seed: int, customers: int,
                                                               months: int,
                                                               locale: str) -> None:
    rules = demo()[0]
    done = replay(rules, generate(rules, customers, months, seed=seed))
    data = json.loads(render_json(done.ledger, rules, done.outcomes))
    page = parsed(render_html(done.ledger, rules, done.outcomes, locale=locale))
    tables: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for tag, _, words in page.elements:
        if tag == "caption":
            current = tables.setdefault("".join(words).strip(), [])
        elif tag == "tr" and current is not None:
            current.append([])
        elif tag in ("td", "th") and current is not None:
            current[-1].append("".join(words))
    labels = {"payments": "payments", "gross sales": "gross", "discounts": "discounts",
              "credits": "credits", "refunds": "refunds", "net revenue": "net",
              "tax collected": "tax", "commission": "commission", "proceeds": "proceeds",
              "refunded": "refund_count", "active": "active", "trialing": "trialing",
              "MRR": "mrr", "churned": "churned", "receivable": "outstanding",
              "written off": "written_off"}
    months_wire = {(m["currency"], m["month"]): m for m in data["months"]}
    checked = 0
    for currency in data["totals"]:
        for caption in (f"{currency} sales by month ({currency})",
                        f"{currency} subscriptions and receivables at each month end "
                        f"({currency})"):
            head, *body = tables[caption]
            for row in body[:-1]:
                for name, cell in zip(head[1:], row[1:], strict=True):
                    want = Decimal(str(months_wire[(currency, row[0])][labels[name]]))
                    assert _number(cell, locale) == want, (caption, row[0], name, cell)
                    checked += 1
    assert checked or not data["totals"]


def _number(text: str, locale: str) -> Decimal:
    found = re.search(r"\d[\d'’.,\u202f\xa0]*\d|\d", text)
    assert found, text
    value = parse_decimal(found.group(0), locale=locale)
    return -value if "-" in text else value
