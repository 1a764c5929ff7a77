"""Exactly-once replays (docs/semantics.md "Replays"): every event id is remembered with
the digest of its payload and its outcome, within a bounded window."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import immutables

import revrules
from revrules import Engine, State, wire

RULES = revrules.load_text('''
ruleset once version "1"
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements hd }
plan monthly { product p  every 1 month  price web EUR 9.99 }
tax vat { rate 19% }
''', "once.rr")
ENGINE = Engine(RULES)


def checkout(event_id: str = "c1", sub: str = "s1", at: str = "2027-01-15") -> dict[str, Any]:
    return {"id": event_id, "type": "checkout", "at": at, "subscription": sub,
            "storefront": "web", "plan": "monthly", "customer": {"id": "cust-" + sub}}


def pay(event_id: str, sub: str = "s1", at: str = "2027-01-15") -> dict[str, Any]:
    return {"id": event_id, "type": "payment_succeeded", "at": at, "subscription": sub}


LOG = [
    checkout(),
    pay("p1"),
    pay("p1-dup"),  # the PSP's duplicate webhook: rightly refused, nothing is open
    {"id": "r2", "type": "renewal_due", "at": "2027-02-15", "subscription": "s1"},
]


def test_a_refused_duplicate_is_refused_again_when_the_log_is_replayed() -> None:
    state, first = ENGINE.run(LOG)
    assert [o.ok for o in first] == [True, True, False, True]
    assert first[2].error is not None and first[2].error.code == "no_open_charge"
    assert state.subscriptions["s1"].charge is not None  # February is open, unpaid
    # the log replayed through its own output state: nothing changes, line by line
    again_state, again = ENGINE.run(LOG, state)
    assert again_state is state
    assert [o.replayed for o in again] == [True, True, False, True]
    assert again[2].error == first[2].error
    assert wire.outcome_to_json(again[2]) == wire.outcome_to_json(first[2])
    assert again_state.subscriptions["s1"].charge is not None  # the duplicate paid nothing


def test_a_remembered_refusal_survives_the_state_file() -> None:
    state, _ = ENGINE.run(LOG)
    loaded = wire.state_from_json(wire.state_to_json(state))
    out = ENGINE.apply(loaded, pay("p1-dup"))
    assert out.error is not None and out.error.code == "no_open_charge"
    assert out.state is loaded


def test_the_same_id_with_another_payload_is_an_id_conflict() -> None:
    state, _ = ENGINE.run([checkout(), checkout("c2", "s2"), pay("p1")])
    # a different event reusing p1: a real payment for s2, which must not be dropped
    out = ENGINE.apply(state, pay("p1", sub="s2"))
    assert not out.ok and out.error is not None
    assert out.error.code == "id_conflict"
    assert "p1" in out.error.message
    assert out.state is state
    assert state.subscriptions["s2"].charge is not None


def test_a_replay_is_recognised_by_value_not_by_spelling() -> None:
    state, _ = ENGINE.run([checkout()])
    same = {"customer": {"id": "cust-s1"}, "plan": "monthly", "storefront": "web",
            "subscription": "s1", "at": "2027-01-15T01:00:00+01:00", "type": "checkout",
            "id": "c1"}
    out = ENGINE.apply(state, same)
    assert out.ok and out.replayed and out.state is state


def test_refund_amounts_are_compared_by_value() -> None:
    state, _ = ENGINE.run([checkout(), pay("p1")])
    refund = {"id": "f1", "type": "refund_requested", "at": "2027-01-16",
              "subscription": "s1", "amount": "1.50"}
    first = ENGINE.apply(state, refund)
    assert first.ok
    assert ENGINE.apply(first.state, {**refund, "amount": "1.5"}).replayed
    conflict = ENGINE.apply(first.state, {**refund, "amount": "1.51"})
    assert conflict.error is not None and conflict.error.code == "id_conflict"


def test_ticks_are_remembered_and_a_reused_tick_id_is_a_conflict() -> None:
    state, _ = ENGINE.run([checkout(), {"id": "t1", "type": "tick", "at": "2027-01-20"}])
    assert ENGINE.apply(state, {"id": "t1", "type": "tick", "at": "2027-01-20"}).replayed
    out = ENGINE.apply(state, {"id": "t1", "type": "tick", "at": "2027-01-21"})
    assert out.error is not None and out.error.code == "id_conflict"


def test_the_remembered_ids_stay_bounded_and_the_window_is_kept() -> None:
    window = dt.timedelta(days=30)
    engine = Engine(RULES, replay_window=window)
    state = State()
    start = dt.date(1990, 1, 1)
    days = 9000  # more than twice the pruning threshold
    sizes = []
    for n in range(days):
        at = (start + dt.timedelta(days=n)).isoformat()
        state = engine.apply(state, {"id": f"t{n}", "type": "tick", "at": at}).state
        sizes.append(len(state.applied))
    assert max(sizes) <= 2 * 4096 + 1  # never more than twice the threshold
    assert len(state.applied) < days
    clock = state.clock
    assert clock is not None
    # every id dated within the window of the newest event is still known ...
    for n in range(days - 31, days):
        at = (start + dt.timedelta(days=n)).isoformat()
        assert f"t{n}" in state.applied
        assert engine.apply(state, {"id": f"t{n}", "type": "tick", "at": at}).replayed
    # ... and the oldest are forgotten
    assert "t0" not in state.applied


def test_a_state_file_of_the_first_format_still_loads_and_replays() -> None:
    state, _ = ENGINE.run([checkout(), pay("p1")])
    data = json.loads(wire.state_to_json(state))
    data["format"] = "revrules-state/1"
    data["applied"] = {key: True for key in data["applied"]}
    for key in ("ruleset", "applied_limit", "last_event", "last_tick"):
        del data[key]
    old = wire.state_from_json(json.dumps(data))
    assert old.applied["p1"].digest == "" and old.applied["p1"].at == state.clock
    again = ENGINE.apply(old, pay("p1"))
    assert again.ok and again.replayed and again.state is old


def test_a_tick_over_a_subscription_filed_under_another_id_does_not_loop() -> None:
    state, _ = ENGINE.run([{**checkout(), "at": "2027-01-15"}])
    sub = state.subscriptions["s1"]
    # a trialing subscription with no open charge falls due at its next charge date
    broken = attrs.evolve(
        state, subscriptions=immutables.Map({"s1": attrs.evolve(
            sub, id="other", status="trialing", charge=None)}),
        due=immutables.Map({"s1": dt.date(2027, 2, 15)}))
    out = ENGINE.apply(broken, {"id": "t", "type": "tick", "at": "2027-03-01"})
    assert out.error is not None and out.error.code == "inconsistent_state"


def test_refusals_from_the_far_future_do_not_pile_up() -> None:
    engine = Engine(RULES, replay_window=dt.timedelta(days=30))
    state, _ = engine.run([checkout()])
    for n in range(5000):  # refused: no such subscription
        state = engine.apply(state, pay(f"f{n}", sub="nobody", at="2999-01-01")).state
    assert len(state.applied) < 4100
