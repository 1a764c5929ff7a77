"""PSPs at run time (LANGUAGE.md §5.1 "PSPs"): a route line or a 'retry via' only ever
chooses a PSP the subscription's storefront lists; one it does not list is skipped."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State
from revrules.checker import _holds
from revrules.compiler import Ctx

RULES = """\
ruleset psps version "1"
storefront web_eu { channel web currency EUR tax exclusive psp adyen, stripe }
storefront web_us { channel web currency USD tax exclusive psp stripe }
product a { entitlements x }
plan monthly { product a every 1 month price web_eu EUR 10.00 price web_us USD 10.00 }
route {
  adyen when storefront.channel == web
  stripe otherwise
}
dunning plain { retry after 1 day, 3 days  retry via adyen  grace 5 days  then cancel }
"""
ENGINE = Engine(revrules.load_text(RULES, "psps.rr"))


def run(storefront: str) -> list[revrules.Outcome]:
    events: list[dict[str, Any]] = [
        {"id": "co", "type": "checkout", "at": "2027-01-01", "subscription": "s",
         "storefront": storefront, "plan": "monthly", "customer": {"id": "c"}},
        {"id": "fail", "type": "payment_failed", "at": "2027-01-01T01:00:00Z",
         "subscription": "s"},
        {"id": "tick", "type": "tick", "at": "2027-01-02"},
    ]
    _, outcomes = ENGINE.run(events, State())
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    return outcomes


def test_a_route_line_for_a_psp_the_storefront_does_not_list_is_skipped() -> None:
    checkout = run("web_us")[0].decisions[0]
    assert checkout.psp == "stripe"
    assert [t.rule for t in checkout.trace] == ["price monthly web_us", "route stripe"]
    assert run("web_eu")[0].decisions[0].psp == "adyen"


def test_retry_via_a_psp_the_storefront_does_not_list_goes_to_the_charges_psp() -> None:
    _, failed, tick = run("web_us")
    scheduled = [e for e in failed.events if e.type == "payment.retry_scheduled"]
    assert [(e.psp, str(e.date)) for e in scheduled] == [
        ("stripe", "2027-01-02"), ("stripe", "2027-01-04")]
    (retry,) = tick.decisions
    assert (retry.kind, retry.psp, str(retry.total)) == ("charge", "stripe", "10.00")


def test_retry_via_a_psp_the_storefront_lists() -> None:
    _, failed, tick = run("web_eu")
    assert {e.psp for e in failed.events if e.type == "payment.retry_scheduled"} == {"adyen"}
    assert tick.decisions[0].psp == "adyen"


# -- the checker's reading of conditions agrees with the compiled rules -----------------

SHAPES = """\
ruleset shapes version "1"
customer { vip: bool = false }
storefront web_eu { channel web region EU currency EUR tax inclusive psp adyen, card }
storefront web_us { channel web region US currency USD tax exclusive psp card }
storefront ios { channel app_store currency USD tax inclusive psp apple, card }
storefront telco { channel telecom region EU currency EUR tax inclusive psp carrier, card }
product a { entitlements x }
plan monthly { product a every 1 month price web_eu EUR 1.00 price web_us USD 1.00
               price ios USD 1.00 price telco EUR 1.00 }
"""
STOREFRONTS = ("web_eu", "web_us", "ios", "telco")
ATOMS = st.sampled_from([
    *(f"storefront {op} {s}" for op in ("==", "!=") for s in STOREFRONTS),
    "storefront in {web_eu, ios}", "storefront not in {web_us}",
    "subscription.storefront == telco",
    "storefront.channel == web", "storefront.channel in {app_store, telecom}",
    "storefront.region == EU", "storefront.region != US", 'storefront.currency == "USD"',
    'storefront.name == "ios"', "customer.vip", "not customer.vip", "true", "false",
])


def conditions() -> st.SearchStrategy[str]:
    return st.recursive(ATOMS, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"not ({c})")), max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(conditions())
def test_what_the_checker_knows_of_a_condition_is_what_it_evaluates_to(cond: str) -> None:
    rules = revrules.load_text(SHAPES + f"route {{ card when {cond} }}\n", "shapes.rr")
    ((route, test),) = rules.route
    assert route.rule.when is not None and test is not None
    for name in STOREFRONTS:
        sf = rules.storefronts[name]
        known = _holds(route.rule.when, sf)
        for vip in (False, True):
            ctx = Ctx({"vip": vip}, "c", sf, rules.plans["monthly"], 1, "active",
                      dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "checkout")
            if known is not None:
                assert test(ctx) is known, (cond, name, vip)
