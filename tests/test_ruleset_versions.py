"""A state against another version of its ruleset (LANGUAGE.md §5.1 "State against a
ruleset"): unknown plans and storefronts are refused per event, `formerly` renames,
`revrules check RULES --state FILE`."""

from __future__ import annotations

import json
from collections.abc import Callable
import pytest

import revrules
from revrules import Engine, RulesetError, State, wire
from revrules.cli import main
from revrules.formatter import format_module
from revrules.parser import parse

V1 = '''ruleset app version "1"
storefront web { channel web currency EUR tax inclusive psp stripe }
storefront ios_us { channel app_store currency USD tax exclusive psp apple commission 15% }
product p { entitlements hd }
plan monthly { product p  every 1 month  price web EUR 9.99  price ios_us USD 9.99 }
tax vat { rate 19% }
'''
RENAMED = (V1.replace('"1"', '"2"').replace("storefront ios_us {", "storefront ios {")
           .replace("plan monthly {", "plan flex {").replace("ios_us USD", "ios USD"))
FORMERLY = (RENAMED.replace("storefront ios {", "storefront ios { formerly ios_us")
            .replace("plan flex {", "plan flex { formerly monthly"))

LOG1 = [
    {"id": "e1", "type": "checkout", "at": "2027-01-15", "subscription": "s1",
     "storefront": "web", "plan": "monthly", "customer": {"id": "c1"}},
    {"id": "e2", "type": "payment_succeeded", "at": "2027-01-15", "subscription": "s1"},
    {"id": "e3", "type": "checkout", "at": "2027-01-15", "subscription": "s2",
     "storefront": "ios_us", "plan": "monthly", "customer": {"id": "c2"}},
    {"id": "e4", "type": "store_notification", "at": "2027-01-15", "subscription": "s2",
     "notification": "SUBSCRIBED"},
]
LOG2 = [
    {"id": "e5", "type": "renewal_due", "at": "2027-02-15", "subscription": "s1"},
    {"id": "e6", "type": "store_notification", "at": "2027-02-15", "subscription": "s2",
     "notification": "DID_RENEW"},
    {"id": "e7", "type": "tick", "at": "2027-02-16"},
]


def v1_state() -> State:
    state, outcomes = Engine(revrules.load_text(V1, "v1.rr")).run(LOG1)
    assert all(o.ok for o in outcomes)
    return state


def test_a_renamed_plan_or_storefront_is_refused_per_event_never_raised() -> None:
    engine = Engine(revrules.load_text(RENAMED, "v2.rr"))
    state, outcomes = engine.run(LOG2, v1_state())
    errors = [o.error.code if o.error else None for o in outcomes]
    assert errors == ["unknown_plan", "unknown_storefront", None]
    assert outcomes[0].error is not None and "'monthly'" in outcomes[0].error.message
    assert outcomes[1].error is not None and "'ios_us'" in outcomes[1].error.message
    assert state.subscriptions["s1"].plan == "monthly"  # left as it was


def test_formerly_carries_subscriptions_on_under_the_new_names() -> None:
    engine = Engine(revrules.load_text(FORMERLY, "v3.rr"))
    state, outcomes = engine.run(LOG2, v1_state())
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert state.subscriptions["s1"].plan == "flex"
    assert state.subscriptions["s2"].storefront == "ios"
    renewal = outcomes[0].decisions[0]
    assert renewal.next_charge is not None
    assert (renewal.kind, str(renewal.total), renewal.next_charge.isoformat()) == (
        "charge", "9.99", "2027-03-15")
    assert {e.plan for e in outcomes[0].events} == {"flex"}
    assert state.ruleset == engine.rules.stamp


def test_the_model_keeps_the_former_names() -> None:
    rules = revrules.load_text(FORMERLY, "v3.rr")
    assert rules.former_plans == {"monthly": "flex"}
    assert rules.former_storefronts == {"ios_us": "ios"}
    assert rules.plans["flex"].formerly == ("monthly",)


def test_the_formatter_prints_formerly_and_parses_back() -> None:
    module = parse(FORMERLY, "v3.rr")
    text = format_module(module)
    assert "plan flex {\n  formerly monthly\n" in text
    assert "formerly ios_us" in text
    assert parse(text, "v3.rr") == module


@pytest.mark.parametrize("change, code, fragment", [
    (("plan flex { formerly monthly", "plan flex { formerly flex"), "conflict",
     "'flex' is a plan of this ruleset"),
    (("plan flex { formerly monthly", "plan flex { formerly monthly formerly monthly"),
     "duplicate", "says 'formerly monthly' twice"),
    (("storefront ios { formerly ios_us", "storefront ios { formerly web"), "conflict",
     "'web' is a storefront of this ruleset"),
    (("storefront web {", "storefront web { formerly ios_us"), "duplicate",
     "both say 'formerly ios_us'"),
])
def test_former_names_are_checked(change: tuple[str, str], code: str, fragment: str) -> None:
    with pytest.raises(RulesetError) as info:
        revrules.load_text(FORMERLY.replace(*change), "v3.rr")
    found = [(d.code, d.message) for d in info.value.diagnostics]
    assert any(c == code and fragment in msg for c, msg in found), found


def _files(write: Callable[[str, str], str]) -> tuple[str, str, str]:
    state = write("state.json", wire.state_to_json(v1_state()))
    return state, write("v2.rr", RENAMED), write("v3.rr", FORMERLY)


def test_check_state_lists_what_the_ruleset_cannot_serve(
        capsys: pytest.CaptureFixture[str], write: Callable[[str, str], str]) -> None:
    state, renamed, formerly = _files(write)
    assert main(["check", renamed, "--state", state]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{state}: subscription 's1': unknown_plan: ")
    assert out[1].startswith(f"{state}: subscription 's2': unknown_storefront: ")
    assert out[2] == f"{renamed}: cannot serve 2 of 2 subscriptions in {state}"
    assert main(["check", formerly, "--state", state]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{formerly}: ok, serves all 2 subscriptions in {state}\n"
    assert "was written under ruleset app version 1" in captured.err


def test_eval_with_a_renamed_plan_gives_codes_not_an_internal_error(
        capsys: pytest.CaptureFixture[str], write: Callable[[str, str], str]) -> None:
    state, renamed, _ = _files(write)
    log = write("more.jsonl", "".join(json.dumps(e) + "\n" for e in LOG2))
    assert main(["eval", renamed, log, "--state-in", state]) == 1
    captured = capsys.readouterr()
    codes = [json.loads(line).get("error", {}).get("code") for line in
             captured.out.splitlines()]
    assert codes == ["unknown_plan", "unknown_storefront", None]
    assert "internal error" not in captured.err
    assert captured.err.count("\n") == 1 and "warning" in captured.err


def test_a_refusal_for_an_unserved_subscription_is_not_remembered() -> None:
    renamed = Engine(revrules.load_text(RENAMED, "v2.rr"))
    refused = renamed.apply(v1_state(), LOG2[0])
    assert refused.error is not None and refused.error.code == "unknown_plan"
    assert "e5" not in refused.state.applied
    fixed = Engine(revrules.load_text(FORMERLY, "v3.rr")).apply(refused.state, LOG2[0])
    assert fixed.ok and not fixed.replayed
