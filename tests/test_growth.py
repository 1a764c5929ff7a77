"""Growth figures: conversion and retention per price point, offer, channel and design.

The hand-written log below has seven subscriptions on a ruleset whose premium plan
costs EUR 9.99 on web_eu until 2027-01-31 and EUR 11.99 from 2027-02-01, so the two
list-price versions are separate price points. Every figure is checked exactly.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, Outcome, RevenueEvent
from revrules.cli import main
from revrules.generator import generate
from revrules.growth import (CONVERSION_DIMENSIONS, RETENTION_DIMENSIONS, Growth,
                             growth, growth_of_outcomes, growth_to_wire, render_growth)
from revrules.wire import dumps

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
D = Decimal

RULES = """\
ruleset g version "1"
customer {
  country: string
  trials_used: int = 0
}
storefront web_eu { channel web  currency EUR  tax inclusive  psp stripe }
storefront ios { channel app_store  currency EUR  tax inclusive  psp apple }
product basic { entitlements sd }
product premium { entitlements hd, downloads }
plan basic {
  product basic
  every 1 month
  price web_eu EUR 4.99
  price ios EUR 4.99
}
plan premium {
  product premium
  every 1 month
  trial 7 days if trial_ok
  price web_eu EUR 9.99
  price web_eu EUR 11.99 from 2027-02-01
  price ios EUR 9.99
}
eligibility trial_ok { deny "used" when customer.trials_used > 0 }
promotion welcome {
  code "WELCOME"
  plans premium
  storefronts web_eu
  valid 2027-01-01 to 2027-03-31
  percent 50 off for 1 cycles
}
dunning standard {
  retry after 1 day
  grace 3 days keep entitlements
  then cancel
}
lifecycle {
  pause max 1 month
  cancel at period_end
  refund full within 14 days
}
"""


def co(eid: str, at: str, sub: str, storefront: str, plan: str, customer: str,
       trials_used: int, code: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"id": eid, "type": "checkout", "at": at, "subscription": sub,
                         "storefront": storefront, "plan": plan,
                         "customer": {"id": customer, "country": "DE",
                                      "trials_used": trials_used}}
    if code:
        e["code"] = code
    return e


def ev(eid: str, kind: str, at: str, sub: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "at": at,
            **({"subscription": sub} if sub else {}), **fields}


# A: no trial, 9.99, renews.  B: a 7-day trial that converts.  C: a trial whose first
# charge fails and dunning cancels.  D: 11.99 (after the rise), refunded and canceled.
# E: 11.99 with the WELCOME code.  F: basic on ios, a failed renewal recovered, then a
# pause.  G: a trial at 11.99 not paid by the end of the log.
LOG = [
    co("f1", "2027-01-05T09:00:00Z", "F", "ios", "basic", "cf", 1),
    ev("f2", "payment_succeeded", "2027-01-05T09:00:05Z", "F"),
    co("a1", "2027-01-10T09:00:00Z", "A", "web_eu", "premium", "ca", 1),
    ev("a2", "payment_succeeded", "2027-01-10T09:00:05Z", "A"),
    co("b1", "2027-01-20T09:00:00Z", "B", "web_eu", "premium", "cb", 0),
    co("c1", "2027-01-25T09:00:00Z", "C", "web_eu", "premium", "cc", 0),
    ev("t1", "tick", "2027-01-27T12:00:00Z"),
    ev("b2", "payment_succeeded", "2027-01-27T12:00:05Z", "B"),
    ev("t2", "tick", "2027-02-01T12:00:00Z"),
    ev("c2", "payment_failed", "2027-02-01T12:00:05Z", "C", reason="card_declined"),
    co("d1", "2027-02-05T09:00:00Z", "D", "web_eu", "premium", "cd", 1),
    ev("d2", "payment_succeeded", "2027-02-05T09:00:05Z", "D"),
    ev("f3", "renewal_due", "2027-02-05T10:00:00Z", "F"),
    ev("f4", "payment_failed", "2027-02-05T10:00:05Z", "F", reason="card_declined"),
    ev("t3", "tick", "2027-02-06T10:00:00Z"),
    ev("f5", "payment_succeeded", "2027-02-06T10:00:05Z", "F"),
    ev("d3", "refund_requested", "2027-02-06T12:00:00Z", "D"),
    ev("t4", "tick", "2027-02-08T00:00:00Z"),
    co("e1", "2027-02-10T09:00:00Z", "E", "web_eu", "premium", "ce", 1, "WELCOME"),
    ev("e2", "payment_succeeded", "2027-02-10T09:00:05Z", "E"),
    ev("a3", "renewal_due", "2027-02-10T10:00:00Z", "A"),
    ev("a4", "payment_succeeded", "2027-02-10T10:00:05Z", "A"),
    ev("f6", "pause_requested", "2027-02-10T11:00:00Z", "F"),
    co("g1", "2027-02-15T09:00:00Z", "G", "web_eu", "premium", "cg", 0),
    ev("t5", "tick", "2027-03-01T00:00:00Z"),
]


@cache
def rules() -> revrules.Ruleset:
    return revrules.load_text(RULES, "g.rr")


@cache
def outcomes() -> tuple[Outcome, ...]:
    _, done = Engine(rules()).run(LOG)
    assert all(o.ok for o in done), [o.error for o in done if not o.ok]
    return tuple(done)


def conversion_table(g: Growth) -> dict[tuple[str, str], tuple[int, ...]]:
    return {(c.dimension, c.value): (c.started, c.trials, c.trials_converted,
                                     c.first_charges, c.refunded) for c in g.conversions}


def retention_table(g: Growth) -> dict[tuple[str, str, str], tuple[int, tuple[int, ...]]]:
    return {(r.dimension, r.value, r.month): (r.size, r.retained) for r in g.retention}


# -- exact figures ---------------------------------------------------------------------


def test_conversion_per_price_point_promotion_and_channel() -> None:
    g = Growth.fold(outcomes(), rules())
    # (started, trials, trials converted, first charges paid, first payments refunded)
    assert conversion_table(g) == {
        ("all", "all"): (7, 3, 1, 5, 1),
        ("plan", "basic"): (1, 0, 0, 1, 0),
        ("plan", "premium"): (6, 3, 1, 4, 1),
        ("storefront", "ios"): (1, 0, 0, 1, 0),
        ("storefront", "web_eu"): (6, 3, 1, 4, 1),
        ("channel", "app_store"): (1, 0, 0, 1, 0),
        ("channel", "web"): (6, 3, 1, 4, 1),
        # the scheduled rise splits premium on web_eu: A, B, C at 9.99; D, E, G at 11.99
        ("price", "basic@ios#1"): (1, 0, 0, 1, 0),
        ("price", "premium@web_eu#1"): (3, 2, 1, 2, 0),
        ("price", "premium@web_eu#2"): (3, 1, 0, 2, 1),
        ("promotion", "(none)"): (6, 3, 1, 4, 1),
        ("promotion", "welcome"): (1, 0, 0, 1, 0),
    }
    assert [c.dimension for c in g.conversions][:1] == ["all"]
    by = {(c.dimension, c.value): c for c in g.conversions}
    assert by[("price", "premium@web_eu#1")].trial_conversion == D("0.5")
    assert by[("price", "premium@web_eu#2")].trial_conversion == D(0)
    assert by[("price", "premium@web_eu#2")].first_charge_conversion == D("0.6666666666666666666666666666666667")  # noqa: E501
    assert by[("plan", "basic")].trial_conversion is None


def test_price_points_are_list_price_versions() -> None:
    g = Growth.fold(outcomes(), rules())
    points = {p.id: (p.plan, p.storefront, p.currency, p.list, p.effective, p.contract)
              for p in g.price_points}
    import datetime as dt
    assert points == {
        "basic@ios#1": ("basic", "ios", "EUR", D("4.99"), None, None),
        "premium@web_eu#1": ("premium", "web_eu", "EUR", D("9.99"), None, None),
        "premium@web_eu#2": ("premium", "web_eu", "EUR", D("11.99"), dt.date(2027, 2, 1),
                             None),
    }


def test_a_contract_is_its_own_price_point() -> None:
    streaming = revrules.load(STREAMING)
    log = [
        {"id": "k1", "type": "checkout", "at": "2027-01-05T09:00:00Z", "subscription": "k",
         "storefront": "b2b", "plan": "business_annual",
         "customer": {"id": "c-acme", "country": "FR", "segment": "business"}},
        {"id": "k2", "type": "checkout", "at": "2027-01-06T09:00:00Z", "subscription": "l",
         "storefront": "b2b", "plan": "business_annual",
         "customer": {"id": "c-other", "country": "FR", "segment": "business"}},
    ]
    _, done = Engine(streaming).run(log)
    g = Growth.fold(done, streaming)
    assert [(p.id, p.list, p.contract) for p in g.price_points] == [
        ("business_annual@b2b#1", D("99.00"), None),
        ("business_annual@b2b#contract:acme", D("79.00"), "acme")]
    # without the ruleset the version is unknown, the rest is the same
    bare = Growth.fold(done)
    assert [p.id for p in bare.price_points] == ["business_annual@b2b#?"]
    assert conversion_table(bare)[("all", "all")] == conversion_table(g)[("all", "all")]


def test_retention_by_month_split_by_design() -> None:
    g = Growth.fold(outcomes(), rules())
    # (cohort size, retained at the end of month 0, 1, …): paid, and not churned yet
    assert retention_table(g) == {
        ("all", "all", "2027-01"): (4, (3, 3, 3)),  # A, B, F (C never paid)
        ("all", "all", "2027-02"): (3, (1, 1)),  # E (D refunded and canceled, G unpaid)
        ("plan", "basic", "2027-01"): (1, (1, 1, 1)),
        ("plan", "premium", "2027-01"): (3, (2, 2, 2)),
        ("plan", "premium", "2027-02"): (3, (1, 1)),
        ("price", "basic@ios#1", "2027-01"): (1, (1, 1, 1)),
        ("price", "premium@web_eu#1", "2027-01"): (3, (2, 2, 2)),
        ("price", "premium@web_eu#2", "2027-02"): (3, (1, 1)),
        # A renewed at 11.99, C's first charge was at 11.99 (never paid)
        ("price_change", "moved", "2027-01"): (2, (1, 1, 1)),
        ("price_change", "none", "2027-01"): (2, (2, 2, 2)),
        ("price_change", "none", "2027-02"): (3, (1, 1)),
        ("promotion", "(none)", "2027-01"): (4, (3, 3, 3)),
        ("promotion", "(none)", "2027-02"): (2, (0, 0)),
        ("promotion", "welcome", "2027-02"): (1, (1, 1)),
        ("channel", "app_store", "2027-01"): (1, (1, 1, 1)),
        ("channel", "web", "2027-01"): (3, (2, 2, 2)),
        ("channel", "web", "2027-02"): (3, (1, 1)),
        ("entitlements", "downloads, hd", "2027-01"): (3, (2, 2, 2)),
        ("entitlements", "downloads, hd", "2027-02"): (3, (1, 1)),
        ("entitlements", "sd", "2027-01"): (1, (1, 1, 1)),
        ("trial", "7 days", "2027-01"): (2, (1, 1, 1)),
        ("trial", "7 days", "2027-02"): (1, (0, 0)),
        ("trial", "none", "2027-01"): (2, (2, 2, 2)),
        ("trial", "none", "2027-02"): (2, (1, 1)),
        ("pause", "never paused", "2027-01"): (3, (2, 2, 2)),
        ("pause", "never paused", "2027-02"): (3, (1, 1)),
        ("pause", "paused", "2027-01"): (1, (1, 1, 1)),  # F: a pause is not churn
        ("dunning", "canceled", "2027-01"): (1, (0, 0, 0)),  # C
        ("dunning", "none", "2027-01"): (2, (2, 2, 2)),
        ("dunning", "none", "2027-02"): (3, (1, 1)),
        ("dunning", "recovered", "2027-01"): (1, (1, 1, 1)),  # F
    }
    by = {(r.dimension, r.value, r.month): r for r in g.retention}
    assert by[("all", "all", "2027-01")].share(0) == D("0.75")
    assert by[("all", "all", "2027-01")].share(3) is None


def test_a_price_rise_that_needs_consent() -> None:
    """streaming.rr raises premium_monthly on web_eu to EUR 13.99 from 2027-02-01, with
    consent: who consented, who did not, who was never asked, and new customers."""
    streaming = revrules.load(STREAMING)
    log = [
        co("p1", "2027-01-10T09:00:00Z", "P", "web_eu", "premium_monthly", "cp", 1),
        ev("p2", "payment_succeeded", "2027-01-10T09:00:05Z", "P"),
        co("q1", "2027-01-12T09:00:00Z", "Q", "web_eu", "premium_monthly", "cq", 1),
        ev("q2", "payment_succeeded", "2027-01-12T09:00:05Z", "Q"),
        co("r1", "2027-01-15T09:00:00Z", "R", "web_us", "premium_monthly", "cr", 1),
        ev("r2", "payment_succeeded", "2027-01-15T09:00:05Z", "R"),
        co("n1", "2027-02-02T09:00:00Z", "N", "web_eu", "premium_monthly", "cn", 1),
        ev("n2", "payment_succeeded", "2027-02-02T09:00:05Z", "N"),
        ev("p3", "renewal_due", "2027-02-10", "P"),  # held at 12.99, consent asked
        ev("p4", "payment_succeeded", "2027-02-10T00:00:05Z", "P"),
        ev("p5", "consent_given", "2027-02-11T09:00:00Z", "P"),
        ev("q3", "renewal_due", "2027-02-12", "Q"),  # held, asked, never answers
        ev("q4", "payment_succeeded", "2027-02-12T00:00:05Z", "Q"),
        ev("r3", "renewal_due", "2027-02-15", "R"),
        ev("r4", "payment_succeeded", "2027-02-15T00:00:05Z", "R"),
        ev("p6", "renewal_due", "2027-03-10", "P"),  # now at 13.99
        ev("p7", "payment_succeeded", "2027-03-10T00:00:05Z", "P"),
    ]
    _, done = Engine(streaming).run(log)
    assert all(o.ok for o in done), [o.error for o in done if not o.ok]
    prices = {o.event: [e.type for e in o.events if e.type.startswith(("consent", "price"))]
              for o in done}
    assert (prices["p3"], prices["q3"], prices["p5"], prices["p6"], prices["r3"]) == (
        ["consent.requested"], ["consent.requested"], ["consent.collected"],
        ["price.changed"], [])
    g = Growth.fold(done, streaming)
    assert {k: v for k, v in retention_table(g).items() if k[0] in ("price", "price_change")} == {
        ("price", "premium_monthly@web_eu#1", "2027-01"): (2, (2, 2, 2)),
        ("price", "premium_monthly@web_eu#2", "2027-02"): (1, (1, 1)),
        ("price", "premium_monthly@web_us#1", "2027-01"): (1, (1, 1, 1)),
        ("price_change", "consented", "2027-01"): (1, (1, 1, 1)),
        ("price_change", "none", "2027-01"): (1, (1, 1, 1)),
        ("price_change", "none", "2027-02"): (1, (1, 1)),
        ("price_change", "not consented", "2027-01"): (1, (1, 1, 1)),
    }
    assert [(p.id, p.list) for p in g.price_points] == [
        ("premium_monthly@web_eu#1", D("12.99")), ("premium_monthly@web_eu#2", D("13.99")),
        ("premium_monthly@web_us#1", D("13.99"))]


def test_retention_by_charges_and_promotion_revenue() -> None:
    g = Growth.fold(outcomes(), rules())
    assert [(c.plan, c.month, c.size, c.retained) for c in g.cohorts] == [
        ("basic", "2027-01", 1, (1, 1, 0)),
        ("premium", "2027-01", 3, (2, 1, 0)),
        ("premium", "2027-02", 3, (2, 0)),
    ]
    (welcome,) = g.promotions
    assert (welcome.promotion, welcome.currency, welcome.redemptions, welcome.payments,
            welcome.gross, welcome.discounts, welcome.net) == (
        "welcome", "EUR", 1, 1, D("11.99"), D("6.00"), D("5.99"))


def test_a_refunded_first_payment_still_converted() -> None:
    g = Growth.fold(outcomes(), rules())
    by = {(c.dimension, c.value): c for c in g.conversions}
    d = by[("price", "premium@web_eu#2")]
    assert (d.first_charges, d.refunded) == (2, 1)  # D paid, then had it refunded
    # but it is not retained: the refund canceled it in its first month
    assert retention_table(g)[("price", "premium@web_eu#2", "2027-02")] == (3, (1, 1))


def test_json_and_text_output() -> None:
    g = Growth.fold(outcomes(), rules())
    data = growth_to_wire(g)
    assert list(data) == ["conversion", "price_points", "retention_by_month", "retention",
                          "promotions"]
    assert data == g.to_json()
    assert data["price_points"][2] == {
        "id": "premium@web_eu#2", "plan": "premium", "storefront": "web_eu",
        "currency": "EUR", "list": "11.99", "effective": "2027-02-01", "contract": None}
    row = next(r for r in data["conversion"] if r["value"] == "premium@web_eu#1")
    assert row == {"by": "price", "value": "premium@web_eu#1", "started": 3, "trials": 2,
                   "trials_converted": 1, "trial_conversion": "0.5000",
                   "first_charges": 2, "first_charge_conversion": "0.6667", "refunded": 0}
    rows = g.rows()
    assert list(rows) == list(data)
    assert rows["conversion"][0]["first_charge_conversion"] == D(
        "0.7142857142857142857142857142857143")
    assert rows["promotions"][0]["net"] == D("5.99")
    text = render_growth(g)
    assert "  premium@web_eu#2  EUR 11.99   from 2027-02-01" in text
    assert "  price         premium@web_eu#1  2027-01     3   66.7%   66.7%   66.7%" in text
    assert render_growth(g, cycles=1).count("M1") == 0


def test_old_entry_points_agree() -> None:
    events = [e for o in outcomes() for e in o.events]
    whole = Growth.fold(outcomes(), rules())
    assert growth(events, rules()) == whole
    assert growth_of_outcomes(outcomes(), rules()) == whole
    assert Growth.from_events(events, rules()) == whole
    one_by_one = Growth(rules())
    for outcome in outcomes():
        assert one_by_one.add(outcome) is one_by_one
    assert one_by_one == whole
    by_event = Growth(rules())
    for e in events:
        by_event.add_event(e)
    assert by_event == whole
    assert len(whole) == 7


def _alive(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, cls))


def test_the_fold_keeps_no_outcome_or_event() -> None:
    """Memory follows subscriptions: nothing of an outcome stays alive in the fold.
    (The engine's value classes have no weakref slot, so the test counts live objects.)"""
    gc.collect()
    before = _alive(Outcome), _alive(RevenueEvent)
    _, done = Engine(rules()).run(LOG)
    assert _alive(Outcome) > before[0]

    def stream() -> Iterator[Outcome]:
        while done:
            yield done.pop(0)

    g = Growth.fold(stream(), rules())
    gc.collect()
    assert (_alive(Outcome), _alive(RevenueEvent)) == before
    assert conversion_table(g)[("all", "all")] == (7, 3, 1, 5, 1)


def test_merge_of_a_split_by_subscription() -> None:
    events = [e for o in outcomes() for e in o.events]
    part = [Growth.from_events([e for e in events if (e.subscription in "ABC") == side],
                               rules()) for side in (True, False)]
    whole = Growth.fold(outcomes(), rules())
    assert part[0] + part[1] == whole
    assert part[1].merge(part[0]) == whole
    assert Growth(rules()).merge(whole) == whole
    assert dumps(growth_to_wire(part[1] + part[0])) == dumps(growth_to_wire(whole))
    with pytest.raises(ValueError, match="subscription 'A' is in both folds"):
        whole.merge(part[0])
    # the merged fold is a new one: folding more into a part leaves it alone
    merged = part[0] + part[1]
    before = dumps(growth_to_wire(merged))
    late = [e for e in events if e.subscription == "A" and e.type == "payment.succeeded"]
    part[0].add_event(late[0])
    part[1].add_event(late[0])
    assert dumps(growth_to_wire(merged)) == before


def test_cli_growth(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "g.rr").write_text(RULES, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in LOG),
                                        encoding="utf-8")
    args = [str(tmp_path / "g.rr"), str(tmp_path / "log.jsonl")]
    assert main(["growth", *args, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(dumps(growth_to_wire(Growth.fold(outcomes(), rules()))))
    assert main(["growth", *args, "--format", "json"]) == 0
    assert capsys.readouterr().out == out  # byte-identical
    assert main(["growth", *args, "--months", "2"]) == 0
    text = capsys.readouterr().out
    assert "M1" in text and "M2" not in text and "N=3" not in text
    assert main(["growth", *args, "--months", "0"]) == 2
    assert "--months" in capsys.readouterr().err


# -- properties ------------------------------------------------------------------------


@cache
def generated() -> tuple[revrules.Ruleset, tuple[Outcome, ...]]:
    streaming = revrules.load(STREAMING)
    log = generate(streaming, customers=40, months=5, seed=7)
    _, done = Engine(streaming).run(log)
    return streaming, tuple(done)


def _single_valued(g: Growth) -> None:
    """Every dimension but promotion puts a subscription in exactly one bucket: the
    buckets add up to the ``all`` row (conversion) and cohort (retention)."""
    conv = {(c.dimension, c.value): c for c in g.conversions}
    total = conv.get(("all", "all"))
    if total is None:
        assert not g.conversions and not g.retention
        return
    for dimension in CONVERSION_DIMENSIONS[1:]:
        rows = [c for c in g.conversions if c.dimension == dimension]
        sums = tuple(sum(getattr(c, f) for c in rows) for f in (
            "started", "trials", "trials_converted", "first_charges", "refunded"))
        if dimension == "promotion":
            assert sums[0] >= total.started
            continue
        assert sums == (total.started, total.trials, total.trials_converted,
                        total.first_charges, total.refunded), dimension
    alls = {r.month: r for r in g.retention if r.dimension == "all"}
    for dimension in RETENTION_DIMENSIONS[1:]:
        if dimension == "promotion":
            continue
        for month, whole in alls.items():
            rows = [r for r in g.retention if r.dimension == dimension and r.month == month]
            assert sum(r.size for r in rows) == whole.size, (dimension, month)
            assert tuple(map(sum, zip(*(r.retained for r in rows), strict=True))) == \
                whole.retained, (dimension, month)
            for r in rows:
                assert all(0 <= n <= r.size for n in r.retained)


def test_buckets_add_up_on_a_generated_log() -> None:
    streaming, done = generated()
    g = Growth.fold(done, streaming)
    assert len(g) > 30
    _single_valued(g)
    assert {c.dimension for c in g.conversions} == set(CONVERSION_DIMENSIONS)


@settings(max_examples=int(os.environ.get("REVRULES_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_merge_of_any_split_equals_the_sequential_fold(data: st.DataObject) -> None:
    streaming, done = generated()
    events = [e for o in done if o.ok for e in o.events]
    subs = sorted({e.subscription for e in events})
    parts = data.draw(st.integers(1, 4))
    owner = {s: data.draw(st.integers(0, parts - 1)) for s in subs}
    folds = [Growth.from_events([e for e in events if owner[e.subscription] == k], streaming)
             for k in range(parts)]
    order = data.draw(st.permutations(range(parts)))
    merged = Growth(streaming)
    for k in order:
        merged = merged + folds[k]
    whole = Growth.fold(done, streaming)
    assert merged == whole
    assert dumps(growth_to_wire(merged)) == dumps(growth_to_wire(whole))
    for fold in folds:
        _single_valued(fold)


def test_output_is_identical_across_hash_seeds(tmp_path: Path) -> None:
    import subprocess
    import sys
    (tmp_path / "g.rr").write_text(RULES, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in LOG),
                                        encoding="utf-8")
    script = (
        "import sys\nfrom revrules.cli import main\n"
        "for rules, log in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):\n"
        "    main(['growth', rules, log])\n"
        "    main(['growth', rules, log, '--format', 'json'])\n")
    args = [sys.executable, "-c", script, str(tmp_path / "g.rr"), str(tmp_path / "log.jsonl"),
            str(STREAMING), str(ROOT / "examples" / "events.jsonl")]
    runs = [subprocess.run(args, env={**os.environ, "PYTHONPATH": str(ROOT / "src"),
                                      "PYTHONHASHSEED": seed},
                           capture_output=True, timeout=120, check=False)
            for seed in ("0", "1", "4242")]
    assert runs[0].returncode == 0, runs[0].stderr.decode()
    assert b"premium@web_eu#2" in runs[0].stdout
    assert runs[1].stdout == runs[0].stdout
    assert runs[2].stdout == runs[0].stdout
