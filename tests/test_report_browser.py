"""The HTML report in a real headless Chromium: what a person sees.

The browser comes from ``REVRULES_TEST_CHROMIUM`` (Debian's ``chromium``); without it
these tests are skipped, unless ``REVRULES_REQUIRE_SERVICES=1`` (CI), where they fail.
Chromium's own ``--dump-dom`` and ``--screenshot`` drive it, no Playwright. The report
has no script; to measure the laid-out page the test injects a small probe script into
a *copy* of it, which writes the page's widths and computed styles into the DOM before
``--dump-dom`` prints it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import immutables
import pytest
from babel.numbers import parse_decimal
from test_report import check_revenue_views

import revrules
from revrules import Ledger, wire
from revrules.cli import main
from revrules.generator import generate
from revrules.reports import DEFAULT_SECTIONS, Table, parse_fx, render_html, replay
from revrules.runtime import quantize

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
WIDTH = 1280

PROBE = """<script>
(function () {
  var html = document.documentElement, out = {scrollWidth: html.scrollWidth,
    clientWidth: html.clientWidth, wide: [], sticky: 0, heads: 0, left: [], script: 0};
  document.querySelectorAll("table, svg, .cards, .card, p, h1, h2, nav").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.right > html.clientWidth + 0.5 || e.scrollWidth > e.clientWidth + 1 && e.tagName == "TABLE")
      out.wide.push(e.tagName + " " + (e.querySelector("caption") || e).textContent.slice(0, 60)
                    + " right=" + r.right);
  });
  document.querySelectorAll("svg text").forEach(function (t) {
    var r = t.getBoundingClientRect(), box = t.closest("svg").getBoundingClientRect();
    if (r.right > box.right + 0.5 || r.left < box.left - 0.5)
      out.wide.push("chart label " + t.textContent + " right=" + r.right + " svg=" + box.right);
  });
  document.querySelectorAll("thead th").forEach(function (th) {
    out.heads++; if (getComputedStyle(th).position == "sticky") out.sticky++;
  });
  document.querySelectorAll("td.n").forEach(function (td) {
    if (getComputedStyle(td).textAlign != "right") out.left.push(td.textContent);
  });
  var pre = document.createElement("pre");
  pre.id = "revrules-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("REVRULES_TEST_CHROMIUM")
    if not path:
        reason = "REVRULES_TEST_CHROMIUM is not set (a headless Chromium, e.g. /usr/bin/chromium)"
        if os.environ.get("REVRULES_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and REVRULES_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return path


def browse(chromium: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--mute-audio",
            f"--user-data-dir={profile}", f"--window-size={WIDTH},900", *extra, page.as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class Dom(HTMLParser):
    """The rendered DOM: visible text, the probe, and every table by its caption."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, dict[str, str]] = {}
        self._section = ""
        self._caption: str | None = None
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._card: list[str] | None = None
        self._skip = 0
        self.probe = ""
        self._in_probe = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag in ("style", "script", "title"):
            self._skip += 1
        if tag == "section":
            self._section = a.get("id") or ""
        if tag == "pre" and a.get("id") == "revrules-probe":
            self._in_probe = True
        if tag == "table":
            self._rows = []
        if tag == "caption":
            self._caption = ""
        if tag == "tr" and self._rows is not None:
            self._rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag == "div" and "card" in (a.get("class") or "").split():
            self._card = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1
        if tag == "pre":
            self._in_probe = False
        if tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table" and self._rows is not None:
            self.tables[(self._caption or "").strip()] = self._rows
            self._rows = None
        if tag == "div" and self._card is not None:
            label, value = self._card[0], self._card[1]
            self.cards.setdefault(self._section, {})[label] = value
            self._card = None

    def handle_data(self, data: str) -> None:
        if self._in_probe:
            self.probe += data
            return
        if self._skip:
            return
        self.text.append(data)
        if self._caption is not None and self._rows == []:
            self._caption += data
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._card is not None and data.strip():
            self._card.append(data.strip())


def number(text: str, locale: str) -> Decimal:
    """A figure as shown (``EUR 2'317.48``, ``-$1,234.50``, ``$-1'234.50``) as a Decimal."""
    found = re.search(r"\d[\d'’.,\u202f\xa0 ]*\d|\d", text)
    assert found, text
    value = parse_decimal(found.group(0).replace("\xa0", "\u202f") if locale.startswith("fr")
                          else found.group(0), locale=locale)
    return -value if ("-" in text or "−" in text) else value


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-browser")
    events = generate(revrules.load(STREAMING), 60, 14, seed=7)
    path = folder / "events.jsonl"
    path.write_text("".join(wire.dumps(e) + "\n" for e in events), "utf-8")
    return path


def report(capsys: pytest.CaptureFixture[str], log_file: Path, folder: Path,
           *options: str) -> tuple[Path, dict[str, Any]]:
    page = folder / "report.html"
    status = main(["replay", str(STREAMING), str(log_file), "--format", "json",
                   "--html", str(page), *options])
    out, err = capsys.readouterr()
    assert status == 0, err
    return page, json.loads(out)


def views_json(capsys: pytest.CaptureFixture[str], log_file: Path, folder: Path,
               page: Path, *options: str) -> dict[str, Any]:
    """``replay --basis accrual --movements --tax --format json``; its page is the same."""
    again = folder / "again.html"
    status = main(["replay", str(STREAMING), str(log_file), "--basis", "accrual",
                   "--movements", "--tax", "--format", "json", "--html", str(again), *options])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert again.read_bytes() == page.read_bytes()  # the page always has every view
    data: dict[str, Any] = json.loads(out)
    return data


def check_views(dom: Dom, data: dict[str, Any], locale: str) -> None:
    """The accrual, MRR movements and tax tables as seen equal the JSON, and the
    receivables card is the accrual view's receivable, with its unbilled part."""
    checked = check_revenue_views(dom.tables, data, lambda t: number(t, locale))
    assert checked > 1000, checked
    text = " ".join(dom.text)
    for currency, total in data["totals"].items():
        assert number(dom.cards[currency]["receivable at the end"], locale) == \
            Decimal(total["receivable"])
        for title in ("recognised revenue by month and deferred revenue at month end "
                      "(accrual basis)", "MRR movements by month (contraction and churn "
                      "below zero)"):
            assert f"{currency}: {title}" in text  # the charts' captions
    assert text.count("Every month ties out") == len(data["totals"])
    assert "unbilled;" in text


def rendered(chromium: str, page: Path, folder: Path) -> Dom:
    probed = folder / "probed.html"
    probed.write_text(page.read_text("utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    done = browse(chromium, probed, folder / "profile-dom", "--virtual-time-budget=5000",
                  "--dump-dom")
    dom = Dom()
    dom.feed(done.stdout)
    dom.close()
    assert dom.probe, "the probe did not run: " + done.stdout[:300]
    return dom


def check_layout(dom: Dom) -> None:
    probe = json.loads(dom.probe)
    # it fits at 1280 px: no horizontal scrolling, nothing sticks out, no table overflows
    assert probe["scrollWidth"] <= probe["clientWidth"], probe
    assert probe["wide"] == [], probe["wide"]
    # sticky headers on every table, every number right-aligned
    assert probe["heads"] > 50 and probe["sticky"] == probe["heads"], probe
    assert probe["left"] == []


def check_page(dom: Dom, data: dict[str, Any], locale: str) -> None:
    check_layout(dom)
    text = " ".join(dom.text)
    assert "All currencies" in text and "receivable at the end" in text
    months = {(m["currency"], m["month"]): m for m in data["months"]}
    for currency, total in data["totals"].items():
        # cards: the headline figures as the JSON report has them
        cards = dom.cards[currency]
        assert number(cards["net revenue"], locale) == Decimal(total["net"])
        assert number(cards["gross sales"], locale) == Decimal(total["gross"])
        assert number(cards["MRR at the end"], locale) == Decimal(total["mrr"])
        assert number(cards["receivable at the end"], locale) == Decimal(total["outstanding"])
        assert int(number(cards["active at the end"], locale)) == total["active"]
        # the monthly sales table: every figure shown equals the JSON's; a column left
        # out is zero in every month
        rows = dom.tables[f"{currency} sales by month ({currency})"]
        heads, body = rows[0], rows[1:]
        names = {"month": "month", "payments": "payments", "gross sales": "gross",
                 "discounts": "discounts", "credits": "credits", "refunds": "refunds",
                 "net revenue": "net", "tax collected": "tax", "commission": "commission",
                 "proceeds": "proceeds", "refunded": "refund_count"}
        shown = [names[h] for h in heads]
        assert shown[:2] == ["month", "payments"] and "net" in shown
        for row in body[:-1]:
            wanted = months[(currency, row[0])]
            for name, cell in zip(shown[1:], row[1:], strict=True):
                assert number(cell, locale) == Decimal(str(wanted[name])), (row[0], name, cell)
        assert body[-1][0] == "total"
        for name, cell in zip(shown[1:], body[-1][1:], strict=True):
            assert number(cell, locale) == Decimal(str(total[name])), (name, cell)
        for name in set(names.values()) - set(shown):
            assert all(Decimal(str(m[name])) == 0 for (c, _), m in months.items()
                       if c == currency), name
        assert len(body) - 1 == sum(1 for c, _ in months if c == currency)
        # the subscriptions and receivables table, month by month and at the end
        rows = dom.tables[f"{currency} subscriptions and receivables at each month end "
                          f"({currency})"]
        book = {"month": "month", "active": "active", "trialing": "trialing", "MRR": "mrr",
                "churned": "churned", "receivable": "outstanding",
                "written off": "written_off"}
        shown = [book[h] for h in rows[0]]
        for row in rows[1:-1]:
            wanted = months[(currency, row[0])]
            for name, cell in zip(shown[1:], row[1:], strict=True):
                assert number(cell, locale) == Decimal(str(wanted[name])), (row[0], name, cell)
        assert rows[-1][0] == "at the end"
        for name, cell in zip(shown[1:], rows[-1][1:], strict=True):
            assert number(cell, locale) == Decimal(str(total[name])), (name, cell)
        assert "mrr" in shown


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_report_as_a_person_sees_it(chromium: str, capsys: pytest.CaptureFixture[str],
                                        log_file: Path, tmp_path: Path) -> None:
    page, data = report(capsys, log_file, tmp_path)
    assert set(data["totals"]) == {"EUR", "JPY", "USD"}
    assert "<script" not in page.read_text("utf-8")  # the probe goes into a copy only
    views = views_json(capsys, log_file, tmp_path, page)
    dom = rendered(chromium, page, tmp_path)
    assert dom.tags.count("svg") == 9  # per currency: sales, accrual, MRR movements
    check_page(dom, data, "en")
    check_views(dom, views, "en")
    text = " ".join(dom.text)
    assert "€" in text and "Currencies are not added together" in text
    shot = tmp_path / "report.png"
    browse(chromium, page, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert png_size(shot) == (WIDTH, 900)
    assert shot.stat().st_size > 20_000  # something was drawn


def test_the_report_in_swiss_german_with_explicit_rates(
        chromium: str, capsys: pytest.CaptureFixture[str], log_file: Path,
        tmp_path: Path) -> None:
    rates = "EUR=1,USD=0.92,JPY=0.0061"
    page, data = report(capsys, log_file, tmp_path, "--locale", "de_CH", "--fx", rates)
    views = views_json(capsys, log_file, tmp_path, page, "--locale", "de_CH", "--fx", rates)
    dom = rendered(chromium, page, tmp_path)
    check_page(dom, data, "de_CH")
    check_views(dom, views, "de_CH")
    text = " ".join(dom.text)
    assert re.search(r"EUR\xa0\d{1,3}['’]\d{3}\.\d{2}", text), "Swiss grouping of thousands"
    # the consolidated month totals are each currency converted once and added
    fx = parse_fx(rates)
    table = dom.tables["Net revenue by month, per currency, and in EUR at the given rates"]
    assert table[0] == ["month", "EUR", "JPY", "USD", "total in EUR"]
    months = {(m["currency"], m["month"]): m for m in data["months"]}
    for row in table[1:]:
        want = sum((quantize(Decimal(months[(c, row[0])]["net"]) * fx.rates[c], "EUR")
                    for c in ("EUR", "JPY", "USD") if (c, row[0]) in months), Decimal(0))
        assert number(row[-1], "de_CH") == want, row


def test_huge_figures_and_every_column_still_fit(chromium: str, log_file: Path,
                                                 tmp_path: Path) -> None:
    """Amounts in the billions per month, no column collapsed: the tables still fit
    (a figure may break after a group mark) and the chart's labels stay inside it."""
    rules = revrules.load(STREAMING)
    done = replay(rules, [json.loads(line) for line in log_file.read_text("utf-8").splitlines()])
    money = ("gross", "discounts", "credits", "refunds", "net", "tax", "commission",
             "written_off")
    huge = Ledger(immutables.Map({g: attrs.evolve(f, **{n: getattr(f, n) * 10**7
                                                        for n in money})
                                  for g, f in done.ledger.cells.items()}),
                  done.ledger.tracks, done.ledger.periods)
    keep_all = tuple(lambda data, b=b: (attrs.evolve(s, blocks=tuple(
        attrs.evolve(x, collapse=False) if isinstance(x, Table) else x for x in s.blocks))
        for s in b(data)) for b in DEFAULT_SECTIONS)
    page = tmp_path / "huge.html"
    page.write_text(render_html(huge, rules, done.outcomes, locale="fr_FR",
                                fx=parse_fx("EUR=1,USD=0.92,JPY=0.0061"), sections=keep_all),
                    "utf-8")
    dom = rendered(chromium, page, tmp_path)
    check_layout(dom)
    assert "Zero throughout" not in " ".join(dom.text)
