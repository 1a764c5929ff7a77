"""A durable store: the event log, outcomes, revenue events and state in a database.

``Store.open(url)`` opens (and creates or migrates) a store in SQLite
(``sqlite:///path.db``, the default, embedded) or PostgreSQL (``postgresql://…``,
needs ``revrules[postgres]``); both hold the same schema (docs/store.md).

:meth:`Store.apply` runs the unchanged :class:`~revrules.engine.Engine` on a partial
:class:`~revrules.state.State` holding exactly the rows the event touches (its
subscription, the promotion counters, its customers' redemption counts, the due index
up to a tick's date, the last tick, what the store remembers of its id), and writes the
event, its outcome, its revenue events and the rows that changed in one transaction.
An event id the store already holds changes nothing, from any process, after any
crash. The outcomes are byte-identical to the in-memory engine's on the same log.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import immutables

from .. import runtime as rt
from ..diagnostics import did_you_mean, one_edit_away
from ..engine import Engine
from ..events import Event, EventError, parse_event
from ..ledger import Ledger, month_of
from ..pricing import redemption_key
from ..results import Error, Outcome, RevenueEvent
from ..ruleset import Ruleset
from ..state import RulesetStamp, Seen, State, Subscription, pack_seen
from .backends import SCHEMA_VERSION, Backend, StoreError, connect

__all__ = ["Store", "StoreError", "SwitchRefused", "SCHEMA_VERSION", "History"]

#: How many times a transaction that lost a race (a serialisation failure, a busy
#: database) is run again before the error is raised.
RETRIES = 200


class SwitchRefused(StoreError):
    """The store's subscriptions name plans, storefronts, ... the new ruleset lacks."""

    def __init__(self, ruleset: Ruleset, problems: list[tuple[str, Error]], total: int):
        self.ruleset = ruleset
        self.problems = problems
        self.total = total
        listed = "; ".join(f"{sub}: {error.code}" for sub, error in problems[:5])
        more = ", …" if len(problems) > 5 else ""
        super().__init__(f"ruleset {ruleset.name} cannot serve {len(problems)} of {total} "
                         f"subscriptions in the store ({listed}{more})")


class History:
    """One stored event of a subscription: ``(seq, id, at, type, ok, code)``."""

    def __init__(self, seq: int, event_id: str, at: str, kind: str, ok: bool,
                 code: str | None):
        self.seq, self.event_id, self.at, self.type, self.ok, self.code = (
            seq, event_id, at, kind, ok, code)

    def __repr__(self) -> str:
        return (f"History({self.seq}, {self.event_id!r}, {self.at!r}, {self.type!r}, "
                f"{self.ok}, {self.code!r})")


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)  # what _time wrote: UTC, with a Z


def _wire() -> Any:
    from .. import wire
    return wire


class Store:
    """A store of events, outcomes, revenue events and state (docs/store.md).

    >>> import revrules
    >>> from revrules.store import Store
    >>> rules = revrules.load("rulesets/streaming.rr")
    >>> engine = revrules.Engine(rules)
    >>> event = {"id": "e1", "type": "checkout", "at": "2026-11-27T10:00:00Z",
    ...          "subscription": "s1", "storefront": "web_eu", "plan": "premium_monthly",
    ...          "customer": {"id": "c1", "country": "DE", "trials_used": 1}}
    >>> with Store.open("sqlite:///:memory:") as store:
    ...     first = store.apply(engine, event)
    ...     again = store.apply(engine, event)
    ...     first.ok, again.replayed, store.subscription("s1").status
    (True, True, 'active')
    """

    def __init__(self, backend: Backend):
        self.db = backend
        self.url = backend.url
        self._rulesets: dict[str, Ruleset] = {}
        self._current: str | None = None  # the ruleset digest checked in this process
        self._cache: dict[str, tuple[str, Subscription]] = {}

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, url: str) -> Store:
        """Open the store at ``url``, creating its schema or migrating it when needed."""
        backend = connect(url)
        try:
            _retry(backend, backend.migrate)
        except BaseException:
            backend.close()
            raise
        return cls(backend)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("SELECT version FROM schema_version")[0][0])

    # -- rulesets ----------------------------------------------------------------------
    def use(self, engine: Engine) -> None:
        """Put the store under ``engine``'s ruleset, if it is not already.

        The switch is recorded (``ruleset_switches``), subscriptions of renamed
        (``formerly``) plans and storefronts get their new names, and a ruleset that
        cannot serve every subscription of the store is refused with
        :class:`SwitchRefused`, which lists them (as ``revrules check --state`` does).
        """
        stamp = engine.rules.stamp
        if self._current == stamp.digest:
            return
        self._transaction(lambda: self._use(engine), exclusive=True)
        self._current = stamp.digest

    def _use(self, engine: Engine) -> None:
        rules = engine.rules
        stamp = rules.stamp
        db = self.db
        if not db.execute("SELECT 1 FROM rulesets WHERE digest = ?", (stamp.digest,)):
            db.execute("INSERT INTO rulesets (digest, name, version, file, source) VALUES "
                       "(?, ?, ?, ?, ?)", (stamp.digest, stamp.name, stamp.version,
                                           rules.model.file, rules.model.source))
        current = self._meta("ruleset")
        if current == stamp.digest:
            return
        subs = self._all_subscriptions()
        state = State(subscriptions=immutables.Map(subs))
        problems = engine.unservable(state)
        if problems:
            raise SwitchRefused(rules, problems, len(subs))
        adopted = engine.adopt(state)
        renamed = 0
        for sub_id in sorted(subs):
            sub = adopted.subscriptions[sub_id]
            if sub is not subs[sub_id]:
                renamed += 1
                db.execute("UPDATE subscriptions SET storefront = ?, plan = ?, body = ? "
                           "WHERE id = ?", (sub.storefront, sub.plan, _encode(sub), sub_id))
        db.execute("INSERT INTO ruleset_switches (seq, digest, previous, renamed) VALUES "
                   "(?, ?, ?, ?)", (db.next_seq(), stamp.digest, current, renamed))
        self._set_meta("ruleset", stamp.digest)

    def ruleset(self, digest: str | None = None) -> Ruleset | None:
        """The ruleset with this content digest (the store's current one by default),
        compiled from the source the store keeps; None when there is none."""
        digest = digest or self._meta("ruleset")
        if digest is None:
            return None
        found = self._rulesets.get(digest)
        if found is None:
            from ..ruleset import load_text
            rows = self.db.execute("SELECT source, file FROM rulesets WHERE digest = ?",
                                   (digest,))
            if not rows:
                return None
            found = self._rulesets[digest] = load_text(rows[0][0], rows[0][1])
        return found

    def switches(self) -> list[tuple[int, str, str | None, int]]:
        """Every ruleset switch: (seq, digest, previous digest, subscriptions renamed)."""
        return [(int(s), d, p, int(r)) for s, d, p, r in self.db.execute(
            "SELECT seq, digest, previous, renamed FROM ruleset_switches ORDER BY seq")]

    # -- applying ----------------------------------------------------------------------
    def apply(self, engine: Engine, event: Event | Mapping[str, Any] | EventError, *,
              source: str | None = None, line: int | None = None) -> Outcome:
        """Apply one event exactly once and return its outcome (the engine's: a stored id
        comes back ``replayed``, or refused as the engine refuses it; see
        :meth:`outcome` for what the store kept). ``source`` and ``line`` say where a
        line of a log came from (``revrules ingest`` resumes from them)."""
        (outcome,) = self.apply_many(engine, [(line, event)], source=source)
        return outcome

    def apply_many(self, engine: Engine,
                   items: Sequence[tuple[int | None, Event | Mapping[str, Any] | EventError]],
                   *, source: str | None = None) -> list[Outcome]:
        """Apply ``items`` (line, event) in order in one transaction: all are stored, or
        none (exactly-once is kept: a stored id is a replay). With ``source``, the
        position reached in it is stored in the same transaction."""
        self.use(engine)
        parsed = [(line, _parse(item)) for line, item in items]
        events = [p for _, (_, p) in parsed if p is not None]
        exclusive = len(events) != 1 or events[0].type == "tick" \
            or events[0].subscription is None
        if len(items) == 1 and not events:
            exclusive = False
        subscription = events[0].subscription if len(events) == 1 else None

        def work() -> list[Outcome]:
            # every item takes at most one sequence number: an event, or a rejection
            batch = _Batch(self, engine, events, seqs=len(items))
            out = [batch.apply(item, p, source, line) for (line, (item, p)) in parsed]
            batch.write()
            last = max((line for line, _ in items if line is not None), default=None)
            if source is not None and last is not None:
                self.db.write("INSERT INTO sources (name, position) VALUES (?, ?) ON "
                              "CONFLICT (name) DO UPDATE SET position = excluded.position",
                              (source, last))
            return out

        try:
            done: list[Outcome] = self._transaction(work, exclusive=exclusive,
                                                    subscription=subscription)
            return done
        except BaseException:
            self._cache.clear()  # rows read in a rolled-back transaction may be gone
            raise

    def _load(self, ids: Sequence[str],
              preloaded: Mapping[str, tuple[str, str | None]] | None = None
              ) -> tuple[dict[str, Subscription], dict[str, dt.datetime]]:
        subs: dict[str, Subscription] = {}
        last: dict[str, dt.datetime] = {}
        rows = [(sub_id, body, last_event)
                for sub_id, (body, last_event) in sorted((preloaded or {}).items())]
        wanted = sorted(set(ids) - set(preloaded or ()))
        rows += _select_in(self.db, "SELECT id, body, last_event FROM subscriptions WHERE id "
                           "IN ({})", wanted)
        for sub_id, body, last_event in rows:
            cached = self._cache.get(sub_id)
            if cached is not None and cached[0] == body:
                subs[sub_id] = cached[1]
            else:
                sub = _decode(body)
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[sub_id] = (body, sub)
                subs[sub_id] = sub
            if last_event is not None:
                last[sub_id] = _parse_time(last_event)
        return subs, last

    # -- transactions ------------------------------------------------------------------
    def _transaction(self, work: Callable[[], Any], *, exclusive: bool = False,
                     subscription: str | None = None) -> Any:
        db = self.db

        def attempt() -> Any:
            db.begin(exclusive=exclusive, subscription=subscription)
            try:
                result = work()
                db.commit()
            except BaseException:
                db.rollback()
                raise
            return result
        return _retry(db, attempt, on_retry=self._cache.clear)

    def _meta(self, key: str) -> str | None:
        rows = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.write("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                        "UPDATE SET value = excluded.value", (key, value))

    # -- reading -----------------------------------------------------------------------
    def position(self, source: str) -> int:
        """The last line of ``source`` stored by :meth:`apply_many` (0: none)."""
        rows = self.db.execute("SELECT position FROM sources WHERE name = ?", (source,))
        return int(rows[0][0]) if rows else 0

    def subscription(self, sub_id: str) -> Subscription | None:
        subs, _ = self._load([sub_id])
        return subs.get(sub_id)

    def history(self, sub_id: str) -> list[History]:
        """The stored events of one subscription, in the order they were applied."""
        return [History(int(seq), i, at, kind, bool(ok), code)
                for seq, i, at, kind, ok, code in self.db.execute(
                    "SELECT seq, id, at, type, ok, code FROM events WHERE subscription = ? "
                    "ORDER BY seq", (sub_id,))]

    def outcome(self, event_id: str) -> Outcome | None:
        """The outcome the store kept for ``event_id`` (its first delivery), or None."""
        rows = self.db.execute("SELECT body FROM outcomes WHERE event_id = ?", (event_id,))
        return _outcome(rows[0][0]) if rows else None

    def outcomes(self) -> Iterator[Outcome]:
        """Every stored outcome, refusals and rejected lines included, in order."""
        for _, body in self.db.execute(
                "SELECT seq, body FROM outcomes UNION ALL SELECT seq, body FROM rejections "
                "ORDER BY 1"):
            yield _outcome(body)

    def payloads(self) -> Iterator[Mapping[str, Any] | EventError]:
        """The input the store took, in order, as ``revrules eval`` would read it back."""
        wire = _wire()
        for _, payload, code, message in self.db.execute(
                "SELECT seq, payload, NULL, NULL FROM events UNION ALL SELECT seq, payload, "
                "code, message FROM rejections ORDER BY 1"):
            if payload is None:
                yield EventError(code or "bad_json", message or "not an event")
            else:
                yield wire._loads(payload)

    def stored_event(self, event_id: str) -> tuple[int, Mapping[str, Any], Outcome, str] | None:
        """(position among the stored input, payload, outcome, ruleset digest) of an id."""
        rows = self.db.execute("SELECT e.seq, e.payload, o.body, e.ruleset FROM events e JOIN "
                               "outcomes o ON o.event_id = e.id WHERE e.id = ?", (event_id,))
        if not rows or rows[0][1] is None:
            return None
        seq, payload, body, digest = rows[0]
        before = self.db.execute("SELECT (SELECT COUNT(*) FROM events WHERE seq <= ?) + "
                                 "(SELECT COUNT(*) FROM rejections WHERE seq <= ?)", (seq, seq))
        return int(before[0][0]), _wire()._loads(payload), _outcome(body), str(digest)

    def nearby_events(self, event_id: str) -> str:
        """`` (did you mean 'x'?)`` for an unknown event id, from the stored ids."""
        found = [r[0] for r in _select_in(self.db, "SELECT id FROM events WHERE id IN ({})",
                                          typo_candidates(event_id))]
        return did_you_mean(event_id, sorted(found))

    def revenue_events(self, *, currency: str | None = None,
                       storefront: str | None = None) -> Iterator[RevenueEvent]:
        """The stored revenue events, in order, of one currency or storefront if given."""
        wire = _wire()
        where, params = [], []
        for column, value in (("currency", currency), ("storefront", storefront)):
            if value is not None:
                where.append(f"{column} = ?")  # one of two fixed names
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        for (body,) in self.db.execute(f"SELECT body FROM revenue_events{clause} ORDER BY "
                                       "event_seq, n", params):
            yield wire.converter.structure(json.loads(body), RevenueEvent)

    def ledger(self, ruleset: Ruleset | None = None, *, currency: str | None = None,
               storefront: str | None = None) -> Ledger:
        """The ledger of the stored revenue events (no event is replayed): all of them,
        or one currency's or storefront's (a subscription keeps both)."""
        return Ledger.fold(self.revenue_events(currency=currency, storefront=storefront),
                           ruleset or self.ruleset())

    def _all_subscriptions(self) -> dict[str, Subscription]:
        return {sub_id: _decode(body) for sub_id, body in self.db.execute(
            "SELECT id, body FROM subscriptions ORDER BY id")}

    def state(self) -> State:
        """The whole state as one in-memory :class:`State` (every event id remembered)."""
        db = self.db
        subs = self._all_subscriptions()
        last_event = {sub_id: _parse_time(at) for sub_id, at in db.execute(
            "SELECT id, last_event FROM subscriptions WHERE last_event IS NOT NULL")}
        applied = {}
        clock: dt.datetime | None = None
        for event_id, digest, at, code, message, ok in db.execute(
                "SELECT id, digest, at, code, message, ok FROM events ORDER BY seq"):
            seen = Seen(digest, _parse_time(at), code, message)
            applied[event_id] = pack_seen(seen)
            if ok and (clock is None or seen.at > clock):
                clock = seen.at
        imported = self._meta("clock")
        if imported is not None and (clock is None or _parse_time(imported) > clock):
            clock = _parse_time(imported)
        last_tick = self._meta("last_tick")
        digest = self._meta("ruleset")
        stamp = None
        if digest is not None:
            name, version = db.execute("SELECT name, version FROM rulesets WHERE digest = ?",
                                       (digest,))[0]
            stamp = RulesetStamp(name, version, digest)
        return State(
            immutables.Map(subs),
            immutables.Map({p: int(c) for p, c in db.execute(
                "SELECT promotion, count FROM redemptions")}),
            immutables.Map({k: int(c) for k, c in db.execute(
                "SELECT key, count FROM customer_redemptions")}),
            immutables.Map(applied), clock,
            immutables.Map({s: dt.date.fromisoformat(d) for s, d in db.execute(
                "SELECT subscription, day FROM due")}),
            immutables.Map(last_event), _parse_time(last_tick) if last_tick else None, stamp)

    def counts(self) -> dict[str, int]:
        """How many rows each table holds (events, subscriptions, ...)."""
        out = {}
        for table in ("events", "outcomes", "rejections", "revenue_events", "subscriptions",
                      "redemptions", "customer_redemptions", "due", "rulesets",
                      "ruleset_switches"):
            out[table] = int(self.db.execute(f"SELECT COUNT(*) FROM {table}")[0][0])  # fixed
        return out

    def import_state(self, state: State) -> None:
        """Fill an empty store from an in-memory state (a ``--state-out`` file): its
        subscriptions, counters, due index, last tick and remembered event ids. The next
        :meth:`apply` checks that its ruleset serves every subscription."""
        def work() -> None:
            db = self.db
            if db.execute("SELECT 1 FROM subscriptions LIMIT 1") or \
                    db.execute("SELECT 1 FROM events LIMIT 1"):
                raise StoreError(f"{self.url}: a state can only be imported into an empty "
                                 "store")
            after = State(state.subscriptions, state.redemptions, state.customer_redemptions,
                          due=state.due, last_event=state.last_event,
                          last_tick=state.last_tick)
            batch = _Batch(self, None, [])
            batch.take(State(), after)
            batch.write()
            for event_id, seen in sorted(state.remembered()):
                db.execute("INSERT INTO events (seq, id, at, type, subscription, digest, ok, "
                           "code, message, ruleset, payload) VALUES (?, ?, ?, 'imported', "
                           "NULL, ?, ?, ?, ?, ?, NULL)",
                           (db.next_seq(), event_id, _time(seen.at), seen.digest,
                            1 if seen.code is None else 0, seen.code, seen.message,
                            state.ruleset.digest if state.ruleset else ""))
            if state.clock is not None:
                self._set_meta("clock", _time(state.clock))
        self._transaction(work, exclusive=True)


class _Batch:
    """One transaction's view of the store: the rows its events touch, read once (one
    query for all of its events' ids, subscriptions and due days), the changes the
    engine makes to them kept in memory, and every row written once at the end.

    Each event is applied by the unchanged engine to a partial :class:`State` of exactly
    what it touches, as the store holds it after the events before it in the batch.
    """

    _COUNTERS = (("redemptions", "promotion"), ("customer_redemptions", "key"))

    def __init__(self, store: Store, engine: Engine | None, events: Sequence[Event],
                 seqs: int = 0):
        self.store, self.db, self.engine = store, store.db, engine
        self.seen: dict[str, Seen | None] = {}  # event id → what the store remembers
        # subscription id → (the subscription, its last event's time), None: no row
        self.subs: dict[str, tuple[Subscription, dt.datetime | None] | None] = {}
        self.due: dict[str, dt.date | None] = {}  # subscription id → its due day, if any
        # counter table → key → count; what was read of it (held), for the update
        self.counts: dict[str, dict[str, int]] = {t: {} for t, _ in self._COUNTERS}
        self.held: dict[str, dict[str, int]] = {t: {} for t, _ in self._COUNTERS}
        self.last_tick: dt.datetime | None = None
        self.changed_subs: dict[str, None] = {}  # in the order they changed
        self.changed_due: dict[str, None] = {}
        self.tick_changed = False
        self.rows: dict[str, list[tuple[Any, ...]]] = {
            "events": [], "outcomes": [], "revenue_events": [], "rejections": []}
        for start in range(0, len(events), 300):
            self._prefetch(events[start:start + 300], first=start == 0,
                           seqs=seqs if start == 0 else 0)

    # -- reading -----------------------------------------------------------------------
    def _prefetch(self, events: Sequence[Event], *, first: bool, seqs: int = 0) -> None:
        """In one query: what the store remembers of the events' ids, their
        subscriptions and due days; with ``first``, every promotion's count and the last
        tick; and, on PostgreSQL, ``seqs`` sequence numbers. Then, in one more, the
        redemption counts of the customers of those subscriptions and checkouts."""
        db = self.db
        ids = sorted({ev.id for ev in events} - self.seen.keys())
        subs = sorted({ev.subscription for ev in events if ev.subscription is not None}
                      - self.due.keys())
        branches: list[str] = []
        if ids:
            branches.append("SELECT 'e', id, digest, at, code, message FROM events WHERE id "
                            f"IN ({', '.join('?' * len(ids))})")
        if subs:
            marks = ", ".join("?" * len(subs))
            branches.append("SELECT 'd', subscription, day, NULL, NULL, NULL FROM due WHERE "
                            f"subscription IN ({marks})")
            branches.append("SELECT 's', id, body, last_event, NULL, NULL FROM subscriptions "
                            f"WHERE id IN ({marks})")
        if first:
            branches.append("SELECT 'r', promotion, CAST(count AS TEXT), NULL, NULL, NULL "
                            "FROM redemptions")
            branches.append("SELECT 'm', key, value, NULL, NULL, NULL FROM meta WHERE key = "
                            "'last_tick'")
        if seqs and db.seq_branch:
            branches.append(db.seq_branch.format(count=int(seqs)))
        if not branches:
            return
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in db.execute(" UNION ALL ".join(branches), [*ids, *subs, *subs]):
            found.setdefault(row[0], []).append(row[1:])
        for event_id in ids:
            self.seen[event_id] = None
        for event_id, digest, at, code, message in found.get("e", ()):
            self.seen[event_id] = Seen(digest, _parse_time(at), code, message)
        if "q" in found:
            db.prefetch_seqs(sorted(int(row[0]) for row in found["q"]))
        if first:
            for promotion, count, *_ in found.get("r", ()):
                self.counts["redemptions"][promotion] = int(count)
                self.held["redemptions"][promotion] = int(count)
            if "m" in found:
                self.last_tick = _parse_time(found["m"][0][1])
        for sub_id in subs:
            self.due[sub_id] = None
        for sub_id, day, *_ in found.get("d", ()):
            self.due[sub_id] = dt.date.fromisoformat(day)
        self._read_subs(subs, {sub_id: (body, last)
                               for sub_id, body, last, *_ in found.get("s", ())})
        customers = {known[0].customer_id for sub_id in subs
                     if (known := self.subs[sub_id]) is not None}
        self._customer_counts(self._customer_keys(
            customers | {c for ev in events if (c := _checkout_customer(ev)) is not None}))

    def _read_subs(self, ids: Sequence[str],
                   preloaded: Mapping[str, tuple[str, str | None]] | None = None) -> None:
        """Read the subscriptions of ``ids`` the batch does not know yet (from
        ``preloaded`` rows, when the query that read them was the prefetch's)."""
        wanted = [sub_id for sub_id in ids if sub_id not in self.subs]
        if not wanted:
            return
        found, last = self.store._load(wanted if preloaded is None else (), preloaded)
        for sub_id in wanted:
            sub = found.get(sub_id)
            self.subs[sub_id] = None if sub is None else (sub, last.get(sub_id))

    def _subscriptions(self, ids: Iterable[str]) -> dict[str, Subscription]:
        ids = list(ids)
        self._read_subs(ids)
        return {sub_id: row[0] for sub_id in ids if (row := self.subs[sub_id]) is not None}

    def _customer_keys(self, customers: Iterable[str]) -> list[str]:
        assert self.engine is not None
        promotions = sorted(self.engine.rules.promotions)
        return [redemption_key(p, c) for c in sorted(customers) for p in promotions]

    def _customer_counts(self, keys: Sequence[str]) -> dict[str, int]:
        counts, held = self.counts["customer_redemptions"], self.held["customer_redemptions"]
        wanted = [key for key in keys if key not in counts]
        if wanted:
            read = dict(_select_in(self.db, "SELECT key, count FROM customer_redemptions "
                                   "WHERE key IN ({})", wanted))
            for key in wanted:
                counts[key] = held[key] = int(read.get(key, 0))
        return {key: counts[key] for key in keys if counts[key]}

    def _view(self, ev: Event) -> State:
        """What ``ev`` touches, as the store holds it now, as a partial state."""
        assert self.engine is not None
        stamp = self.engine.rules.stamp
        if ev.id not in self.seen or (ev.subscription is not None
                                      and ev.subscription not in self.due):
            self._prefetch([ev], first=False)  # not an event the batch was made with
        seen = self.seen[ev.id]
        if seen is not None:
            return State(applied=immutables.Map({ev.id: pack_seen(seen)}), ruleset=stamp)
        due: dict[str, dt.date] = {}
        if ev.type == "tick":
            until = rt.local_date(ev.at, self.engine.tz).isoformat()
            rows = self.db.execute("SELECT subscription, day FROM due WHERE day <= ?",
                                   (until,))
            # the days this batch has read or changed stand; the others come from rows
            due = {sub_id: day for sub_id, day in self.due.items()
                   if day is not None and day.isoformat() <= until}
            due.update((sub_id, dt.date.fromisoformat(day)) for sub_id, day in rows
                       if sub_id not in self.due)
        ids = sorted(due)
        if ev.subscription is not None:
            day = self.due[ev.subscription]
            if day is not None:
                due[ev.subscription] = day
            ids.append(ev.subscription)
        subs = self._subscriptions(ids)
        if ev.subscription is not None and ev.subscription not in subs \
                and ev.type != "checkout":
            # the engine suggests ids one typo away: the same ones, from the store
            subs.update(self._subscriptions(typo_candidates(ev.subscription)))
        last_event = {sub_id: last for sub_id in subs
                      if (last := self.subs[sub_id][1]) is not None}  # type: ignore[index]
        customers = {sub.customer_id for sub in subs.values()}
        checkout = _checkout_customer(ev)
        if checkout is not None:
            customers.add(checkout)
        per_customer = self._customer_counts(self._customer_keys(customers))
        return State(immutables.Map(subs), immutables.Map(self.counts["redemptions"]),
                     immutables.Map(per_customer), immutables.Map(), None,
                     immutables.Map(due), immutables.Map(last_event),
                     self.last_tick, stamp)

    # -- applying ----------------------------------------------------------------------
    def apply(self, item: Event | Mapping[str, Any] | EventError, event: Event | None,
              source: str | None, line: int | None) -> Outcome:
        engine = self.engine
        assert engine is not None
        if event is None:  # not an event: refused as the engine refuses it
            if isinstance(item, EventError):
                outcome = Outcome("", False, State(), error=Error(item.code, item.message))
            else:
                outcome = engine.apply(State(), item)
            self._reject(outcome, item, source, line)
            return outcome
        before = self._view(event)
        outcome = engine.apply(before, event)
        if event.id in before.applied:
            return outcome  # a replay, a conflicting id or a stored refusal: no change
        after = outcome.state
        seen = after.seen(event.id)
        if seen is None:  # not remembered (the ruleset cannot serve it, a defect)
            self._reject(outcome, item, source, line)
            return outcome
        self.seen[event.id] = seen
        self._record(event, item, seen, outcome)
        self.take(before, after)
        return outcome

    def take(self, before: State, after: State) -> None:
        """Keep what changed from ``before`` to ``after``, to be written at the end."""
        for sub_id, sub in after.subscriptions.items():
            last = after.last_event.get(sub_id)
            if before.subscriptions.get(sub_id) is sub and \
                    before.last_event.get(sub_id) == last:
                continue
            self.subs[sub_id] = (sub, last)
            self.changed_subs[sub_id] = None
        for sub_id in sorted(set(before.due.keys()) | set(after.due.keys())):
            day = after.due.get(sub_id)
            if before.due.get(sub_id) != day:
                self.due[sub_id] = day
                self.changed_due[sub_id] = None
        for (table, _), old, new in zip(self._COUNTERS,
                                        (before.redemptions, before.customer_redemptions),
                                        (after.redemptions, after.customer_redemptions),
                                        strict=True):
            for key in sorted(new.keys()):
                if new[key] != old.get(key, 0):
                    self.held[table].setdefault(key, old.get(key, 0))
                    self.counts[table][key] = new[key]
        if after.last_tick != before.last_tick and after.last_tick is not None:
            self.last_tick = after.last_tick
            self.tick_changed = True

    @rt.in_context
    def _record(self, ev: Event, item: object, seen: Seen, outcome: Outcome) -> None:
        assert self.engine is not None
        wire = _wire()
        seq = self.db.next_seq()
        # the payload as it came (a float in it is kept as JSON writes it)
        payload = wire.dumps(dict(item), check_floats=False) if isinstance(item, Mapping) \
            else None
        self.rows["events"].append(
            (seq, ev.id, _time(seen.at), ev.type, ev.subscription, seen.digest,
             1 if outcome.ok else 0, seen.code, seen.message, self.engine.rules.stamp.digest,
             payload))
        body, texts = wire.outcome_texts(outcome)  # what outcome_to_json writes, once
        self.rows["outcomes"].append((ev.id, seq, body))
        if outcome.ok and outcome.events:
            self.rows["revenue_events"].extend(
                (e.id, seq, n, e.type, e.subscription, e.currency, month_of(e.at),
                 e.storefront, e.channel, e.plan, text)
                for n, (e, text) in enumerate(zip(outcome.events, texts, strict=True), 1))

    def _reject(self, outcome: Outcome, item: object, source: str | None,
                line: int | None) -> None:
        assert self.engine is not None
        wire = _wire()
        error = outcome.error
        assert error is not None
        payload = None
        if isinstance(item, Mapping):
            try:
                payload = wire.dumps(dict(item), check_floats=False)
            except Exception:  # noqa: BLE001 - a payload JSON cannot hold is not kept
                payload = None
        self.rows["rejections"].append(
            (self.db.next_seq(), source, line, outcome.event or None, error.code,
             error.message, self.engine.rules.stamp.digest, payload,
             wire.outcome_to_json(outcome)))

    # -- writing -----------------------------------------------------------------------
    _INSERTS = {
        "events": "INSERT INTO events (seq, id, at, type, subscription, digest, ok, code, "
                  "message, ruleset, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "outcomes": "INSERT INTO outcomes (event_id, seq, body) VALUES (?, ?, ?)",
        "revenue_events": "INSERT INTO revenue_events (id, event_seq, n, type, subscription, "
                          "currency, month, storefront, channel, plan, body) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "rejections": "INSERT INTO rejections (seq, source, line, event_id, code, message, "
                      "ruleset, payload, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    }

    def write(self) -> None:
        """Write every row the batch recorded or changed, each once."""
        db = self.db
        for table, sql in self._INSERTS.items():
            if self.rows[table]:
                db.executemany(sql, self.rows[table])
        rows = []
        for sub_id in self.changed_subs:
            sub, last = self.subs[sub_id]  # type: ignore[misc]
            body = _encode(sub)
            self.store._cache[sub_id] = (body, sub)
            rows.append((sub_id, sub.customer_id, sub.storefront, sub.plan, sub.status,
                         _time(last) if last is not None else None, body))
        if rows:
            db.executemany(
                "INSERT INTO subscriptions (id, customer_id, storefront, plan, status, "
                "last_event, body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                "SET customer_id = excluded.customer_id, storefront = excluded.storefront, "
                "plan = excluded.plan, status = excluded.status, last_event = "
                "excluded.last_event, body = excluded.body", rows)
        gone = [(sub_id,) for sub_id in self.changed_due if self.due[sub_id] is None]
        days = [(sub_id, day.isoformat()) for sub_id in self.changed_due
                if (day := self.due[sub_id]) is not None]
        if gone:
            db.executemany("DELETE FROM due WHERE subscription = ?", gone)
        if days:
            db.executemany("INSERT INTO due (subscription, day) VALUES (?, ?) ON CONFLICT "
                           "(subscription) DO UPDATE SET day = excluded.day", days)
        for table, column in self._COUNTERS:
            counts, held = self.counts[table], self.held[table]
            # only while the row still holds what this transaction read: another writer
            # that redeemed in between makes it divide by zero, and this transaction runs
            # again on the new count (fixed table names)
            changes = [(key, counts[key] - held[key], held[key]) for key in sorted(counts)
                       if counts[key] != held[key]]
            if changes:
                db.executemany(
                    f"INSERT INTO {table} ({column}, count) VALUES (?, ?) ON CONFLICT "
                    f"({column}) DO UPDATE SET count = {table}.count + excluded.count + "
                    f"0 / (CASE WHEN {table}.count = ? THEN 1 ELSE 0 END)", changes)
        if self.tick_changed and self.last_tick is not None:
            self.store._set_meta("last_tick", _time(self.last_tick))


def _checkout_customer(ev: Event) -> str | None:
    """The customer id a checkout names (None for other events, or no valid id)."""
    if ev.type == "checkout" and isinstance(ev.customer, Mapping) \
            and isinstance(ev.customer.get("id"), str):
        return str(ev.customer["id"])
    return None


def typo_candidates(name: str) -> list[str]:
    """Every name one typo from ``name`` that :func:`one_edit_away` would look up."""
    wanted: list[str] = []

    def present(candidate: str) -> bool:
        wanted.append(candidate)
        return False
    one_edit_away(name, present)
    return wanted


def _retry(db: Backend, attempt: Callable[[], Any],
           on_retry: Callable[[], None] | None = None) -> Any:
    for n in range(RETRIES):
        try:
            return attempt()
        except Exception as exc:
            if not db.retryable(exc) or n == RETRIES - 1:
                raise
            if on_retry is not None:
                on_retry()
            time.sleep(min(0.05, 0.0005 * (n + 1)))
    raise AssertionError("unreachable")  # pragma: no cover


def _parse(item: Event | Mapping[str, Any] | EventError) -> tuple[Any, Event | None]:
    if isinstance(item, Event):
        return item, item
    if isinstance(item, EventError) or not isinstance(item, Mapping):
        return item, None
    try:
        return item, parse_event(item)
    except EventError:
        return item, None
    except Exception:  # noqa: BLE001 - the engine's safety net answers it
        return item, None


def _select_in(db: Backend, sql: str, keys: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    """``sql`` with ``IN ({})`` filled with placeholders for ``keys``, in chunks."""
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        out.extend(db.execute(sql.format(", ".join("?" * len(chunk))), chunk))
    return out


def _encode(sub: Subscription) -> str:
    wire = _wire()
    # our own values: Decimals as strings, never a float to refuse
    text: str = wire.dumps(wire.converter.unstructure(sub), check_floats=False)
    return text


def _decode(body: str) -> Subscription:
    wire = _wire()
    sub: Subscription = wire.converter.structure(json.loads(body), Subscription)
    return sub


def _outcome(body: str) -> Outcome:
    outcome: Outcome = _wire().from_json(body, Outcome)
    return outcome
