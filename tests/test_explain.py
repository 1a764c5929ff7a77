"""``revrules explain``: every figure cites the rule and the ``file:line:col`` behind it.

Each test applies a short log to a small ruleset and reads the explanation of one
event, asserting the exact lines a user sees.
"""

from __future__ import annotations

from typing import Any

import revrules
from revrules.explain import explain, render_explanation

RULES = """\
ruleset ex version "1"
customer { country: string }
storefront web { channel web currency EUR tax exclusive psp stripe }
product a { entitlements x }
product b { entitlements x, y }
plan basic {
  product a
  every 1 month
  price web EUR 10.00
  price web EUR 12.00 from 2027-02-01 consent required
  upgrade to premium immediate prorate
}
plan premium {
  product b
  every 1 month
  price web EUR 30.00
}
promotion welcome { automatic plans basic amount EUR 1.00 off once }
promotion half { code "HALF" percent 50 off once }
promotion tiny { code "TINY" percent 5 off once }
dunning standard {
  retry after 1 day
  no retry when payment.reason in {"stolen_card"}
  grace 5 days
}
"""
RULESET = revrules.load_text(RULES, "ex.rr")


def checkout(eid: str, sub: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": "checkout", "at": at, "subscription": sub, "storefront": "web",
            "plan": "basic", "customer": {"id": f"c-{sub}", "country": "DE"}, **fields}


def event(eid: str, kind: str, sub: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "at": at, "subscription": sub, **fields}


def lines(log: list[dict[str, Any]], event_id: str) -> list[str]:
    x = explain(RULESET, log, event_id)
    assert x.outcome.ok, x.outcome.error
    return render_explanation(x).splitlines()


def test_an_automatic_promotion_beaten_by_a_code_is_a_rejected_candidate() -> None:
    out = lines([checkout("co", "s", "2027-01-10", code="HALF")], "co")
    assert "  discount          −5.00   half (ex.rr:19:1)  `promotion half { code \"HALF\" percent 50 " \
        "off once }`" in out
    assert "    welcome outbid by half   (ex.rr:18:1)" in out


def test_a_code_beaten_by_an_automatic_promotion_is_a_rejected_candidate() -> None:
    out = lines([checkout("co", "s", "2027-01-10", code="TINY")], "co")
    assert "    tiny outbid by welcome   (ex.rr:20:1)" in out
    assert not any("welcome outbid" in line for line in out)


def test_a_renewal_held_at_the_old_price_cites_the_old_price_line_and_why() -> None:
    log = [checkout("co", "s", "2027-01-10"),
           event("paid", "payment_succeeded", "s", "2027-01-10T00:01:00Z"),
           event("renew", "renewal_due", "s", "2027-02-10")]
    out = lines(log, "renew")
    assert "  list price        10.00   price basic web (ex.rr:9:3)  `price web EUR 10.00`" in out
    assert ("    held at the old price EUR 10.00 until the customer consents to EUR 12.00 "
            "from 2027-02-01 (ex.rr:10:3)") in out
    decision = explain(RULESET, log, "renew").outcome.decisions[0]
    assert decision.reasons == ("held at the old price EUR 10.00 until the customer consents "
                                "to EUR 12.00 from 2027-02-01 (ex.rr:10:3)",)
    renewed = next(e for e in explain(RULESET, log, "renew").outcome.events
                   if e.type == "subscription.renewed")
    assert (renewed.rule, renewed.source) == ("price basic web", "ex.rr:9:3")


def test_an_upgrades_prorated_list_price_cites_the_new_plans_price_line() -> None:
    log = [checkout("co", "s", "2027-01-01"),
           event("paid", "payment_succeeded", "s", "2027-01-01T00:01:00Z"),
           event("up", "plan_change_requested", "s", "2027-01-17", plan="premium")]
    out = lines(log, "up")
    # 15 unused of 31 days: 30.00 × 15/31 = 14.52, credit (10.00 − 1.00) × 15/31 = 4.35
    assert "  list price        14.52   price premium web (ex.rr:16:3)  `price web EUR 30.00`" \
        in out
    assert [t.rule for t in explain(RULESET, log, "up").outcome.decisions[0].trace] == [
        "plan basic upgrade", "price premium web", "storefront web psp"]


def test_a_hard_decline_cites_the_no_retry_line() -> None:
    log = [checkout("co", "s", "2027-01-10"),
           event("fail", "payment_failed", "s", "2027-01-10T00:01:00Z", reason="stolen_card")]
    out = lines(log, "fail")
    assert ('    dunning standard: no retry when payment.reason in {"stolen_card"}   '
            "(ex.rr:23:3)") in out
