"""Loading a large ruleset: the tables and warnings are what the direct definitions
give, and the load leaves the garbage collector as it found it. Times are measured by
benchmarks/run_all.py, never here."""

from __future__ import annotations

import gc
import hashlib
import importlib.util
from pathlib import Path

import pytest

import revrules
from revrules import RulesetError
from revrules import model as m

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("big_ruleset", ROOT / "benchmarks" / "big_ruleset.py")
assert _spec is not None and _spec.loader is not None
big = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(big)


def _automatic_by_definition(model: m.Model) -> dict[tuple[str, str], tuple[m.Promotion, ...]]:
    """The automatic promotions of every (plan, storefront), as the language defines
    them: plans × storefronts × promotions, in source order."""
    return {(plan.name, sf.name): tuple(
        p for p in model.promotions if p.automatic
        and (p.plans is None or plan.name in p.plans)
        and (p.storefronts is None or sf.name in p.storefronts)
        and (p.currency is None or p.currency == sf.currency))
        for plan in model.plans for sf in model.storefronts}


@pytest.mark.parametrize("source", ["streaming", "big-0.1-1", "big-0.05-7"])
def test_automatic_table_is_the_definition(source: str) -> None:
    if source == "streaming":
        rules = revrules.load(ROOT / "rulesets" / "streaming.rr")
    else:
        _, scale, seed = source.split("-")
        rules = revrules.load_text(big.big_ruleset(float(scale), int(seed)), "big.rr")
    expected = _automatic_by_definition(rules.model)
    assert rules.automatic == expected
    assert list(rules.automatic) == list(expected)  # the same keys, in the same order
    # the generated ruleset has promotions for every plan (no 'plans') and plan-specific
    # ones: both parts of the index are exercised
    if source != "streaming":
        assert any(p.automatic and p.plans is None for p in rules.model.promotions)
        assert sum(map(len, expected.values())) > len(expected) / 2


def test_big_ruleset_is_deterministic_and_sized() -> None:
    text = big.big_ruleset(1, 1)
    assert text == big.big_ruleset(1, 1)
    assert text != big.big_ruleset(1, 2)
    counts = big.count_rules(text)
    assert dict(counts) == {"contract": 300, "deny": 600, "dunning": 3, "price": 4074,
                            "promotion": 1502, "rate": 2034, "route": 1506}
    assert sum(counts.values()) == 10019
    assert sum(big.count_rules(big.big_ruleset(2, 1)).values()) == pytest.approx(20_000,
                                                                                   rel=0.01)


@pytest.mark.parametrize(("scale", "seed", "count", "digest"), [
    # the warnings (code, place, message, hint) of the ruleset before the load was made
    # linear: the lint and checker changes changed none of them
    (0.3, 1, 40, "774f2415b2d19805"),
    (0.05, 7, 19, "42d8b97e0f272632"),
])
def test_warnings_of_a_large_ruleset_are_unchanged(scale: float, seed: int, count: int,
                                                   digest: str) -> None:
    rules = revrules.load_text(big.big_ruleset(scale, seed), "big.rr")
    text = "\n".join(f"{d.code} {d.span} {d.message} {d.hint}" for d in rules.warnings)
    assert (len(rules.warnings), hashlib.sha256(text.encode()).hexdigest()[:16]) == (
        count, digest)


def test_load_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    revrules.load(ROOT / "rulesets" / "streaming.rr")
    assert gc.isenabled()
    with pytest.raises(RulesetError):
        revrules.load_text("ruleset broken\nplan {", "bad.rr")
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that switched it off keeps it off
        revrules.load(ROOT / "rulesets" / "streaming.rr")
        assert not gc.isenabled()
    finally:
        gc.enable()
