"""Tax by jurisdiction (revrules.taxes): per tax table, rate and customer country and
month, refunds in the month they fall in; exact figures, and net tax equal to the cash
ledger's tax per month."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import revrules
from revrules import Engine, Ledger, Outcome
from revrules.generator import generate
from revrules.taxes import Taxes

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")
D = Decimal

TWO_TABLES = """ruleset levy version "1"
customer { country: string }
storefront eu { channel web region EU currency EUR tax inclusive psp stripe }
storefront us { channel web region US currency USD tax exclusive psp stripe }
product p { entitlements a }
plan m {
  product p
  every 1 month
  price eu EUR 12.99
  price us USD 10.00
}
tax vat {
  rate 19% when customer.country == "DE"
  rate 20% when customer.country == "FR"
  rate 0%
}
tax levy {
  rate 2.5% when customer.country == "FR"
  rate 0%
}
lifecycle { refund full }
"""


def bundled() -> list[Outcome]:
    with open(ROOT / "examples" / "events.jsonl", encoding="utf-8") as log:
        events = [json.loads(line) for line in log if line.strip()]
    _, outcomes = Engine(STREAMING).run(events)
    return outcomes


def table(taxes: Taxes) -> list[tuple[Any, ...]]:
    return [(k.currency, k.month, k.table, k.rate_text, k.country, f.net_taxable, f.tax,
             f.refunded_tax, f.net_tax) for k, f in taxes.rows()]


def test_bundled_log_by_jurisdiction() -> None:
    assert table(Taxes.from_outcomes(bundled(), STREAMING)) == [
        ("EUR", "2026-11", "vat", "19%", "DE", D("10.92"), D("2.07"), D("0"), D("2.07")),
        ("EUR", "2026-12", "vat", "19%", "DE", D("21.84"), D("4.14"), D("0"), D("4.14")),
        ("EUR", "2026-12", "vat", "20%", "FR", D("99.00"), D("19.80"), D("0"), D("19.80")),
        ("JPY", "2026-12", "vat", "10%", "JP", D("739"), D("109"), D("35"), D("74")),
        ("USD", "2026-12", "vat", "0%", "US", D("25.04"), D("0.00"), D("0"), D("0.00")),
    ]


def test_two_tables_split_exactly_and_a_refund_reduces_its_own_month() -> None:
    rules = revrules.load_text(TWO_TABLES, "levy.rr")
    log = [{"id": "c", "type": "checkout", "at": "2027-01-30T10:00:00Z", "subscription": "s",
            "storefront": "eu", "plan": "m", "customer": {"id": "c", "country": "FR"}},
           {"id": "p", "type": "payment_succeeded", "at": "2027-01-30T10:00:01Z",
            "subscription": "s"},
           {"id": "x", "type": "refund_requested", "at": "2027-02-02T10:00:00Z",
            "subscription": "s"}]
    _, outcomes = Engine(rules).run(log)
    assert all(o.ok for o in outcomes)
    taxes = Taxes.from_outcomes(outcomes, rules)
    # 12.99 including 22.5%: 12.99 × 0.20 / 1.225 = 2.12 VAT, 12.99 × 0.025 / 1.225 = 0.27
    assert table(taxes) == [
        ("EUR", "2027-01", "levy", "2.5%", "FR", D("10.60"), D("0.27"), D("0"), D("0.27")),
        ("EUR", "2027-01", "vat", "20%", "FR", D("10.60"), D("2.12"), D("0"), D("2.12")),
        ("EUR", "2027-02", "levy", "2.5%", "FR", D("-10.60"), D("0"), D("0.27"), D("-0.27")),
        ("EUR", "2027-02", "vat", "20%", "FR", D("-10.60"), D("0"), D("2.12"), D("-2.12")),
    ]
    ledger = Ledger.from_outcomes(outcomes, rules).by_month()
    for key, f in taxes.by_month().items():
        assert f.net_tax == ledger[key].tax


@pytest.mark.parametrize("seed", [1, 2])
def test_net_tax_is_the_ledgers_tax_on_generated_logs(seed: int) -> None:
    _, outcomes = Engine(STREAMING).run(generate(STREAMING, customers=40, months=10,
                                                 seed=seed))
    taxes = Taxes.from_outcomes(outcomes, STREAMING)
    ledger = Ledger.from_outcomes(outcomes, STREAMING).by_month()
    for key, f in taxes.by_month().items():
        assert f.net_tax == ledger[key].tax, key
    assert {k.rate_text for k, _ in taxes.rows()} >= {"19%", "20%", "0%"}
    assert all(k.rate is not None for k, _ in taxes.rows())
    events = list(outcomes)
    half = len(events) // 2
    # additive: the fold of the whole is the merge of the folds of two halves by time
    a = Taxes.from_outcomes(events[:half], STREAMING)
    assert a.extend(events[half:], STREAMING).rows() == taxes.rows()
