"""The store's commands: ``revrules ingest``, ``revrules state`` and the ``--db`` option
of ``replay``, ``explain``, ``reconcile`` and ``growth`` (docs/store.md).

Kept apart from :mod:`revrules.cli`, which calls :func:`add_commands` when it builds its
parser; the commands that read a log get ``--db`` and run :func:`run_with_db` first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ruleset import Ruleset
    from .store import Store

__all__ = ["add_commands", "run_with_db"]

#: the commands that read ``--db URL`` in place of an event log
DB_COMMANDS = ("replay", "explain", "reconcile", "growth")


def add_commands(commands: Any) -> None:
    """Add ``ingest`` and ``state`` to the subparsers ``commands``, and ``--db`` to the
    commands that can read a store instead of a log."""
    from .cli import _positive

    ing = commands.add_parser(
        "ingest", help="apply an event log to a store, exactly once",
        description="Apply each event of a JSONL log to the store at --db, each exactly "
                    "once: an event id the store holds changes nothing, so running it "
                    "again (or after a kill) stores nothing twice, and it resumes after "
                    "the last line it stored. A progress bar is shown on a terminal. "
                    "Switching the store to another ruleset is recorded, and refused "
                    "when the ruleset cannot serve every subscription of the store. "
                    "Exit 0 when every event read applied, 1 when any did not or the "
                    "switch was refused, 2 on bad input.")
    ing.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    ing.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    ing.add_argument("--db", required=True, metavar="URL",
                     help="the store: sqlite:///path.db or postgresql://host/db")
    ing.add_argument("--batch", type=_positive, default=None, metavar="N",
                     help="events per transaction (default 100 on SQLite, 1 on PostgreSQL)")
    ing.add_argument("--state-in", metavar="FILE",
                     help="first fill the (empty) store from this state file (JSON)")
    ing.set_defaults(command="ingest", run=_ingest)

    sta = commands.add_parser(
        "state", help="show a subscription of a store, or write the store's state",
        description="With --subscription, print one subscription of the store (JSON, the "
                    "state file's dialect) and its history, one stored event a line. "
                    "With --out, write the whole state as a state file. Exit 2 when there "
                    "is no such subscription.")
    sta.add_argument("--db", required=True, metavar="URL", help="the store")
    sta.add_argument("--subscription", metavar="ID", help="the subscription to show")
    sta.add_argument("--out", metavar="FILE", help="write the whole state here (JSON)")
    sta.set_defaults(command="state", run=_state)

    for name in DB_COMMANDS:
        sub = commands.choices[name]
        for action in sub._actions:
            if action.dest == "events":
                action.nargs = "?"
                action.default = None
                action.help = (action.help or "") + " (or --db)"
        sub.add_argument("--db", metavar="URL",
                         help="read the store at URL instead of an event log")
        sub.set_defaults(run=_reading_db(sub.get_default("run")))


def _reading_db(run: Any) -> Any:
    def run_or_read_db(args: argparse.Namespace) -> int:
        stored = run_with_db(args)
        return int(run(args)) if stored is None else stored
    return run_or_read_db


def run_with_db(args: argparse.Namespace) -> int | None:
    """Run ``args``' command against ``--db``; None when it names no store (read the log)."""
    from .cli import UsageError

    db = getattr(args, "db", None)
    if args.command not in DB_COMMANDS:
        return None
    if db is None:
        if args.events is None:
            raise UsageError(f"{args.command} needs EVENTS or --db URL")
        return None
    if args.events is not None:
        raise UsageError(f"{args.command} reads EVENTS or --db URL, not both")
    from .cli import _load_checked

    ruleset = _load_checked(args.rules)
    with _open(db) as store:
        runner = {"replay": _replay, "explain": _explain, "reconcile": _reconcile,
                  "growth": _growth}[args.command]
        result: int = runner(args, ruleset, store)
        return result


@contextlib.contextmanager
def _open(url: str) -> Iterator[Store]:
    from .cli import UsageError
    from .store import Store, StoreError

    try:
        store = Store.open(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


# -- ingest ----------------------------------------------------------------------------


def _ingest(args: argparse.Namespace) -> int:
    from .cli import (
        EXIT_FAILED,
        EXIT_OK,
        UsageError,
        _iter_log,
        _load_checked,
        _log_length,
        _out,
        _progress,
        _read_state,
        _say,
    )
    from .engine import Engine
    from .store import StoreError, SwitchRefused

    ruleset = _load_checked(args.rules)
    engine = Engine(ruleset)
    with _open(args.db) as store:
        if args.state_in:
            try:
                store.import_state(_read_state(args.state_in))
            except StoreError as exc:
                raise UsageError(str(exc)) from None
        try:
            store.use(engine)
        except SwitchRefused as exc:
            _refused(args.rules, args.db, exc)
            return EXIT_FAILED
        source = None if args.events == "-" else "file:" + os.path.realpath(args.events)
        start = store.position(source) if source is not None else 0
        batch = args.batch or (1 if store.db.dialect == "postgresql" else 100)
        total = _log_length(args.events) if source is not None else 0
        counts = {"read": 0, "new": 0, "failed": 0, "replayed": 0}
        pending: list[tuple[int | None, Any]] = []

        def flush() -> None:
            for outcome in store.apply_many(engine, pending, source=source):
                if outcome.replayed or (outcome.error is not None and
                                        outcome.error.code == "id_conflict"):
                    counts["replayed"] += 1
                else:
                    counts["new"] += 1
                if not outcome.ok:
                    counts["failed"] += 1
            pending.clear()

        with _progress(total, "ingesting") as tick:
            line = 0
            for line, item in _numbered(args.events, _iter_log):
                if line <= start:
                    continue
                counts["read"] += 1
                pending.append((line, item))
                if len(pending) >= batch:
                    flush()
                if tick is not None:
                    tick(min(line, total))
            if pending:
                flush()
        skipped = f", {start} lines stored before were skipped" if start else ""
        _out(f"{args.events}: {counts['read']} events read, {counts['new']} stored "
             f"({counts['failed']} not applied), {counts['replayed']} already in the "
             f"store{skipped}")
        if counts["failed"]:
            _say(f"{counts['failed']} events did not apply; `revrules replay --db` counts "
                 "them, the store keeps each with its error")
            return EXIT_FAILED
        return EXIT_OK


def _numbered(file: str, iter_log: Any) -> Iterator[tuple[int, Any]]:
    """(line number, item) of a log: the line numbers ``wire.read_events`` gives."""
    from .cli import UsageError, _name, _open_events, _reason
    from .wire import bounded_lines, read_events

    with _open_events(file) as handle:
        try:
            yield from read_events(bounded_lines(handle))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{_name(file)} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise UsageError(f"cannot read {_name(file)}: {_reason(exc)}") from None


def _refused(rules: str, db: str, exc: Any) -> None:
    """The subscriptions a ruleset cannot serve, as ``revrules check --state`` lists them."""
    from .cli import _out
    from .text import printable

    for sub_id, error in exc.problems:
        _out(printable(f"{db}: subscription {sub_id!r}: {error.code}: {error.message}"))
    _out(printable(f"{rules}: cannot serve {len(exc.problems)} of {exc.total} subscriptions "
                   f"in {db}; the store stays on its ruleset"))


# -- state -----------------------------------------------------------------------------


def _state(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK, UsageError, _out, _write_state
    from .text import printable
    from .wire import converter, dumps

    if not args.subscription and not args.out:
        raise UsageError("state needs --subscription ID or --out FILE")
    with _open(args.db) as store:
        if args.out:
            _write_state(args.out, store.state())
        if args.subscription:
            sub = store.subscription(args.subscription)
            if sub is None:
                from .diagnostics import did_you_mean
                from .store import typo_candidates
                near = sorted(c for c in typo_candidates(args.subscription)
                              if store.subscription(c) is not None)
                raise UsageError(f"{args.db}: no subscription {args.subscription!r}"
                                 f"{did_you_mean(args.subscription, near)}")
            _out(dumps(converter.unstructure(sub)))
            for h in store.history(args.subscription):
                result = "applied" if h.ok else f"refused: {h.code}"
                at = h.at.replace(".000000Z", "Z")
                _out(printable(f"  #{h.seq} {at} {h.type} {h.event_id}: {result}"))
    return EXIT_OK


# -- the commands that read a store ----------------------------------------------------


def _replay(args: argparse.Namespace, ruleset: Ruleset, store: Store) -> int:
    from . import reports
    from .accrual import Accrual
    from .cli import UsageError, _out, _report_failures, _revenue_views, _write_text
    from .state import State
    from .taxes import Taxes

    if (args.locale or args.fx) and not args.html:
        raise UsageError("--locale and --fx are options of the HTML page: add --html FILE")
    try:
        locale = reports.parse_locale(args.locale or "en")
        fx = reports.parse_fx(args.fx) if args.fx else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.workers > 1:
        raise UsageError("--workers replays a log file: with --db the ledger is read from "
                         "the store")
    ledger = store.ledger(ruleset)
    if fx is not None and (missing := fx.missing(ledger.currencies())):
        raise UsageError(f"--fx gives no rate for {', '.join(missing)}, a currency of the store")
    summary = reports.Summary.of(store.outcomes())
    views = args.basis == "accrual" or args.movements or args.tax
    # the page always has the accrual and tax views
    accrual = Accrual.from_outcomes(store.outcomes(), ruleset) \
        if args.basis == "accrual" or args.html else None
    taxes = Taxes.from_outcomes(store.outcomes(), ruleset, store.subscription) \
        if args.tax or args.html else None
    if views:
        # the views read the ledger and the counts only, never the state
        _revenue_views(args, ruleset, reports.Streamed(ruleset, summary, State(), ledger),
                       accrual if args.basis == "accrual" else None,
                       taxes if args.tax else None)
    elif args.format == "json":
        _out(reports.render_json(ledger, ruleset, summary))
    elif args.format == "csv":
        sys.stdout.write(reports.render_csv(ledger))
    else:
        _out(reports.render_table(ledger, ruleset, summary))
    if args.html:
        _write_text(args.html, reports.render_html(ledger, ruleset, summary, locale=locale,
                                                   fx=fx, accrual=accrual, taxes=taxes),
                    "HTML report")
    return _report_failures(summary)


def _explain(args: argparse.Namespace, ruleset: Ruleset, store: Store) -> int:
    from .cli import EXIT_FAILED, EXIT_OK, UsageError, _out
    from .explain import Explanation, render_explanation
    from .state import State

    found = store.stored_event(args.event)
    if found is None:
        raise UsageError(f"no event '{args.event}' in the store"
                         f"{store.nearby_events(args.event)}")
    position, payload, outcome, digest = found
    decided = store.ruleset(digest) or ruleset  # the rules that decided it
    _out(render_explanation(Explanation(decided, payload, State(), outcome, position)))
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _reconcile(args: argparse.Namespace, ruleset: Ruleset, store: Store) -> int:
    from .cli import EXIT_FAILED, EXIT_OK, UsageError, _out, _read_text
    from .reconcile import (
        SettlementError,
        read_settlements,
        reconcile,
        reconciliation_to_wire,
        render_reconciliation,
    )
    from .wire import dumps

    settlements = None
    if args.settlements:
        text = _read_text(args.settlements, "settlement report")
        try:
            settlements = read_settlements(text.splitlines())
        except SettlementError as exc:
            raise UsageError(f"{args.settlements}: {exc}") from None
    result = reconcile(ruleset, store.payloads(), settlements)
    _out(dumps(reconciliation_to_wire(result)) if args.format == "json"
         else render_reconciliation(result))
    return EXIT_OK if result.clean else EXIT_FAILED


def _growth(args: argparse.Namespace, ruleset: Ruleset, store: Store) -> int:
    from .cli import _out, _report_failures
    from .growth import Growth, growth_to_wire, render_growth
    from .reports import Summary
    from .wire import dumps

    figures = Growth.fold(store.outcomes(), ruleset)
    _out(dumps(growth_to_wire(figures)) if args.format == "json"
         else render_growth(figures, args.months))
    return _report_failures(Summary.of(store.outcomes()))
