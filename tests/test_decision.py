"""The pure decision path (revrules.decision) against the reference path.

Two implementations of one decision: the generated checkout decision of a (plan,
storefront) and the checkout transition run on a throw-away transaction
(``reference_quote``). Where the generated path answers, its quote equals the
reference's, field for field (trace and reasons too); where the reference refuses, the
generated path does not answer. The indexed first-match tables and the bisect price
schedules are compared with the linear scans they replace.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

import revrules
from revrules import decision, model as m
from revrules.compiler import Ctx
from revrules.decision import FirstMatch, Schedule, deciders, quote_checkout
from revrules.events import parse_event
from revrules.quoting import reference_quote
from revrules.testing import customers, event_sequences, rulesets

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
D = Decimal
PROPERTY = settings(max_examples=int(os.environ.get("REVRULES_DECISION_EXAMPLES", "30")),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
_ENGINES: dict[str, revrules.Engine] = {}


def _engine(path: Path) -> revrules.Engine:
    if str(path) not in _ENGINES:
        _ENGINES[str(path)] = revrules.Engine(revrules.load(path))
    return _ENGINES[str(path)]


def _compare(engine: revrules.Engine, wanted: dict[str, Any],
             state: revrules.State | None) -> str:
    """Both paths on one checkout; what happened, for the statistics."""
    event = parse_event(wanted)
    fast = quote_checkout(engine, event, state)
    try:
        reference = reference_quote(engine, event, state)
    except revrules.QuoteError as exc:
        assert fast is None, f"the reference refuses ({exc.code}), the generated path: {fast}"
        return "refused"
    if fast is None:
        return "reference only"
    assert fast == reference
    # and the public entry point gives the same
    assert engine.quote(event, state) == reference
    return "trial" if fast.trial_days or fast.charge_date != event.at.date() else "charged"


def _checkout(data: st.DataObject, rules: revrules.Ruleset, sub: str = "q1") -> dict[str, Any]:
    model = rules.model
    wanted = {"id": "q", "type": "checkout",
              "at": data.draw(st.sampled_from(("2026-06-15T10:00:00Z", "2026-11-28T23:30:00Z",
                                               "2027-01-31T23:30:00Z", "2027-03-01T00:00:00Z",
                                               "2027-06-30T12:00:00Z")), label="at"),
              "subscription": sub,
              "storefront": data.draw(st.sampled_from([s.name for s in model.storefronts])),
              "plan": data.draw(st.sampled_from([p.name for p in model.plans])),
              "customer": data.draw(customers(rules), label="customer")}
    codes = sorted(p.code for p in model.promotions if p.code)
    if codes and data.draw(st.booleans()):
        code = data.draw(st.sampled_from(codes))
        wanted["code"] = data.draw(st.sampled_from((code, code.lower(), code + "X")))
    return wanted


@PROPERTY
@given(st.data())
def test_generated_checkout_equals_the_reference_on_generated_rulesets(
        data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    engine = revrules.Engine(rules)
    for _ in range(4):
        label(_compare(engine, _checkout(data, rules), None))


@PROPERTY
@given(st.data())
def test_generated_checkout_equals_the_reference_against_a_state(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    engine = revrules.Engine(rules)
    state = revrules.State()
    for logged in data.draw(event_sequences(rules, max_size=8), label="log"):
        state = engine.apply(state, logged).state
    # a new subscription, or one of the log's (a duplicate the reference refuses)
    sub = data.draw(st.sampled_from(("q1", "s1", "s2")))
    label(_compare(engine, _checkout(data, rules, sub), state))


@PROPERTY
@given(st.data())
def test_generated_checkout_equals_the_reference_in_the_bundled_ruleset(
        data: st.DataObject) -> None:
    engine = _engine(STREAMING)
    state = revrules.State()
    if data.draw(st.booleans()):
        for logged in data.draw(event_sequences(engine.rules, max_size=6), label="log"):
            state = engine.apply(state, logged).state
    for _ in range(4):
        label(_compare(engine, _checkout(data, engine.rules), state))


def test_the_bundled_ruleset_over_a_grid_of_checkouts() -> None:
    """Every plan × storefront × day × customer × code of streaming.rr, both paths."""
    engine = _engine(STREAMING)
    model = engine.rules.model
    seen: Counter[str] = Counter()
    for plan in model.plans:
        for sf in model.storefronts:
            for at in ("2026-11-28T10:00:00Z", "2027-01-25T10:00:00Z", "2027-03-01T09:00:00Z"):
                for customer in ({"id": "c1", "country": "DE"},
                                 {"id": "c2", "country": "FR", "trials_used": 1},
                                 {"id": "c-acme", "country": "JP", "segment": "business"},
                                 {"id": "c3", "country": "US", "trials_used": 0}):
                    for code in (None, "BF2026", "bf2026", "BF2062"):
                        wanted = {"id": "g", "type": "checkout", "at": at,
                                  "subscription": "s1", "storefront": sf.name,
                                  "plan": plan.name, "customer": customer}
                        if code:
                            wanted["code"] = code
                        seen[_compare(engine, wanted, None)] += 1
    # the generated path decides the checkouts it covers, the reference the rest
    assert seen["charged"] > 100 and seen["trial"] > 50, seen
    assert seen["reference only"] == 0, seen


def test_the_benchmark_checkout_takes_the_generated_path() -> None:
    engine = _engine(STREAMING)
    event = parse_event({"id": "e1", "type": "checkout", "at": "2026-11-15",
                         "subscription": "s1", "storefront": "web_eu",
                         "plan": "premium_monthly",
                         "customer": {"id": "c1", "country": "DE", "trials_used": 1}})
    q = quote_checkout(engine, event, None)
    assert q is not None
    assert (q.list, q.tax, q.net, q.total, q.psp, q.reasons) == (
        D("12.99"), D("2.07"), D("10.92"), D("12.99"), "stripe",
        ("trial_ok: trial already used",))
    assert q == reference_quote(engine, event)


def test_a_price_held_for_consent_at_the_trial_end() -> None:
    engine = _engine(STREAMING)
    event = parse_event({"id": "e1", "type": "checkout", "at": "2027-01-25T10:00:00Z",
                         "subscription": "s1", "storefront": "web_eu",
                         "plan": "premium_monthly", "customer": {"id": "c1", "country": "FR"}})
    q = quote_checkout(engine, event, None)
    assert q is not None and q == reference_quote(engine, event)
    assert (q.list, q.charge_date, q.trial_days, q.reasons) == (
        D("12.99"), dt.date(2027, 2, 8), 14,
        ("held at the old price EUR 12.99 until the customer consents to EUR 13.99 from "
         "2027-02-01 (streaming.rr:43:3)",))


def test_the_callers_decimal_context_changes_nothing() -> None:
    engine = _engine(STREAMING)
    event = parse_event({"id": "e1", "type": "checkout", "at": "2026-11-28T10:00:00Z",
                         "subscription": "s1", "storefront": "web_us",
                         "plan": "premium_monthly", "code": "BF2026",
                         "customer": {"id": "c1", "country": "US", "trials_used": 1}})
    expected = reference_quote(engine, event)
    with decimal.localcontext(decimal.Context(prec=2, rounding=decimal.ROUND_UP,
                                              traps=[decimal.Inexact, decimal.Rounded])):
        assert quote_checkout(engine, event, None) == expected


def test_decimal_arithmetic_in_a_condition_runs_under_the_engines_context() -> None:
    rules = revrules.load_text("""ruleset d
customer { score: decimal = 0 }
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements hd }
plan m { product p every 1 month price web EUR 9.99 }
tax vat { rate 19% when customer.score * 3 > 1.000001  rate 7% }
""")
    engine = revrules.Engine(rules)
    assert deciders(engine.rules).checkout("m", "web").needs_context
    event = parse_event({"id": "e1", "type": "checkout", "at": "2027-01-31T10:00:00Z",
                         "subscription": "s1", "storefront": "web", "plan": "m",
                         "customer": {"id": "c1", "score": "0.333334"}})
    expected = reference_quote(engine, event)
    assert expected.tax == D("1.60")  # 1.000002 > 1.000001 at full precision
    with decimal.localcontext(decimal.Context(prec=3)):
        assert quote_checkout(engine, event, None) == expected


# -- the tables ------------------------------------------------------------------------

def _scan(model: m.Model, items: list[tuple[m.Rule, Any]], ctx: Ctx,
          accept: Any = None) -> int | None:
    for position, (_, test) in enumerate(items):
        if (accept is None or accept(position)) and (test is None or test(ctx)):
            return position
    return None


def _ctx(rules: revrules.Ruleset, customer: dict[str, Any], sf: m.Storefront,
         plan: m.Plan) -> Ctx:
    return Ctx(customer, "c1", sf, plan, 1, "active", dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
               "checkout", rt_money(sf.currency, "10"))


def rt_money(currency: str, amount: str) -> Any:
    from revrules.runtime import Money

    return Money(currency, Decimal(amount))


BIG = """ruleset big
customer { country: string  tier: int = 0 }
storefront web { channel web currency EUR tax inclusive psp stripe, adyen }
storefront app { channel app_store currency EUR tax inclusive psp apple }
product p { entitlements hd }
plan m { product p every 1 month price web EUR 9.99 price app EUR 9.99 }
tax vat {
%s
}
route {
%s
}
"""


def big_ruleset(count: int) -> str:
    """``count`` tax rates on the country (a run broken once by another test, with a
    duplicate value) and ``count`` route lines on the storefront and the tier."""
    rates = [f'  rate {i % 25}% when customer.country == "C{i}"' for i in range(count)]
    rates.insert(count // 2, "  rate 3% when customer.tier > 5")
    rates.insert(count // 2 + 1, f'  rate 4% when customer.country in {{"C{count - 1}", "XX"}}')
    rates.append("  rate 0%")
    routes = [f"  {'adyen' if i % 2 else 'stripe'} when customer.tier == {i}"
              for i in range(count)]
    routes.append("  apple when storefront == app")
    routes.append("  stripe otherwise")
    return BIG % ("\n".join(rates), "\n".join(routes))


@pytest.mark.parametrize("count", [8, 800])
def test_indexed_tables_find_what_a_scan_finds(count: int) -> None:
    rules = revrules.load_text(big_ruleset(count), "big.rr")
    model = rules.model
    tax = FirstMatch(model, [r.rule for r, _ in rules.taxes[0]], [t for _, t in rules.taxes[0]])
    route = FirstMatch(model, [line.rule for line, _ in rules.route],
                       [t for _, t in rules.route])
    assert len(tax.segments) <= 5 and len(route.segments) <= 4  # a few lookups, not a scan
    plan = rules.plans["m"]
    for sf in model.storefronts:
        for country in ("C0", "C1", f"C{count // 2}", f"C{count - 1}", "XX", "ZZ"):
            for tier in (0, 1, 6, count - 1, count + 3):
                ctx = _ctx(rules, {"country": country, "tier": tier}, sf, plan)
                assert tax.first(ctx) == _scan(model, list(rules.taxes[0]), ctx)
                accept = lambda i, psps=sf.psps: rules.route[i][0].psp in psps  # noqa: E731
                assert route.first(ctx, accept) == _scan(model, list(rules.route), ctx, accept)
                engine = revrules.Engine(rules)
                event = parse_event({
                    "id": "e", "type": "checkout", "at": "2027-01-01", "subscription": "s",
                    "storefront": sf.name, "plan": "m",
                    "customer": {"id": "c1", "country": country, "tier": tier}})
                fast = quote_checkout(engine, event, None)
                assert fast is not None and fast == reference_quote(engine, event)


def test_a_run_keeps_the_first_rule_of_a_repeated_value() -> None:
    rules = revrules.load_text(BIG % ('  rate 7% when customer.country == "DE"\n'
                                      '  rate 9% when customer.country == "DE"\n  rate 0%',
                                      "  stripe otherwise"), "dup.rr")
    engine = revrules.Engine(rules)
    q = engine.quote({"id": "e", "type": "checkout", "at": "2027-01-01", "subscription": "s",
                      "storefront": "web", "plan": "m", "customer": {"id": "c", "country": "DE"}})
    assert q.tax == D("0.65") and q.trace[1] == revrules.Trace("tax vat", "dup.rr:8:3")


_days = st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31))


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _days), st.one_of(st.none(), _days)),
                max_size=6), _days, st.booleans())
def test_a_schedule_finds_what_a_scan_finds(lines: list[tuple[Any, Any]], day: dt.date,
                                            existing: bool) -> None:
    span = m.Span("x.rr", 1, 1, 1, 1)
    entries = [m.PriceEntry("web", "EUR", Decimal(i), effective, existing_from, False, span)
               for i, (effective, existing_from) in enumerate(lines)]
    assert Schedule(entries, existing).on(day) is decision._scan(entries, day, existing)


@pytest.mark.parametrize(("route", "psp_or_code"), [
    ("adyen when total >= EUR 5.00\n  stripe otherwise", "adyen"),
    ("adyen when EUR 50.00 < total\n  stripe otherwise", "stripe"),
    ("adyen when total * 2 >= EUR 19.98\n  stripe otherwise", "adyen"),
    ("adyen when total != EUR 9.99\n  stripe otherwise", "stripe"),
    ("adyen when total >= USD 5.00\n  stripe otherwise", "currency_mismatch"),
])
def test_route_lines_on_the_total(route: str, psp_or_code: str) -> None:
    rules = revrules.load_text(BIG % ("  rate 19%", route), "route.rr")
    engine = revrules.Engine(rules)
    event = parse_event({"id": "e", "type": "checkout", "at": "2027-01-01", "subscription": "s",
                         "storefront": "web", "plan": "m", "customer": {"id": "c"}})
    try:
        expected = reference_quote(engine, event)
    except revrules.QuoteError as exc:
        assert exc.code == psp_or_code
        assert quote_checkout(engine, event, None) is None
        return
    fast = quote_checkout(engine, event, None)
    assert fast is not None and fast == expected and fast.psp == psp_or_code


def test_a_coverage_build_tests_every_rule_in_order() -> None:
    """A coverage build records each condition it evaluates: its tables are not indexed,
    and its quotes take the transition (so the same conditions are seen as by a scan)."""
    from revrules.coverage import Coverage

    coverage = Coverage(revrules.load(STREAMING))
    engine = coverage.engine()
    assert not engine.rules.decision_tables.index
    assert all(seg[0] == "test" for seg in engine.rules.decision_tables.taxes[0].segments)
    event = parse_event({"id": "e1", "type": "checkout", "at": "2026-11-15",
                         "subscription": "s1", "storefront": "web_eu",
                         "plan": "premium_monthly", "customer": {"id": "c1", "country": "JP"}})
    assert quote_checkout(engine, event, None) is None
    assert engine.quote(event) == reference_quote(_engine(STREAMING), event)
    coverage.observe(engine.apply(revrules.State(), event))
    seen = {c.text: (c.true > 0, c.false > 0) for c in coverage.report().conditions
            if c.rule == "tax vat"}
    # DE and FR seen false, JP true: the scan went through the rates in order
    assert seen == {'customer.country == "DE"': (False, True),
                    'customer.country == "FR"': (False, True),
                    'customer.country == "JP"': (True, False)}, seen


def test_a_bad_state_is_refused_before_a_bad_event() -> None:
    engine = _engine(STREAMING)
    for quote in (engine.quote, lambda e, s: reference_quote(engine, e, s)):
        with pytest.raises(revrules.QuoteError) as caught:
            quote({"type": "checkout"}, "not a state")  # type: ignore[operator]
        assert caught.value.code == "bad_state"
