"""Coverage-guided fuzzing of the parser and the event decoder (not run in CI).

    pip install -e '.[fuzz]'
    python fuzz/atheris_targets.py rules  -atheris_runs=200000   # .rr text -> load_text
    python fuzz/atheris_targets.py events -max_total_time=600    # JSONL -> read_events -> apply

A target fails (atheris prints the input and exits non-zero) when anything other than
the documented outcome happens: ``load_text`` may only raise ``RulesetError``; applying the
example log with fuzzed fields (and fuzzed JSONL lines) may never raise, and no outcome may carry
``internal_error``. Extra arguments go to libFuzzer (``-max_total_time``, a corpus
directory, ``-dict=fuzz/rr.dict`` ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import revrules
    from revrules import Engine, RulesetError, State
    from revrules.wire import read_events

_RULES = Path(__file__).resolve().parent.parent / "rulesets" / "streaming.rr"


def fuzz_rules(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        revrules.load_text(text, "fuzz.rr")
    except RulesetError:
        pass


_engine: Engine | None = None
_EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
_FIELDS = ("id", "type", "at", "subscription", "storefront", "plan", "code", "amount",
           "currency", "psp", "charge", "cancel", "reason", "attempt", "customer")


def _value(fdp: atheris.FuzzedDataProvider) -> object:
    kind = fdp.ConsumeIntInRange(0, 5)
    if kind == 0:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 1:
        return fdp.ConsumeInt(8)
    if kind == 2:
        return fdp.ConsumeBool()
    if kind == 3:
        return None
    if kind == 4:
        return {"id": fdp.ConsumeUnicodeNoSurrogates(8), "country": "DE",
                "trials_used": fdp.ConsumeInt(2)}
    return [fdp.ConsumeUnicodeNoSurrogates(4)]


def fuzz_events(data: bytes) -> None:
    """Mutate the example log field by field, then apply it: structure-aware."""
    global _engine
    if _engine is None:
        _engine = Engine(revrules.load(_RULES))
    fdp = atheris.FuzzedDataProvider(data)
    lines = _EXAMPLES.read_text("utf-8").splitlines()
    items = [item for _, item in read_events(lines) if not isinstance(item, Exception)]
    state = State()
    for item in items:
        event = dict(item)
        for _ in range(fdp.ConsumeIntInRange(0, 2)):
            event[fdp.PickValueInList(list(_FIELDS))] = _value(fdp)
        outcome = _engine.apply(state, event)
        if outcome.error is not None and outcome.error.code == "internal_error":
            raise AssertionError(f"internal_error: {outcome.error.message}")
        state = outcome.state
    for _, raw in read_events(fdp.ConsumeUnicodeNoSurrogates(256).splitlines()):
        if not isinstance(raw, Exception):
            _engine.apply(state, raw)


def main() -> None:
    targets = {"rules": fuzz_rules, "events": fuzz_events}
    if len(sys.argv) < 2 or sys.argv[1] not in targets:
        sys.exit(f"usage: {sys.argv[0]} rules|events [libFuzzer options]")
    target = targets[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
