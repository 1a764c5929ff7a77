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
from ..state import RulesetStamp, Seen, State, Subscription
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
            out = [self._apply_one(engine, item, p, source, line)
                   for (line, (item, p)) in parsed]
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

    def _apply_one(self, engine: Engine, item: Event | Mapping[str, Any] | EventError,
                   event: Event | None, source: str | None, line: int | None) -> Outcome:
        if event is None:  # not an event: refused as the engine refuses it
            if isinstance(item, EventError):
                outcome = Outcome("", False, State(), error=Error(item.code, item.message))
            else:
                outcome = engine.apply(State(), item)
            self._reject(engine, outcome, item, source, line)
            return outcome
        before = self._partial(engine, event)
        outcome = engine.apply(before, event)
        if event.id in before.applied:
            return outcome  # a replay, a conflicting id or a stored refusal: no change
        after = outcome.state
        seen = after.applied.get(event.id)
        if seen is None:  # not remembered (the ruleset cannot serve it, a defect)
            self._reject(engine, outcome, item, source, line)
            return outcome
        self._record(engine, event, item, seen, outcome)
        self._write_rows(before, after)
        return outcome

    # -- reading what an event touches --------------------------------------------------
    def _partial(self, engine: Engine, ev: Event) -> State:
        db = self.db
        stamp = engine.rules.stamp
        # one round trip for what every event reads: what the store remembers of the id,
        # the subscription and its due day, the counters, the last tick (and, on
        # PostgreSQL, the event's sequence number)
        rows = db.execute(
            "SELECT 'e', digest, at, code, message FROM events WHERE id = ? "
            "UNION ALL SELECT 'd', subscription, day, NULL, NULL FROM due "
            "WHERE subscription = ? "
            "UNION ALL SELECT 's', id, body, last_event, NULL FROM subscriptions WHERE id = ? "
            "UNION ALL SELECT 'r', promotion, CAST(count AS TEXT), NULL, NULL FROM redemptions "
            "UNION ALL SELECT 'm', key, value, NULL, NULL FROM meta WHERE key = 'last_tick'"
            + db.seq_branch, (ev.id, ev.subscription, ev.subscription))
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(row[1:])
        if "q" in found:
            db.prefetch_seq(int(found["q"][0][0]))
        if "e" in found:
            digest, at, code, message = found["e"][0]
            seen = Seen(digest, _parse_time(at), code, message)
            return State(applied=immutables.Map({ev.id: seen}), ruleset=stamp)
        ids: list[str] = []
        due: dict[str, dt.date] = {}
        if ev.type == "tick":
            until = rt.local_date(ev.at, engine.tz)
            for sub_id, day in db.execute("SELECT subscription, day FROM due WHERE day <= ? "
                                          "ORDER BY subscription", (until.isoformat(),)):
                due[sub_id] = dt.date.fromisoformat(day)
                ids.append(sub_id)
        for sub_id, day, _, _ in found.get("d", ()):
            due[sub_id] = dt.date.fromisoformat(day)
        redemptions = {p: int(c) for p, c, _, _ in sorted(found.get("r", ()))}
        last_tick = found["m"][0][1] if "m" in found else None
        preloaded = {sub_id: (body, last) for sub_id, body, last, _ in found.get("s", ())}
        subs, last_event = self._load(ids, preloaded)
        if ev.subscription is not None and ev.subscription not in subs \
                and ev.type != "checkout":
            # the engine suggests ids one typo away: the same ones, from the store
            nearby, _ = self._load(typo_candidates(ev.subscription))
            subs.update(nearby)
        customers = {sub.customer_id for sub in subs.values()}
        if ev.type == "checkout" and isinstance(ev.customer, Mapping) \
                and isinstance(ev.customer.get("id"), str):
            customers.add(ev.customer["id"])
        promotions = sorted(engine.rules.promotions)
        keys = [redemption_key(p, c) for c in sorted(customers) for p in promotions]
        per_customer = {k: int(c) for k, c in _select_in(
            db, "SELECT key, count FROM customer_redemptions WHERE key IN ({})", keys)}
        return State(immutables.Map(subs), immutables.Map(redemptions),
                     immutables.Map(per_customer), immutables.Map(), None,
                     immutables.Map(due), immutables.Map(last_event),
                     _parse_time(last_tick) if last_tick else None, stamp)

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

    # -- writing what changed -----------------------------------------------------------
    @rt.in_context
    def _record(self, engine: Engine, ev: Event, item: object, seen: Seen,
                outcome: Outcome) -> None:
        wire = _wire()
        db = self.db
        seq = db.next_seq()
        # the payload as it came (a float in it is kept as JSON writes it)
        payload = wire.dumps(dict(item), check_floats=False) if isinstance(item, Mapping) \
            else None
        db.write("INSERT INTO events (seq, id, at, type, subscription, digest, ok, code, "
                   "message, ruleset, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (seq, ev.id, _time(seen.at), ev.type, ev.subscription, seen.digest,
                    1 if outcome.ok else 0, seen.code, seen.message,
                    engine.rules.stamp.digest, payload))
        body, texts = wire.outcome_texts(outcome)  # what outcome_to_json writes, once
        db.write("INSERT INTO outcomes (event_id, seq, body) VALUES (?, ?, ?)",
                 (ev.id, seq, body))
        if outcome.ok and outcome.events:
            rows = [(e.id, seq, n, e.type, e.subscription, e.currency, month_of(e.at),
                     e.storefront, e.channel, e.plan, text)
                    for n, (e, text) in enumerate(zip(outcome.events, texts, strict=True), 1)]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            db.write("INSERT INTO revenue_events (id, event_seq, n, type, subscription, "
                       "currency, month, storefront, channel, plan, body) VALUES " + values,
                       [value for row in rows for value in row])

    def _reject(self, engine: Engine, outcome: Outcome, item: object, source: str | None,
                line: int | None) -> None:
        wire = _wire()
        error = outcome.error
        assert error is not None
        payload = None
        if isinstance(item, Mapping):
            try:
                payload = wire.dumps(dict(item), check_floats=False)
            except Exception:  # noqa: BLE001 - a payload JSON cannot hold is not kept
                payload = None
        self.db.write("INSERT INTO rejections (seq, source, line, event_id, code, message, "
                        "ruleset, payload, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (self.db.next_seq(), source, line, outcome.event or None, error.code,
                         error.message, engine.rules.stamp.digest, payload,
                         wire.outcome_to_json(outcome)))

    def _write_rows(self, before: State, after: State) -> None:
        db = self.db
        for sub_id, sub in after.subscriptions.items():
            old = before.subscriptions.get(sub_id)
            last = after.last_event.get(sub_id)
            if old is sub and before.last_event.get(sub_id) == last:
                continue
            body = _encode(sub)
            self._cache[sub_id] = (body, sub)
            db.write("INSERT INTO subscriptions (id, customer_id, storefront, plan, status, "
                       "last_event, body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO "
                       "UPDATE SET customer_id = excluded.customer_id, storefront = "
                       "excluded.storefront, plan = excluded.plan, status = excluded.status, "
                       "last_event = excluded.last_event, body = excluded.body",
                       (sub_id, sub.customer_id, sub.storefront, sub.plan, sub.status,
                        _time(last) if last is not None else None, body))
        for sub_id in sorted(set(before.due.keys()) | set(after.due.keys())):
            day = after.due.get(sub_id)
            if before.due.get(sub_id) == day:
                continue
            if day is None:
                db.write("DELETE FROM due WHERE subscription = ?", (sub_id,))
            else:
                db.write("INSERT INTO due (subscription, day) VALUES (?, ?) ON CONFLICT "
                           "(subscription) DO UPDATE SET day = excluded.day",
                           (sub_id, day.isoformat()))
        for table, column, old_counts, new_counts in (
                ("redemptions", "promotion", before.redemptions, after.redemptions),
                ("customer_redemptions", "key", before.customer_redemptions,
                 after.customer_redemptions)):
            for key in sorted(new_counts.keys()):
                held = old_counts.get(key, 0)
                delta = new_counts[key] - held
                if delta:
                    # only while the row still holds what this transaction read: another
                    # writer that redeemed in between makes it divide by zero, and this
                    # transaction runs again on the new count (fixed table names)
                    db.write(f"INSERT INTO {table} ({column}, count) VALUES (?, ?) ON "
                             f"CONFLICT ({column}) DO UPDATE SET count = {table}.count + "
                             f"excluded.count + 0 / (CASE WHEN {table}.count = ? THEN 1 "
                             "ELSE 0 END)", (key, delta, held))
        if after.last_tick != before.last_tick and after.last_tick is not None:
            self._set_meta("last_tick", _time(after.last_tick))

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
            applied[event_id] = seen
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
            self._write_rows(State(), after)
            for event_id in sorted(state.applied.keys()):
                seen = state.applied[event_id]
                db.execute("INSERT INTO events (seq, id, at, type, subscription, digest, ok, "
                           "code, message, ruleset, payload) VALUES (?, ?, ?, 'imported', "
                           "NULL, ?, ?, ?, ?, ?, NULL)",
                           (db.next_seq(), event_id, _time(seen.at), seen.digest,
                            1 if seen.code is None else 0, seen.code, seen.message,
                            state.ruleset.digest if state.ruleset else ""))
            if state.clock is not None:
                self._set_meta("clock", _time(state.clock))
        self._transaction(work, exclusive=True)


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
