"""Differential testing: compiled conditions against the reference interpreter.

Hypothesis generates rulesets (revrules.testing) and evaluation contexts; every
condition of the ruleset is evaluated by the generated Python code and by
tests/reference.py, and the two canonical results ("true", "false", "error:CODE")
must be identical. A disagreement prints the rule, both results and the shrunk
input. REVRULES_FUZZ_EXAMPLES runs more rulesets (default 80).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import revrules
from revrules import runtime as rt
from revrules.compiler import Ctx
from revrules.testing import customers, rulesets

sys.path.insert(0, str(Path(__file__).parent))
import reference  # noqa: E402

EXAMPLES = int(os.environ.get("REVRULES_FUZZ_EXAMPLES", "80"))


def compiled(rules: revrules.Ruleset, rule: Any, ctx: Ctx) -> str:
    predicate = rules.compiled.predicate(rule)
    assert predicate is not None
    try:
        with decimal.localcontext(rt.CONTEXT):
            return "true" if predicate(ctx) else "false"
    except rt.EvaluationError as exc:
        return f"error:{exc.code}"


def value(data: st.DataObject, kind: str) -> Any:
    if kind == "int":
        return data.draw(st.one_of(st.integers(-50, 50), st.sampled_from((10**18 - 1, 0))))
    if kind == "decimal":
        return Decimal(data.draw(st.sampled_from((
            "0", "1.5", "-2.25", "19.99", "0.001", "999999999999999999.999999999999999999",
            "-0E-18", "7"))))
    if kind == "string":
        return data.draw(st.sampled_from(("DE", "FR", "US", "", "consumer")))
    if kind == "bool":
        return data.draw(st.booleans())
    return data.draw(st.sampled_from((dt.date(2026, 6, 1), dt.date(1900, 1, 1),
                                      dt.date(2999, 12, 31), dt.date(2027, 2, 28))))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_compiled_conditions_agree_with_the_reference(data: st.DataObject) -> None:
    text = data.draw(rulesets(), label="ruleset")
    rules = revrules.load_text(text, "gen.rr")
    model = rules.model
    rule_list = reference.conditions(model)
    for _ in range(3):
        customer = {}
        for attr in model.attributes:
            present = data.draw(st.booleans())
            customer[attr.name] = value(data, attr.type) if present else attr.default
        sf = data.draw(st.sampled_from(model.storefronts))
        plan = data.draw(st.sampled_from(model.plans))
        at = data.draw(st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2999, 12, 31),
                                    timezones=st.just(dt.timezone.utc)))
        fields = dict(
            cycle=data.draw(st.integers(0, 30)),
            status=data.draw(st.sampled_from(("active", "trialing", "past_due", "paused"))),
            at=at, event_type=data.draw(st.sampled_from(("checkout", "renewal_due", "tick"))),
            total=(sf.currency, Decimal(data.draw(st.sampled_from(("0", "12.99", "0.01",
                                                                    "100000"))))),
            reason=data.draw(st.sampled_from((None, "card_declined"))),
            attempt=data.draw(st.integers(0, 4)),
            psp=data.draw(st.sampled_from((None, *sf.psps))))
        note(f"context: customer={customer!r} storefront={sf.name} plan={plan.name} "
             f"{fields!r}")
        ctx = Ctx(customer, "c1", sf, plan, fields["cycle"], fields["status"], at,
                  fields["event_type"], rt.Money(*fields["total"]), fields["reason"],
                  fields["attempt"], fields["psp"])
        env = reference.Env(model, customer, "c1", sf, plan, **fields)
        for rule in rule_list:
            ours, theirs = compiled(rules, rule, ctx), reference.run(rule.when, env)
            assert ours == theirs, (
                f"{rule.name} at {rule.span}: {rules.source_text(rule)}\n"
                f"compiled: {ours}\nreference: {theirs}")


def attribute(attr: Any, raw: Any) -> Any:
    if attr.type == "decimal":
        return Decimal(str(raw))
    if attr.type == "date":
        return dt.date.fromisoformat(raw)
    return raw


def decision_text(out: revrules.Outcome) -> str:
    if not out.ok:
        assert out.error is not None
        return f"error:{out.error.code}"
    d = out.decisions[0]
    discounts = ",".join(f"{x.rule}={x.amount}" for x in d.discounts)
    return (f"list={d.list} discounts={discounts} tax={d.tax} net={d.net} total={d.total} "
            f"psp={d.psp} trial_days={d.trial_days}")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_checkout_pricing_agrees_with_the_reference(data: st.DataObject) -> None:
    text = data.draw(rulesets(), label="ruleset")
    rules = revrules.load_text(text, "gen.rr")
    model = rules.model
    engine = revrules.Engine(rules)
    for i in range(3):
        sf = data.draw(st.sampled_from(model.storefronts))
        plan = data.draw(st.sampled_from(model.plans))
        raw = data.draw(customers(rules, f"c{i}"))
        at = data.draw(st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2028, 12, 31),
                                    timezones=st.just(dt.timezone.utc)))
        codes = sorted(p.code for p in model.promotions if p.code)
        code = data.draw(st.sampled_from([None, *codes, "NOPE"]))
        event: dict[str, Any] = {"id": f"e{i}", "type": "checkout",
                                 "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "subscription": f"s{i}", "storefront": sf.name,
                                 "plan": plan.name, "customer": raw}
        if code is not None:
            event["code"] = code
        customer = {a.name: attribute(a, raw[a.name]) if a.name in raw else a.default
                    for a in model.attributes}
        at = at.replace(microsecond=0)
        ours = decision_text(engine.apply(revrules.State(), event))
        theirs = reference.checkout(model, sf, plan, customer, raw["id"], at, code)
        note(f"event: {event!r}")
        if os.environ.get("SHOW"):
            print(ours)
        assert ours == theirs, f"compiled: {ours}\nreference: {theirs}"
