"""Work that must stay linear or bounded at scale, counted in operations, not time."""

from __future__ import annotations

import attrs
import immutables
import pytest

import revrules
from revrules import Engine, RulesetError, State
from revrules import diagnostics as diag
from revrules.diagnostics import NAME_ALPHABET, one_edit_away

HEAD = """ruleset scale version "1"
storefront web { channel web currency EUR tax inclusive psp stripe }
"""


class CountingText(str):
    """Source text that counts the calls that scan it whole."""

    calls: dict[str, int]

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def splitlines(self, keepends: bool = False) -> list[str]:  # type: ignore[override]
        self._count("splitlines")
        return super().splitlines(keepends)

    def split(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        self._count("split")
        return super().split(*args, **kwargs)

    def count(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        self._count("count")
        return super().count(*args, **kwargs)

    def find(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        self._count("find")
        return super().find(*args, **kwargs)


def test_rendering_many_diagnostics_indexes_the_source_once() -> None:
    line = "storefront web { channel web currency EUR tax inclusive psp stripe }\n"
    with pytest.raises(RulesetError) as info:
        revrules.load_text(HEAD + line * 3, "dup.rr")
    first = info.value.diagnostics[0]
    assert (first.code, first.span.line, first.span.column) == ("duplicate", 3, 12)
    duplicates = 20_000  # 20,000 duplicate declarations, without parsing them all here
    text = HEAD + line * duplicates
    found = [attrs.evolve(first, span=attrs.evolve(first.span, line=3 + i, end_line=3 + i))
             for i in range(duplicates)]
    source = CountingText(text)
    source.calls = {}
    diag.line_starts.cache_clear()
    rendered = RulesetError(found, {"dup.rr": source}).render()
    # one pass over the text finds every line start (one find per line), then each
    # diagnostic slices its own line: nothing scans the whole text per diagnostic
    assert source.calls == {"find": text.count("\n") + 1}
    assert diag.line_starts.cache_info().misses == 1
    assert rendered.count("^") == duplicates * len("web")
    assert rendered.endswith(f"{duplicates} errors found")


class CountingIds(dict[str, object]):
    """Subscription ids that count how they are looked at."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lookups = 0
        self.scans = 0

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.scans += 1
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def,override]
        self.scans += 1
        return super().keys()


def _one_typo(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one character dropped, added, replaced, or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


@pytest.mark.parametrize("count", [1_000, 300_000])
@pytest.mark.parametrize("name", ["sub_000915", "sub_00091", "sub_0000915", "sub_000x91"])
def test_suggesting_a_subscription_id_is_bounded(count: int, name: str) -> None:
    ids = CountingIds((f"sub_{i * 7:06d}", None) for i in range(count))
    found = one_edit_away(name, ids.__contains__)
    assert ids.scans == 0
    alphabet = len(set(NAME_ALPHABET) | set(name))
    assert ids.lookups <= (2 * len(name) + 1) * (alphabet + 1)
    if count <= 1_000:  # the same names a scan of every id finds
        assert found == sorted(k for k in dict.keys(ids) if _one_typo(name, k))
        assert found


def test_no_suggestion_for_very_long_ids() -> None:
    ids = CountingIds({"a" * 100: None})
    assert one_edit_away("a" * 99, ids.__contains__) == []
    assert ids.lookups == 0


def test_unknown_subscription_among_many_suggests_the_typo() -> None:
    rules = revrules.load("rulesets/streaming.rr")
    engine = Engine(rules)
    out = engine.apply(State(), {
        "id": "e1", "type": "checkout", "at": "2027-01-01T00:00:00Z", "subscription": "s_4711",
        "storefront": "web_eu", "plan": "premium_monthly",
        "customer": {"id": "c1", "country": "DE"}})
    assert out.ok
    sub = out.state.subscriptions["s_4711"]
    with immutables.Map().mutate() as m:
        for i in range(200_000):
            m[f"s_{i * 7}"] = sub
        subs = m.finish()
    state = State(subscriptions=subs, clock=out.state.clock)
    bad = engine.apply(state, {"id": "e2", "type": "cancel_requested",
                               "at": "2027-01-02T00:00:00Z", "subscription": "s_4717"})
    assert not bad.ok and bad.error is not None
    assert bad.error.code == "unknown_subscription"
    assert bad.error.message == "unknown subscription 's_4717' (did you mean 's_24717'?)"


def test_what_a_subscription_keeps_is_shared_between_subscriptions() -> None:
    """State grows with subscriptions, and what each keeps for long (its payments, its
    customer attributes, the ledger's track of it) holds one object per distinct value,
    not one per event: the amounts of every payment of 12.99, the PSP names the payment
    events carry, the attribute names and string values of every customer."""
    from pathlib import Path

    from revrules.generator import generate

    from revrules.reports import stream

    rules = revrules.load(Path(__file__).resolve().parent.parent / "rulesets" / "streaming.rr")
    streamed = stream(rules, [dict(e) for e in generate(rules, 80, 6, 2)])
    state = streamed.state
    payments = [p for s in state.subscriptions.values()
                for p in (s.payment, *s.earlier_payments) if p is not None]
    assert len(payments) > 200
    for field in ("total", "tax", "base", "psp"):
        values = [getattr(p, field) for p in payments]
        distinct = {str(v) for v in values}
        assert len({id(v) for v in values}) == len(distinct), field  # one object each
    customers = [s.customer for s in state.subscriptions.values()]
    keys = [k for c in customers for k in c.keys()]
    values = [v for c in customers for v in c.values() if isinstance(v, str)]
    assert len({id(k) for k in keys}) == len(set(keys))
    assert values and len({id(v) for v in values}) == len(set(values))
    # and the ledger's track of each subscription (its steps' recurring price and owed)
    points = [p for t in streamed.ledger.tracks.values() for p in t.points]
    for field in ("basis", "owed"):
        amounts = [getattr(p, field) for p in points if getattr(p, field) is not None]
        assert len({id(v) for v in amounts}) == len({str(v) for v in amounts}), field


def test_the_ledger_keeps_one_step_per_month_of_each_subscription() -> None:
    # month-end figures and MRR movements read a subscription's situation at each month
    # end, and churn is counted as it happens: the ledger keeps the last step of each
    # month, not every change (a track grows with the months, not with the events)
    from pathlib import Path

    from revrules.generator import generate
    from revrules.ledger import month_of
    from revrules.reports import stream

    rules = revrules.load(Path(__file__).resolve().parent.parent / "rulesets" / "streaming.rr")
    events = [dict(e) for e in generate(rules, 80, 6, 2)]
    ledger = stream(rules, events).ledger
    subscriptions = {e["subscription"] for e in events if e.get("subscription")}
    assert len(events) > 4 * len(subscriptions)  # several events per subscription
    for track in ledger.tracks.values():
        months = [month_of(p.at) for p in track.points]
        assert months == sorted(set(months))
    churned = sum(f.churned for f in ledger.totals().values())
    assert churned > 10


def _streaming_rules() -> revrules.Ruleset:
    from pathlib import Path

    return revrules.load(Path(__file__).resolve().parent.parent / "rulesets" / "streaming.rr")


def test_a_remembered_event_id_costs_one_small_value() -> None:
    # every applied id stays remembered for the replay window (a 12-month log keeps all
    # of them): what the state keeps per id beyond the id itself is one compact value,
    # not a Seen object with a digest string and the event's time
    import sys

    from revrules.generator import generate
    from revrules.reports import stream

    rules = _streaming_rules()
    events = [dict(e) for e in generate(rules, 60, 6, 3)]
    state = stream(rules, events).state
    ids = list(state.applied.keys())
    assert len(ids) == len(events) > 300

    def size(value: object) -> int:
        if isinstance(value, int):
            return sys.getsizeof(value)
        return sys.getsizeof(value) + sum(sys.getsizeof(getattr(value, name)) for name in
                                          ("digest", "at", "code", "message"))

    per_id = sum(size(state.applied[key]) for key in ids) / len(ids)
    assert per_id <= 56, per_id
    # and reads back as what the engine remembered
    seen = state.seen(ids[0])
    assert seen is not None and seen.code is None and len(seen.digest) == 32
    from revrules.engine import payload_digest
    from revrules.events import parse_event

    first = parse_event(next(e for e in events if e["id"] == ids[0]))
    assert (seen.digest, seen.at) == (payload_digest(first), first.at)


def test_two_engines_fed_one_event_remember_it_with_one_value() -> None:
    # a what-if diff applies each parsed event under two rulesets: both states keep the
    # same value for its id, not a copy each
    from revrules.events import parse_event
    from revrules.generator import generate

    rules = _streaming_rules()
    first, second = Engine(rules), Engine(rules)
    a, b = State(), State()
    events = [parse_event(dict(e)) for e in generate(rules, 10, 3, 4)]
    for event in events:
        a, b = first.apply(a, event).state, second.apply(b, event).state
    assert len(a.applied) == len(events)
    assert all(a.applied[key] is b.applied[key] for key in a.applied.keys())
