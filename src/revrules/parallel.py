"""Replay a log in several processes, partitioned by customer (docs/ledger.md
"Parallel replay").

The ledger is additive over any split of a log by subscription (:meth:`Ledger.merge
<revrules.ledger.Ledger.merge>`), so a log can be replayed in parts and the parts'
ledgers added. What must not be split is what one event's decision depends on:

* a subscription's events, and every subscription of one customer (per-customer
  promotion limits): an event goes to the partition of its subscription's customer,
  ``crc32(customer id) mod N``, the customer named by the subscription's first
  checkout (a subscription never checked out goes by ``crc32(subscription id)``);
* the clock of ``tick``: every tick goes to every partition;
* the redemption counts of promotions with a total limit: global. They are resolved in
  rounds: the first replays every partition as if no total limit were reached; the
  redemptions it saw, merged in log order, say which ones win the last places (the
  first N, for a limit of N). The next round replays with those global counts given
  to every partition before each event; when a round sees exactly the redemptions it
  was given (as far as any decision can tell), every partition decided as the
  sequential replay did, and its ledgers are the answer.

Whatever cannot be shown equal falls back to the sequential replay, in this process
(the result says why): an event id used in two partitions, a subscription checked out
by customers of two partitions, a tick that applied in one partition and not in
another, several redemptions of one limited promotion by one tick where the limit's
last place is at stake (their order inside the tick decides), or rounds that do not
settle. Each worker reads the whole log and keeps its own events (parsing is cheap
beside applying), so the parts are never copied.

>>> import revrules
>>> from revrules.parallel import replay_partitioned
>>> rules = revrules.load("rulesets/streaming.rr")
>>> log = [{"id": "t1", "type": "tick", "at": "2027-01-01"}]
>>> replay_partitioned(rules, log, partitions=2, processes=0).summary.events
1
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import immutables

from .engine import Engine
from .events import EventError
from .ledger import Ledger
from .reports import Failure, Fold, Summary
from .ruleset import Ruleset, load_text
from .runtime import in_context
from .state import State, evolve

__all__ = ["Partitioned", "partition_of", "replay_file", "replay_partitioned"]

#: Rounds of the total-limit resolution before the sequential replay takes over.
MAX_ROUNDS = 6

# (event index, redemptions) per promotion with a total limit, in log order
Redemptions = dict[str, tuple[tuple[int, int], ...]]


@attrs.frozen
class Partitioned:
    """The result of a partitioned replay: the merged ledger and the summary of the
    outcomes (the same as a sequential replay's), how many rounds the total promotion
    limits took, and, when it fell back to the sequential replay, why."""

    ruleset: Ruleset = attrs.field(repr=False)
    summary: Summary
    ledger: Ledger = attrs.field(repr=False)
    partitions: int
    rounds: int
    fallback: str | None = None


def partition_of(key: str, partitions: int) -> int:
    """The partition of a customer (or subscription) id: stable across runs, platforms
    and hash seeds."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


# -- reading the log -------------------------------------------------------------------


def _items(paths: Sequence[str]) -> Iterator[Mapping[str, Any] | EventError]:
    from .wire import bounded_lines, read_events

    for path in paths:
        with open(path, encoding="utf-8", newline=None) as handle:
            for _, item in read_events(bounded_lines(handle)):
                yield item


class _Router:
    """Which partition an event goes to (None: every partition, a tick)."""

    __slots__ = ("partitions", "subscriptions")

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.subscriptions: dict[str, int] = {}

    def route(self, item: Mapping[str, Any]) -> int | None:
        kind = item.get("type")
        if kind == "tick":
            return None
        sub = item.get("subscription")
        if not isinstance(sub, str):
            return 0  # refused by validation, wherever it goes
        known = self.subscriptions.get(sub)
        if known is not None:
            return known
        if kind == "checkout":
            customer = _customer_id(item)
            if customer is not None:
                part = self.subscriptions[sub] = partition_of(customer, self.partitions)
                return part
        return partition_of(sub, self.partitions)


def _customer_id(item: Mapping[str, Any]) -> str | None:
    customer = item.get("customer")
    if isinstance(customer, Mapping):
        cid = customer.get("id")
        if isinstance(cid, str) and cid:
            return cid
    return None


@attrs.frozen
class _Check:
    """The whole log seen once: its size, the bad lines, and what forbids partitioning."""

    events: int
    bad: int
    first_bad: Failure | None
    conflict: str | None


def _check(items: Iterable[Mapping[str, Any] | EventError], partitions: int) -> _Check:
    router = _Router(partitions)
    owners: dict[str, int] = {}  # event id → partition (-1: every partition, a tick)
    events = bad = 0
    first_bad: Failure | None = None
    conflict: str | None = None
    for item in items:
        events += 1
        if isinstance(item, EventError):
            bad += 1
            if first_bad is None:
                first_bad = Failure(events, "", item.code, item.message)
            continue
        if conflict is not None:
            continue
        part = router.route(item)
        sub = item.get("subscription")
        if item.get("type") == "checkout" and isinstance(sub, str):
            customer = _customer_id(item)
            if customer is not None and partition_of(customer, partitions) != \
                    router.subscriptions.get(sub):
                conflict = (f"subscription {sub!r} is checked out by customers of two "
                            "partitions")
        event_id = item.get("id")
        if isinstance(event_id, str):
            owner = -1 if part is None else part
            seen = owners.setdefault(event_id, owner)
            if seen != owner:
                conflict = f"event id {event_id!r} is used in two partitions"
    return _Check(events, bad, first_bad, conflict)


# -- one partition -----------------------------------------------------------------------


@attrs.frozen
class _Part:
    ledger: Ledger
    failed: int  # events of this partition (ticks apart) that did not apply
    first: Failure | None
    ticks: tuple[Failure, ...]  # the ticks that did not apply
    redeemed: Redemptions  # what this partition redeemed of the limited promotions


_RULESETS: dict[tuple[str, str], Ruleset] = {}


def _ruleset(source: str, file: str) -> Ruleset:
    key = (source, file)
    rules = _RULESETS.get(key)
    if rules is None:
        _RULESETS.clear()
        rules = _RULESETS[key] = load_text(source, file)
    return rules


@in_context
def _replay_part(rules: Ruleset, items: Iterable[Mapping[str, Any] | EventError],
                 partition: int, partitions: int, given: Redemptions | None) -> _Part:
    """Replay the events of one partition; ``given``: the global redemption counts to
    put in the state before each event (None: no promotion has a total limit)."""
    router = _Router(partitions)
    fold = Fold(rules, Engine(rules))
    limits = _limits(rules)
    pointers = {name: 0 for name in limits}
    counts = {name: 0 for name in limits}
    failed = 0
    first: Failure | None = None
    ticks: list[Failure] = []
    redeemed: dict[str, list[tuple[int, int]]] = {name: [] for name in limits}
    index = 0
    for item in items:
        index += 1
        if isinstance(item, EventError):
            continue
        part = router.route(item)
        if part is not None and part != partition:
            continue
        before = fold.state
        if given is not None:
            before = fold.state = _inject(before, index, given, pointers, counts)
        outcome = fold.feed(item)
        if not outcome.ok:
            error = outcome.error
            code, message = (error.code, error.message) if error else (None, None)
            if part is None:
                ticks.append(Failure(index, outcome.event, code, message))
            else:
                failed += 1
                if first is None:
                    first = Failure(index, outcome.event, code, message)
        elif given is not None and outcome.state.redemptions is not before.redemptions:
            now, then = outcome.state.redemptions, before.redemptions
            for name in limits:
                more = now.get(name, 0) - then.get(name, 0)
                if more > 0:
                    redeemed[name].append((index, more))
    return _Part(fold.ledger, failed, first, tuple(ticks),
                 {name: tuple(found) for name, found in redeemed.items()})


def _inject(state: State, index: int, given: Redemptions, pointers: dict[str, int],
            counts: dict[str, int]) -> State:
    """``state`` with the global redemption count of each limited promotion before the
    event at ``index`` (what the sequential replay's state would hold)."""
    current = state.redemptions
    changed: immutables.MapMutation[str, int] | None = None
    for name, found in given.items():
        i, count = pointers[name], counts[name]
        while i < len(found) and found[i][0] < index:
            count += found[i][1]
            i += 1
        pointers[name], counts[name] = i, count
        if current.get(name, 0) != count:
            if changed is None:
                changed = current.mutate()
            changed[name] = count
    return state if changed is None else evolve(state, redemptions=changed.finish())


def _limits(rules: Ruleset) -> dict[str, int]:
    return {name: p.limit_total for name, p in sorted(rules.promotions.items())
            if p.limit_total is not None}


def _task(task: tuple[str, str, tuple[str, ...], int, int, Redemptions | None]) -> _Part:
    """A worker's job (a top-level function, for the process pool)."""
    source, file, paths, partition, partitions, given = task
    return _replay_part(_ruleset(source, file), _items(paths), partition, partitions, given)


def _check_task(task: tuple[tuple[str, ...], int]) -> _Check:
    paths, partitions = task
    return _check(_items(paths), partitions)


# -- the rounds --------------------------------------------------------------------------


def _merge_redeemed(parts: Sequence[_Part]) -> Redemptions:
    names = sorted({name for part in parts for name in part.redeemed})
    return {name: tuple(sorted(r for part in parts for r in part.redeemed.get(name, ())))
            for name in names}


def _settled(given: Redemptions, seen: Redemptions, limits: Mapping[str, int]) -> bool | None:
    """Whether a round given ``given`` decided as the sequential replay: True when no
    decision can tell the counts apart, False when another round is needed, None when
    the order of redemptions inside one tick decides (only the sequential replay can)."""
    settled: bool | None = True
    for name, limit in limits.items():
        a, b = given.get(name, ()), seen.get(name, ())
        marks = sorted({i for i, _ in a} | {i for i, _ in b})
        ca = cb = ia = ib = 0
        for mark in marks:
            if _class(ca, limit) != _class(cb, limit):
                settled = False
            while ia < len(a) and a[ia][0] <= mark:
                ca += a[ia][1]
                ia += 1
            step = 0
            while ib < len(b) and b[ib][0] <= mark:
                step += b[ib][1]
                ib += 1
            if step > 1 and cb + step >= limit:
                return None  # one tick redeemed several times up to the last place
            cb += step
        if _class(ca, limit) != _class(cb, limit):
            settled = False
    return settled


def _class(count: int, limit: int) -> int:
    """What a decision can tell of a redemption count: below the last place (−1), at
    the last place (a redemption now exhausts the promotion) or exhausted."""
    return -1 if count < limit - 1 else min(count, limit)


def _first(seen: Redemptions, limits: Mapping[str, int]) -> Redemptions:
    """The redemptions that win, in log order: the first ``limit`` of each promotion."""
    out: Redemptions = {}
    for name, found in seen.items():
        limit, count, kept = limits[name], 0, []
        for index, n in found:
            if count >= limit:
                break
            take = min(n, limit - count)
            kept.append((index, take))
            count += take
        out[name] = tuple(kept)
    return out


class _Runner:
    """Runs the jobs: in this process (this class), a process pool, or Dask.
    ``start_parts`` starts a round and returns what waits for its answer, so that this
    process can look at the whole log (``_check``) while the workers replay."""

    def start_parts(self, tasks: list[Any]) -> Callable[[], list[_Part]]:
        done = [_task(t) for t in tasks]
        return lambda: done


class _PoolRunner(_Runner):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def start_parts(self, tasks: list[Any]) -> Callable[[], list[_Part]]:
        pending = self.pool.map_async(_task, tasks, chunksize=1)
        return lambda: list(pending.get())


def _resolve(rules: Ruleset, paths: tuple[str, ...], partitions: int,
             runner: _Runner) -> Partitioned:
    source, file = rules.model.source, rules.model.file
    limits = _limits(rules)
    given: Redemptions | None = {name: () for name in limits} if limits else None
    for round_ in range(1, MAX_ROUNDS + 1):
        waiting = runner.start_parts([(source, file, paths, k, partitions, given)
                                      for k in range(partitions)])
        if round_ == 1:  # here, while the workers replay
            check = _check_task((paths, partitions))
        parts = waiting()
        if check.conflict is not None:
            return _sequential(rules, paths, partitions, 0, check.conflict)
        if len({part.ticks for part in parts}) > 1:
            return _sequential(rules, paths, partitions, round_,
                               "a tick applied in some partitions and not in others")
        if given is not None:
            seen = _merge_redeemed(parts)
            settled = _settled(given, seen, limits)
            if settled is None:
                return _sequential(rules, paths, partitions, round_,
                                   "one tick redeemed a limited promotion several times "
                                   "at its last places")
            if not settled:
                given = _first(seen, limits)
                continue
        return Partitioned(rules, _summary(check, parts), _merged(rules, parts), partitions,
                           round_)
    return _sequential(rules, paths, partitions, MAX_ROUNDS,
                       f"total promotion limits not settled in {MAX_ROUNDS} rounds")


def _summary(check: _Check, parts: Sequence[_Part]) -> Summary:
    ticks = parts[0].ticks if parts else ()
    failed = check.bad + len(ticks) + sum(part.failed for part in parts)
    firsts = [f for f in (check.first_bad, *(part.first for part in parts)) if f is not None]
    if ticks:
        firsts.append(ticks[0])
    first = min(firsts, key=lambda f: f.index) if firsts else None
    return Summary(check.events, failed, first)


def _merged(rules: Ruleset, parts: Sequence[_Part]) -> Ledger:
    ledger = Ledger.fold((), rules)
    for part in parts:
        ledger = ledger.merge(part.ledger)
    return ledger


def _sequential(rules: Ruleset, paths: tuple[str, ...], partitions: int, rounds: int,
                why: str) -> Partitioned:
    fold = Fold(rules)
    for _ in fold.outcomes(_items(paths)):
        pass
    return Partitioned(rules, fold.summary, fold.ledger, partitions, rounds, why)


# -- entry points ------------------------------------------------------------------------


@contextlib.contextmanager
def _pool(processes: int) -> Iterator[Any]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        yield pool


def replay_file(rules: Ruleset, paths: str | Sequence[str], workers: int,
                partitions: int | None = None) -> Partitioned:
    """Replay the JSONL log ``paths`` (one file, or several read one after the other) in
    ``workers`` processes ('spawn'), ``partitions`` parts (default: one per worker).
    The ledger and summary are those of :func:`revrules.reports.stream`."""
    files = (paths,) if isinstance(paths, str) else tuple(paths)
    parts = partitions or workers
    if workers <= 1:
        return _resolve(rules, files, parts, _Runner())
    with _pool(min(workers, parts)) as pool:
        return _resolve(rules, files, parts, _PoolRunner(pool))


def replay_partitioned(rules: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
                       partitions: int, processes: int | None = None) -> Partitioned:
    """Replay ``events`` (wire dicts; an :class:`EventError` is a bad line) in
    ``partitions`` parts on ``processes`` worker processes (default: one per part; 0:
    in this process, one part after the other). The events are written to a temporary
    JSONL file the workers read."""
    import json

    with tempfile.TemporaryDirectory(prefix="revrules-") as folder:
        path = os.path.join(folder, "events.jsonl")
        with open(path, "w", encoding="utf-8") as handle:
            for item in events:
                handle.write(_bad_line(item) if isinstance(item, EventError)
                             else json.dumps(dict(item)) + "\n")
        return replay_file(rules, path, processes if processes is not None else partitions,
                           partitions)


def _bad_line(item: EventError) -> str:
    return "[not an event]\n"
