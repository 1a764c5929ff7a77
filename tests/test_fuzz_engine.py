"""Typed rulesets that pass check never crash the engine (issue 7, point 2).

revrules.testing generates rulesets from the grammar's concepts, with random typed
conditions over the declared customer attributes, and random events for them.
Engine.apply never raises and never answers ``internal_error``; an ``ok: false``
leaves the state unchanged. REVRULES_FUZZ_EXAMPLES runs more rulesets (default 80).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State
from revrules.testing import event_sequences, events, rulesets

from conftest import same_but_remembered

EXAMPLES = int(os.environ.get("REVRULES_FUZZ_EXAMPLES", "80"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def run(rules: revrules.Ruleset, log: list[dict[str, Any]]) -> None:
    engine, state = Engine(rules), State()
    for event in log:
        out = engine.apply(state, event)
        if not out.ok:
            assert out.error is not None and out.error.code != "internal_error", out.error
            assert same_but_remembered(state, out.state)
        state = out.state


@FUZZ
@given(st.data())
def test_generated_rulesets_check(data: st.DataObject) -> None:
    text = data.draw(rulesets(), label="ruleset")
    assert revrules.load_text(text, "gen.rr").name == "generated"


@FUZZ
@given(st.data())
def test_event_sequences_never_crash_the_engine(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    run(rules, data.draw(event_sequences(rules, max_size=10), label="events"))


@FUZZ
@given(st.data())
def test_random_events_never_crash_the_engine(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    # a valid life first, so that random events meet subscriptions in every state
    life = data.draw(event_sequences(rules, max_size=6), label="life")
    log = data.draw(st.lists(events(rules), max_size=8), label="events")
    run(rules, life + sorted(log, key=lambda e: e["at"]))
