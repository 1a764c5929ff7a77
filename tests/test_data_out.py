"""Data out: ``Ledger.to_rows`` (plain rows, exact Decimals), ``to_arrow`` and
``to_pandas`` (decimal128 at the currency's scale, never float), and ``_repr_html_``
on the ledger, the what-if diff and the growth figures."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import Ledger
from revrules.generator import generate
from revrules.growth import growth_of_outcomes
from revrules.ledger import FIELDS, MONEY_FIELDS
from revrules.reports import render_csv, render_json, replay
from revrules.results import RevenueEvent
from revrules.whatif import diff

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
PRICE_RISE = ROOT / "examples" / "streaming-price-rise.rr"
D = Decimal
GROUP = ("currency", "month", "storefront", "channel", "plan")


@cache
def rules() -> revrules.Ruleset:
    return revrules.load(STREAMING)


@cache
def log() -> tuple[dict[str, object], ...]:
    return tuple(generate(rules(), 30, 8, seed=5))


@cache
def ledger() -> Ledger:
    return replay(rules(), log()).ledger


def paid(n: int, currency: str, gross: str, net: str | None = None, month: int = 1,
         storefront: str = "web") -> RevenueEvent:
    return RevenueEvent(f"e{n}", "payment.succeeded", dt.datetime(2027, month, 5, tzinfo=dt.UTC),
                        f"s{n}", f"c{n}", storefront, "web", "monthly", currency,
                        gross=D(gross), net=D(net or gross), amount=D(net or gross))


# -- to_rows ---------------------------------------------------------------------------


def test_to_rows_are_the_ledger_rows_as_plain_dicts() -> None:
    rows = ledger().to_rows()
    groups = ledger().rows()
    assert len(rows) == len(groups) > 20
    for row, (group, figures) in zip(rows, groups, strict=True):
        assert list(row) == [*GROUP, *FIELDS]
        assert tuple(row[k] for k in GROUP) == (group.currency, group.month, group.storefront,
                                                group.channel, group.plan)
        for name in FIELDS:
            assert row[name] == figures.get(name)
            kind = Decimal if name in MONEY_FIELDS else int
            assert type(row[name]) is kind, name
    assert {r["currency"] for r in rows} == {"EUR", "JPY", "USD"}
    only = ledger().to_rows("JPY")
    assert only == [r for r in rows if r["currency"] == "JPY"] and only


def test_to_rows_writes_money_with_the_currency_minor_units() -> None:
    folded = Ledger.fold([paid(1, "EUR", "10"), paid(2, "JPY", "1200"),
                          paid(3, "KWD", "1.5")])
    by_currency = {r["currency"]: r for r in folded.to_rows()}
    assert str(by_currency["EUR"]["gross"]) == "10.00"
    assert str(by_currency["EUR"]["refunds"]) == "0.00"
    assert str(by_currency["JPY"]["gross"]) == "1200"
    assert str(by_currency["KWD"]["net"]) == "1.500"


def test_to_rows_sum_to_the_totals_exactly() -> None:
    for currency, total in ledger().totals().items():
        rows = ledger().to_rows(currency)
        for name in ("gross", "discounts", "refunds", "net", "tax", "commission", "proceeds",
                     "written_off"):
            assert sum((r[name] for r in rows), D(0)) == total.get(name), (currency, name)


# -- Arrow and pandas ------------------------------------------------------------------


def test_to_arrow_uses_decimal128_never_float() -> None:
    table = ledger().to_arrow()
    for field in table.schema:
        assert not pa.types.is_floating(field.type), field
        if field.name in MONEY_FIELDS:
            assert field.type == pa.decimal128(38, 2), field  # EUR, USD 2; JPY 0: the max
        elif field.name in GROUP:
            assert field.type == pa.string()
        else:
            assert field.type == pa.int64()
    assert table.schema.metadata[b"revrules.scales"] == b"EUR=2,JPY=0,USD=2"
    assert table.to_pylist() == ledger().to_rows()  # every value exact, as Decimal


def test_to_arrow_of_one_currency_has_its_own_scale() -> None:
    jpy = ledger().to_arrow("JPY")
    assert jpy.schema.field("gross").type == pa.decimal128(38, 0)
    assert jpy.to_pylist() == ledger().to_rows("JPY")
    kwd = Ledger.fold([paid(1, "KWD", "1.234"), paid(2, "JPY", "1200")])
    table = kwd.to_arrow()
    assert table.schema.field("net").type == pa.decimal128(38, 3)
    assert [str(v) for v in table.column("net").to_pylist()] == ["1200.000", "1.234"]


def test_to_arrow_never_rounds() -> None:
    odd = Ledger.fold([paid(1, "EUR", "1.005")])
    assert odd.to_rows()[0]["gross"] == D("1.005")  # rows keep what the ledger holds
    with pytest.raises(ValueError, match="more than 2 decimal places: not rounded"):
        odd.to_arrow()


def test_to_pandas_keeps_decimals_exact() -> None:
    frame = ledger().to_pandas()
    assert str(frame["net"].dtype) == "decimal128(38, 2)[pyarrow]"
    assert str(frame["payments"].dtype) == "int64[pyarrow]"
    sums = frame.groupby("currency")["net"].sum()
    for currency, total in ledger().totals().items():
        assert sums[currency] == total.net
        assert isinstance(sums[currency], Decimal)
    assert len(frame) == len(ledger().rows())


@pytest.mark.parametrize("module, method", [("pyarrow", "to_arrow"), ("pandas", "to_pandas")])
def test_a_missing_data_extra_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, module: str,
                                                  method: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ImportError, match=rf"Ledger\.{method}\(\) needs {module}: "
                                          r"pip install 'revrules\[data\]'"):
        getattr(ledger(), method)()


def test_an_empty_ledger_goes_out_empty() -> None:
    assert Ledger().to_rows() == []
    assert Ledger().to_arrow().num_rows == 0
    assert len(Ledger().to_pandas()) == 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["EUR", "JPY", "KWD", "USD"]),
                          st.integers(-10**9, 10**9), st.integers(1, 12)),
                min_size=1, max_size=12))
def test_arrow_round_trips_every_ledger_exactly(items: list[tuple[str, int, int]]) -> None:
    from revrules.runtime import exponent

    events = [paid(n, c, str(Decimal(units) * exponent(c)), month=m)
              for n, (c, units, m) in enumerate(items)]
    folded = Ledger.fold(events)
    assert folded.to_arrow().to_pylist() == folded.to_rows()
    for currency in folded.currencies():
        assert folded.to_arrow(currency).to_pylist() == folded.to_rows(currency)


def test_csv_and_json_stay_deterministic() -> None:
    again = replay(rules(), log()).ledger
    assert render_csv(again) == render_csv(ledger())
    assert render_json(again) == render_json(ledger())


# -- notebooks -------------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.words.append(data)


def shown(fragment: str) -> tuple[list[str], str]:
    page = _Text()
    page.feed(fragment)
    page.close()
    return page.tags, "".join(page.words)  # a figure may hold a <wbr>


def test_ledger_repr_html_shows_totals_and_months() -> None:
    tags, text = shown(ledger()._repr_html_())
    assert "script" not in tags and tags.count("table") == 2
    eur = ledger().totals()["EUR"]
    assert f"€{eur.net:,}" in text and "2026-08" in text
    assert "no revenue" in shown(Ledger()._repr_html_())[1]


def test_diff_repr_html_shows_what_moved_and_why() -> None:
    d = diff(rules(), revrules.load(PRICE_RISE), list(log()))
    assert d.changed
    tags, text = shown(d._repr_html_())
    assert "script" not in tags
    sub = d.subscriptions[0]
    assert sub.subscription in text and sub.rules[0] in text
    assert "totals that moved" in text
    same = diff(rules(), rules(), list(log()[:20]))
    assert "no figure and no charge changed" in shown(same._repr_html_())[1]


def test_growth_repr_html_shows_conversion_retention_promotions() -> None:
    g = growth_of_outcomes(replay(rules(), log()).outcomes, rules())
    tags, text = shown(g._repr_html_())
    assert "script" not in tags and tags.count("table") == 5
    for heading in ("Conversion", "Price points", "Retention by month", "Retention by charges",
                    "Promotions"):
        assert heading in text
    assert g.price_points[0].id in text and g.retention[0].value in text
    first = g.conversions[0]
    assert first.value in text
