"""Properties of the evaluator, checked with hypothesis on rulesets/streaming.rr.

Money never becomes a float; every decision's figures add up and are rounded to the
currency's minor units; rounding agrees with ``Decimal.quantize``; the same input
gives byte-identical output (also across hash seeds); replays change nothing; and
compilation is deterministic.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import immutables
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Decision, Engine, Outcome, State, wire
from revrules.compiler import generated_source
from revrules.runtime import add_periods, exponent, quantize, split_inclusive

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
RULES = revrules.load(STREAMING)
ENGINE = Engine(RULES)

# vat in streaming.rr, by customer country (no country: no rate matches but 0%)
VAT = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "JP": Decimal("0.10")}

# (plan, storefront) pairs where the plan is sold, in declaration order
SOLD = [(plan.name, sf.name) for plan in RULES.model.plans for sf in RULES.model.storefronts
        if (plan.name, sf.name) in RULES.prices and sf.name not in plan.not_sold]
PLANS = sorted({p for p, _ in SOLD})

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- strategies ------------------------------------------------------------------------

# half the checkouts fall around Black Friday (BF2026 is valid 2026-11-27..2026-12-01)
days = st.one_of(
    st.dates(min_value=dt.date(2026, 11, 1), max_value=dt.date(2027, 12, 31)),
    st.dates(min_value=dt.date(2026, 11, 25), max_value=dt.date(2026, 12, 2)),
)


@st.composite
def checkouts(draw: st.DrawFn) -> dict[str, Any]:
    """A checkout: a plan, a storefront it is sold in, a customer, maybe BF2026."""
    plan = draw(st.sampled_from(PLANS) | st.just("premium_monthly"))  # the one with BF2026
    storefront = draw(st.sampled_from([s for p, s in SOLD if p == plan]))
    customer: dict[str, Any] = {"id": draw(st.sampled_from(["c1", "c2", "c-acme"])),
                                "trials_used": draw(st.sampled_from([0, 1]))}
    country = draw(st.sampled_from(["DE", "FR", "JP", "US", None]))
    if country is not None:
        customer["country"] = country
    event: dict[str, Any] = {
        "type": "checkout", "at": draw(days).isoformat(), "storefront": storefront,
        "plan": plan, "customer": customer}
    if draw(st.integers(0, 2)):
        event["code"] = "BF2026"
    return event


ACTIONS = ("pay", "pay", "fail", "renew", "renew", "renew", "tick", "change", "change",
           "cancel", "refund", "pause", "resume", "consent")


@st.composite
def scripts(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, int, int, int]]]:
    """Checkouts and then follow-up actions: (kind, which subscription, days later, choice)."""
    starts = draw(st.lists(checkouts(), min_size=1, max_size=3))
    actions = draw(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2),
                                      st.integers(0, 40), st.integers(0, 3)), max_size=10))
    return starts, actions


def build_log(script: tuple[list[dict[str, Any]], list[tuple[str, int, int, int]]]
              ) -> list[dict[str, Any]]:
    """Turn a script into an event log, consulting the engine for due dates."""
    starts, actions = script
    starts = sorted(starts, key=lambda e: e["at"])
    events: list[dict[str, Any]] = []
    state = State()
    subs = []
    for i, start in enumerate(starts):
        event = {**start, "id": f"e{len(events) + 1}", "subscription": f"s{i + 1}"}
        events.append(event)
        state = ENGINE.apply(state, event).state
        subs.append(event["subscription"])
    clock = dt.date.fromisoformat(starts[-1]["at"])
    for kind, which, later, choice in actions:
        sub_id = subs[which % len(subs)]
        clock += dt.timedelta(days=later)
        sub = state.subscription(sub_id)
        event: dict[str, Any] = {"id": f"e{len(events) + 1}", "subscription": sub_id}
        if kind == "pay":
            event.update(type="payment_succeeded")
        elif kind == "fail":
            event.update(type="payment_failed",
                         reason=["card_declined", "stolen_card", "insufficient_funds",
                                 "expired_card"][choice])
        elif kind == "renew":
            if sub is not None:
                if sub.charge is not None and choice:  # usually pay first, so renewal can go on
                    state = ENGINE.apply(state, paid(len(events) + 1, sub_id, clock)).state
                    events.append(paid(len(events) + 1, sub_id, clock))
                    event["id"] = f"e{len(events) + 1}"
                due = add_periods(sub.anchor, RULES.plans[sub.plan].every, sub.index)
                clock = max(clock, due)
            event.update(type="renewal_due")
        elif kind == "tick":
            event = {"id": event["id"], "type": "tick"}
        elif kind == "change":
            if sub is not None and sub.charge is not None and choice:
                state = ENGINE.apply(state, paid(len(events) + 1, sub_id, clock)).state
                events.append(paid(len(events) + 1, sub_id, clock))
                event["id"] = f"e{len(events) + 1}"
            plan = RULES.plans[sub.plan] if sub is not None else None
            targets = [c.target for c in plan.changes] if plan and plan.changes else PLANS
            event.update(type="plan_change_requested", plan=targets[choice % len(targets)])
        elif kind == "consent":
            event.update(type="consent_given" if choice % 2 else "consent_declined")
        else:
            event.update(type=f"{kind}_requested")
        event["at"] = clock.isoformat()
        events.append(event)
        state = ENGINE.apply(state, event).state
    return events


def paid(number: int, sub_id: str, day: dt.date) -> dict[str, Any]:
    return {"id": f"e{number}", "type": "payment_succeeded", "subscription": sub_id,
            "at": day.isoformat()}


def run(events: list[dict[str, Any]], engine: Engine = ENGINE) -> list[Outcome]:
    return engine.run(events, State())[1]


# -- walking values --------------------------------------------------------------------


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every leaf value inside attrs classes, tuples, lists, dicts and immutables.Maps."""
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from walk(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")
    elif isinstance(value, (dict, immutables.Map)):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    else:
        yield path, value


def _decimal_annotation(annotation: Any) -> str | None:
    """"Decimal", "Decimal | None" or None, whether annotations are strings or resolved."""
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        return {"Decimal": "Decimal", "Decimal|None": "Decimal | None"}.get(text)
    if annotation is Decimal:
        return "Decimal"
    if set(typing.get_args(annotation)) == {Decimal, type(None)}:
        return "Decimal | None"
    return None


def decimal_fields(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """(path, value) of every attrs field annotated as Decimal, recursively."""
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            kind = _decimal_annotation(field.type)
            if kind == "Decimal" or (kind == "Decimal | None" and item is not None):
                yield f"{path}.{field.name}", item
            yield from decimal_fields(item, f"{path}.{field.name}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from decimal_fields(item, f"{path}[{i}]")
    elif isinstance(value, (dict, immutables.Map)):
        for key, item in value.items():
            yield from decimal_fields(item, f"{path}.{key}")


def _no_float(text: str) -> Any:
    raise AssertionError(f"a float in JSON output: {text}")


def strict_loads(text: str) -> Any:
    return json.loads(text, parse_float=_no_float,
                      parse_constant=lambda name: _no_float(name))


def money_fields(decision: Decision) -> list[tuple[str, Decimal]]:
    fields = [(name, getattr(decision, name)) for name in ("list", "credit", "tax", "net", "total")]
    fields += [(f"discount {d.rule}", d.amount) for d in decision.discounts]
    return fields


# -- money is never a float ------------------------------------------------------------


def test_walk_finds_decimal_fields() -> None:
    decision = Decision("s1", "charge", "EUR", Decimal("1.00"))
    paths = dict(decimal_fields(decision))
    assert {"$.list", "$.credit", "$.tax", "$.net", "$.total"} <= set(paths)
    outcome = ENGINE.apply(State(), {
        "id": "e1", "type": "checkout", "at": "2027-03-01", "subscription": "s1",
        "storefront": "web_eu", "plan": "basic_monthly", "customer": {"id": "c1"}})
    found = {path for path, _ in decimal_fields(outcome)}
    assert "$.decisions[0].total" in found
    assert "$.events[0].gross" in found
    assert "$.state.subscriptions.s1.price" in found
    assert "$.state.subscriptions.s1.charge.total" in found


@FAST
@given(st.lists(checkouts(), min_size=1, max_size=4))
def test_checkout_money_never_becomes_float(starts: list[dict[str, Any]]) -> None:
    events = [{**e, "id": f"e{i}", "subscription": f"s{i}"} for i, e in enumerate(starts)]
    for outcome in run(events):
        assert outcome.ok, outcome.error
        for path, value in walk(outcome):
            assert not isinstance(value, float), path
        for path, value in decimal_fields(outcome):
            assert type(value) is Decimal, (path, value)
        for decision in outcome.decisions:
            for name, amount in money_fields(decision):
                assert type(amount) is Decimal, name
        strict_loads(wire.outcome_to_json(outcome))
        strict_loads(wire.state_to_json(outcome.state))


@FAST
@given(scripts())
def test_money_never_becomes_float_over_a_log(script: Any) -> None:
    for outcome in run(build_log(script)):
        for path, value in walk(outcome):
            assert not isinstance(value, float), path
        for path, value in decimal_fields(outcome):
            assert type(value) is Decimal, (path, value)
        line = wire.outcome_to_json(outcome)
        assert "\n" not in line
        strict_loads(line)


def test_strict_loads_rejects_floats() -> None:
    try:
        strict_loads('{"total": 12.99}')
    except AssertionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a float went through")
    assert strict_loads('{"total": "12.99", "n": 3}') == {"total": "12.99", "n": 3}


# -- figures add up --------------------------------------------------------------------


def check_figures(outcome: Outcome) -> None:
    for d in outcome.decisions:
        if d.kind == "refund":
            assert d.net == d.total - d.tax and 0 <= d.tax <= d.total, d
        if d.kind not in ("charge", "credit"):
            continue
        assert d.currency is not None
        sub = outcome.state.subscription(d.subscription)
        assert sub is not None
        sf = RULES.storefronts[sub.storefront]
        assert d.currency == sf.currency
        q = exponent(d.currency)
        for name, amount in money_fields(d):
            assert amount == amount.quantize(q), (name, amount, d)
            assert amount.as_tuple().exponent == q.as_tuple().exponent, (name, amount, d)
            assert amount >= 0, (name, amount, d)
        discounts = sum((x.amount for x in d.discounts), Decimal(0))
        base = d.list - discounts - d.credit
        rate = VAT.get(sub.customer.get("country"), Decimal(0))
        if sf.tax_inclusive:
            assert base == d.total, d
            assert d.net == d.total - d.tax, d
            expected_tax = (d.total * rate / (1 + rate)).quantize(q, decimal.ROUND_HALF_EVEN)
            assert d.tax == expected_tax, (d, rate)
        else:
            assert base == d.net == d.total - d.tax, d
            assert d.tax == (d.net * rate).quantize(q, decimal.ROUND_HALF_EVEN), (d, rate)


@FAST
@given(st.lists(checkouts(), min_size=1, max_size=4))
def test_checkout_figures_add_up(starts: list[dict[str, Any]]) -> None:
    events = [{**e, "id": f"e{i}", "subscription": f"s{i}"} for i, e in enumerate(starts)]
    for outcome in run(events):
        assert outcome.ok, outcome.error
        (decision,) = outcome.decisions
        assert decision.kind == "charge"
        check_figures(outcome)


# a discounted charge that fails and is retried: the retry restates the open charge
DISCOUNTED_RETRY = ([
    {"type": "checkout", "at": "2026-11-28", "storefront": "web_us", "plan": "premium_monthly",
     "customer": {"id": "c1", "trials_used": 1, "country": "US"}, "code": "BF2026"},
], [("fail", 0, 0, 0), ("tick", 0, 1, 0)])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scripts())
@example(DISCOUNTED_RETRY)
def test_every_decision_adds_up_over_a_log(script: Any) -> None:
    for outcome in run(build_log(script)):
        if outcome.ok:
            check_figures(outcome)


@FAST
@given(scripts())
def test_every_amount_is_in_minor_units(script: Any) -> None:
    for outcome in run(build_log(script)):
        for d in outcome.decisions:
            if d.currency is None:
                continue
            q = exponent(d.currency)
            for name, amount in money_fields(d):
                assert amount == amount.quantize(q), (name, amount)
        for e in outcome.events:
            q = exponent(e.currency)
            for name in ("gross", "discount", "credit", "tax", "net", "amount", "commission"):
                amount = getattr(e, name)
                assert amount == amount.quantize(q), (e.type, name, amount)


# -- rounding --------------------------------------------------------------------------

CURRENCIES = ("EUR", "JPY", "KWD")
amounts = st.decimals(min_value=0, max_value=Decimal(1000000), places=4, allow_nan=False,
                      allow_infinity=False)
rates = st.integers(min_value=0, max_value=10000).map(lambda bp: Decimal(bp).scaleb(-4))


def reference(value: Decimal, currency: str) -> Decimal:
    with decimal.localcontext(decimal.Context(prec=60)):
        return value.quantize(exponent(currency), rounding=decimal.ROUND_HALF_EVEN)


def test_exponents() -> None:
    assert exponent("EUR") == Decimal("0.01")
    assert exponent("JPY") == Decimal(1)
    assert exponent("KWD") == Decimal("0.001")


@settings(max_examples=200, deadline=None)
@given(amounts, st.sampled_from(CURRENCIES))
def test_quantize_matches_decimal_quantize(amount: Decimal, currency: str) -> None:
    result = quantize(amount, currency)
    assert result == reference(amount, currency)
    assert result.as_tuple().exponent == exponent(currency).as_tuple().exponent


@settings(max_examples=200, deadline=None)
@given(amounts, rates, st.sampled_from(CURRENCIES))
@example(Decimal("12.99"), Decimal("0.19"), "EUR")
@example(Decimal(1200), Decimal("0.10"), "JPY")
@example(Decimal("12.99"), Decimal(0), "EUR")
def test_split_inclusive_matches_reference(amount: Decimal, rate: Decimal,
                                           currency: str) -> None:
    amount = quantize(amount, currency)
    result = split_inclusive(amount, rate, currency, decimal.ROUND_HALF_EVEN)
    with decimal.localcontext(decimal.Context(prec=60)):
        exact = amount * rate / (1 + rate)
    assert result == reference(exact, currency)
    assert result.as_tuple().exponent == exponent(currency).as_tuple().exponent, result
    assert 0 <= result <= amount


def test_split_inclusive_known_values() -> None:
    assert split_inclusive(Decimal("12.99"), Decimal("0.19"), "EUR", decimal.ROUND_HALF_EVEN) \
        == Decimal("2.07")
    assert split_inclusive(Decimal(1200), Decimal("0.10"), "JPY", decimal.ROUND_HALF_EVEN) \
        == Decimal(109)
    # 0.125 → half-even goes to the even neighbour
    assert quantize(Decimal("0.125"), "EUR") == Decimal("0.12")
    assert quantize(Decimal("0.135"), "EUR") == Decimal("0.14")
    assert quantize(Decimal("2.5"), "JPY") == Decimal(2)
    assert quantize(Decimal("0.0005"), "KWD") == Decimal("0.000")


# -- determinism -----------------------------------------------------------------------


@FAST
@given(scripts())
def test_same_log_gives_identical_output(script: Any) -> None:
    events = build_log(script)
    first = [wire.outcome_to_json(o) for o in run(events)]
    again = [wire.outcome_to_json(o) for o in run(events)]
    assert first == again
    other = [wire.outcome_to_json(o) for o in run(events, OTHER_ENGINE)]
    assert first == other


OTHER_ENGINE = Engine(revrules.load(STREAMING))

SCRIPT = """\
import json, sys
import revrules
from revrules import wire
from revrules.compiler import generated_source
rules = revrules.load("rulesets/streaming.rr")
print(generated_source(rules.model))
engine = revrules.Engine(rules)
state = revrules.State()
for line in open("examples/events.jsonl", encoding="utf-8"):
    outcome = engine.apply(state, json.loads(line))
    state = outcome.state
    print(wire.outcome_to_json(outcome))
print(wire.state_to_json(state))
"""


def _run(args: list[str], seed: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *args], env={**os.environ, "PYTHONHASHSEED": seed},
                          cwd=ROOT, capture_output=True, timeout=60, check=False)


def test_eval_output_is_identical_across_hash_seeds() -> None:
    args = ["-m", "revrules", "eval", "rulesets/streaming.rr", "examples/events.jsonl"]
    runs = [_run(args, seed) for seed in ("0", "1", "12345")]
    for r in runs:
        assert r.returncode in (0, 1), r.stderr.decode()
        assert r.stderr == runs[0].stderr
    assert len(runs[0].stdout.splitlines()) == sum(
        1 for line in (ROOT / "examples" / "events.jsonl").read_text("utf-8").splitlines()
        if line.strip())
    assert runs[1].stdout == runs[0].stdout
    assert runs[2].stdout == runs[0].stdout


def test_api_output_and_generated_code_are_identical_across_hash_seeds() -> None:
    runs = [_run(["-c", SCRIPT], seed) for seed in ("0", "1", "12345")]
    for r in runs:
        assert r.returncode == 0, r.stderr.decode()
    assert runs[0].stdout
    assert runs[1].stdout == runs[0].stdout
    assert runs[2].stdout == runs[0].stdout


# -- replays ---------------------------------------------------------------------------


@FAST
@given(scripts(), st.data())
def test_replaying_an_applied_event_changes_nothing(script: Any, data: st.DataObject) -> None:
    events = build_log(script)
    cut = data.draw(st.integers(min_value=1, max_value=len(events)), label="prefix")
    state, outcomes = ENGINE.run(events[:cut], State())
    applied = [e for e, o in zip(events[:cut], outcomes, strict=True) if o.ok]
    if not applied:
        return
    event = data.draw(st.sampled_from(applied), label="replayed")
    again = ENGINE.apply(state, event)
    assert again.ok and again.replayed
    assert again.event == event["id"]
    assert again.decisions == () and again.events == ()
    assert again.error is None
    assert again.state is state
    assert strict_loads(wire.outcome_to_json(again)) == {
        "event": event["id"], "ok": True, "decisions": [], "events": [], "replayed": True}


def test_replay_of_a_whole_log_is_all_replays() -> None:
    events = [json.loads(line) for line in
              (ROOT / "examples" / "events.jsonl").read_text("utf-8").splitlines() if line]
    state, outcomes = ENGINE.run(events, State())
    again_state, again = ENGINE.run(events, state)
    assert again_state is state
    for first, second in zip(outcomes, again, strict=True):
        if first.ok:
            assert second.replayed and second.events == () and second.decisions == ()
        else:  # a failed event was never applied: it fails again, the same way
            assert not second.ok and second.error == first.error


# -- compilation -----------------------------------------------------------------------


def test_generated_source_is_identical_across_loads() -> None:
    first = revrules.load(STREAMING)
    second = revrules.load(STREAMING)
    assert generated_source(first.model) == generated_source(second.model)
    assert generated_source(first.model) == generated_source(RULES.model)
    assert first.compiled.source == second.compiled.source


def test_generated_source_is_identical_for_text_and_path_loads() -> None:
    text = STREAMING.read_text("utf-8")
    a = revrules.load_text(text, str(STREAMING))
    b = revrules.load_text(text, str(STREAMING))
    assert generated_source(a.model) == generated_source(b.model)
    assert a.model == b.model
