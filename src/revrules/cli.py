"""The ``revrules`` command: check rulesets and evaluate event logs.

``revrules check FILE...``
    Parse and check each ruleset; diagnostics (errors and warnings) go to stderr,
    ``FILE: ok`` to stdout for each file without errors. Exit 0 when every file
    checks (warnings allowed), 1 when any has errors (or, with ``--strict``, warnings),
    2 when a file cannot be read. Every diagnostic shows its code (docs/codes.md).

``revrules eval RULES EVENTS.jsonl [--state-in FILE] [--state-out FILE]``
    Apply each event in order and print one outcome line per event (WIRE.md). Exit 0
    when every event applied, 1 when any gave ``ok: false`` (every line is still
    printed), 2 when the ruleset does not check or a file cannot be read.

``revrules quote RULES EVENT.json [--state STATE.json]``
    Price a checkout, a renewal_due or a plan_change_requested without applying it and
    print the quote as one JSON line (docs/cli.md). Exit 1 when the event cannot be
    quoted (the error is printed as JSON), 2 when a file cannot be used.

``revrules coverage RULES EVENTS.jsonl [--threshold N] [--format text|json] [--html FILE]``
    Replay the log with coverage: conditions seen true and false, table items never
    exercised (docs/coverage.md). Exit 1 below the threshold.

``revrules replay|diff|forecast|explain|reconcile|growth|generate …``
    Measure revenue: the ledger report (table, JSON, CSV, HTML), what-if diffs, one
    event explained rule by rule, reconciliation of decided charges against payments
    and settlements, growth figures, and example logs (docs/ledger.md).

``revrules test [PATH...] [--seed N] [--examples N] [--coverage]``
    Run the .rrtest files (docs/testing.md): scenarios, example tables, and invariants
    against generated event sequences. Exit 0 when every test passes, 1 when any
    fails, 2 when a file cannot be read or parsed.

Bad input never gives a Python traceback: every problem is one clear line on stderr
and an exit status. An unexpected internal error exits 3 (``--traceback`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import itertools
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._version import __version__
from .diagnostics import RulesetError
from .text import printable

if TYPE_CHECKING:
    from .accrual import Accrual
    from .events import EventError
    from .parallel import Partitioned
    from .reports import Streamed, Summary
    from .ruleset import Ruleset
    from .state import State
    from .taxes import Taxes

__all__ = ["main"]

PROG = "revrules"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
#: The largest rule file the command line reads (8 MiB); a larger one exits 2. The
#: longest event-log line is ``wire.MAX_EVENT_LINE``.
MAX_RULESET_BYTES = 8 * 1024 * 1024
#: The collector's thresholds during a long replay (see ``_settled_heap``).
HEAP_THRESHOLDS = (50_000, 20, 100)


class UsageError(Exception):
    """A problem with the command line or a file it names: one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (never raises for bad input)."""
    _utf8_streams()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _terminate_as_exception():
            return int(args.run(args))
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except _Terminated:
        _say("terminated")
        return 143
    except BrokenPipeError:
        # the reader went away (``revrules eval … | head``): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit
        _silence_stdout()
        return EXIT_FAILED
    except Exception as exc:
        if args.traceback:
            raise
        _say(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback "
             "and report it)")
        return EXIT_INTERNAL


class _Terminated(BaseException):
    """SIGTERM, raised where the program is, so that every ``finally`` runs (temporary
    files are removed) before it exits with status 143."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _utf8_streams() -> None:
    """Write UTF-8 to stdout and stderr whatever the locale (LC_ALL=C, ISO-8859-1, …);
    a character no encoder can write (a lone surrogate) is escaped, never an error."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(encoding="utf-8", errors="backslashreplace")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Check revenue rulesets (.rr) and evaluate event logs.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of an internal error")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = commands.add_parser(
        "check", help="parse and check rulesets",
        description="Parse and check each ruleset; print every error and warning.")
    check.add_argument("files", nargs="+", metavar="FILE", help="a .rr file")
    check.add_argument("--strict", action="store_true",
                       help="treat warnings as errors: a file with a warning fails (exit 1)")
    check.add_argument("--state", metavar="FILE",
                       help="also list every subscription of this state file that the "
                            "ruleset cannot serve (exit 1 if any)")
    check.set_defaults(command="check", run=_check)

    run = commands.add_parser(
        "eval", help="apply an event log and print one outcome per event",
        description="Apply each event of a JSONL log in order and print one outcome "
                    "line (JSON) per event. Exit 0 when every event applied, 1 when any "
                    "did not, 2 when the ruleset does not check.")
    run.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    run.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    run.add_argument("--state-in", metavar="FILE", help="start from this state (JSON)")
    run.add_argument("--state-out", metavar="FILE", help="write the final state here (JSON)")
    run.set_defaults(command="eval", run=_eval)

    quo = commands.add_parser(
        "quote", help="price one event without applying it",
        description="Print what a checkout, a renewal_due or a plan_change_requested "
                    "would charge, as apply would decide it, without applying it: one "
                    "JSON line. A checkout with a trial is quoted at its first charge, "
                    "the trial end. Exit 0 with a quote, 1 when the event cannot be "
                    "quoted ({\"error\": {...}} is printed), 2 when a file cannot be used.")
    quo.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    quo.add_argument("event", metavar="EVENT", help="a JSON file holding one event")
    quo.add_argument("--state", metavar="FILE",
                     help="the state holding the subscription (JSON); empty by default")
    quo.set_defaults(command="quote", run=_quote)

    rep = commands.add_parser(
        "replay", help="apply an event log and report its revenue ledger",
        description="Apply each event of a JSONL log in order and print the revenue "
                    "ledger: per currency and month, gross sales, discounts, credits, "
                    "refunds, net revenue, tax, commission, proceeds, active and trialing "
                    "subscriptions, MRR and churn (cash basis, tax-exclusive). Exit 0 when "
                    "every event applied, 1 when any did not (the report is still printed), "
                    "2 when the ruleset does not check.")
    rep.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    rep.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    rep.add_argument("--format", choices=("table", "json", "csv"), default="table",
                     help="table (default, for people), json or csv (for tools)")
    rep.add_argument("--html", metavar="FILE",
                     help="also write a self-contained HTML page (cards, charts, tables)")
    rep.add_argument("--basis", choices=("cash", "accrual"), default="cash",
                     help="cash (default: a charge counts when paid) or accrual (recognised "
                          "by day over its service period, with deferred revenue, "
                          "receivable and unbilled at each month end)")
    rep.add_argument("--movements", action="store_true",
                     help="also report MRR movements per month (new, expansion, "
                          "contraction, churned, reactivated), in total and by plan")
    rep.add_argument("--tax", action="store_true",
                     help="also report tax per tax table, rate, customer country and month")
    rep.add_argument("--locale", metavar="LOCALE",
                     help="format the HTML page's amounts for this locale (default en; "
                          "de_CH gives CHF 1'234.50)")
    rep.add_argument("--fx", metavar="RATES",
                     help="explicit exchange rates for the HTML page's consolidated view, "
                          "EUR=1,USD=0.92: the first currency is the reporting one (rate 1), "
                          "each rate the value of one unit in it")
    rep.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="replay in N processes, the log partitioned by customer (the "
                          "report is the same as with one; docs/ledger.md)")
    rep.set_defaults(command="replay", run=_replay)

    fco = commands.add_parser(
        "forecast", help="project the charges the rules will make from the end of a log",
        description="Replay the log, then carry every live subscription forward renewal "
                    "by renewal under the rules (prices, scheduled price changes, "
                    "promotions running out, contracts, period-end cancellations), priced "
                    "as the engine would price them; no churn is assumed unless --churn "
                    "gives rates, which add a second, labelled line. With --against NEW, "
                    "the same projection under a second ruleset and the change per month. "
                    "Exit like replay.")
    fco.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    fco.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    fco.add_argument("--months", type=_count, default=12, metavar="N",
                     help="how many calendar months to project, from the month the log "
                          "ends in (default 12)")
    fco.add_argument("--churn", action="append", default=[], type=_churn_rate,
                     metavar="PLAN=RATE",
                     help="a monthly churn rate for a plan (0.05 or 5%%); repeatable")
    fco.add_argument("--against", metavar="NEW",
                     help="a second ruleset: project under both and compare")
    fco.add_argument("--format", choices=("table", "json"), default="table",
                     help="table (default) or json")
    fco.set_defaults(command="forecast", run=_forecast)

    dif = commands.add_parser(
        "diff", help="compare two rulesets: by example, or by replaying a log",
        description="Without EVENTS, a static semantic diff: every plan, price, "
                    "promotion, contract, tax table, route, eligibility, dunning and "
                    "lifecycle rule added, removed or changed, with both source "
                    "locations and texts, and for each a concrete input (events applied "
                    "under both rulesets) whose outcome differs. Exit 0 when no outcome "
                    "differs, 1 when some does (like git diff --exit-code), 2 when a "
                    "ruleset does not check. With EVENTS, a what-if: replay the same "
                    "event log under OLD and NEW rules and show, per currency and month, "
                    "how every ledger figure moves, and which subscriptions were charged "
                    "differently and by which rules. Exit 0 whether or not anything "
                    "changed, 1 when an event failed under either ruleset, 2 when a "
                    "ruleset does not check.")
    dif.add_argument("old", metavar="OLD", help="the current .rr ruleset")
    dif.add_argument("new", metavar="NEW", help="the proposed .rr ruleset")
    dif.add_argument("events", metavar="EVENTS", nargs="?", default=None,
                     help="a JSONL file of events, or - for stdin (omit for the static diff)")
    dif.add_argument("--format", choices=("table", "json"), default="table",
                     help="table (default, text) or json")
    dif.set_defaults(command="diff", run=_diff)

    gen = commands.add_parser(
        "generate", help="write a realistic, reproducible example event log",
        description="Simulate customers of the ruleset's storefronts and write their "
                    "events as JSONL: checkouts (some with promotion codes), trials, "
                    "renewals, payments, failures and recoveries, plan changes, pauses, "
                    "cancellations and refunds. The same arguments always give the same "
                    "log; every event applies cleanly under the ruleset.")
    gen.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    gen.add_argument("--customers", type=_count, default=100, metavar="N",
                     help="how many customers check out (default 100)")
    gen.add_argument("--months", type=_count, default=12, metavar="M",
                     help="how many months the log covers (default 12)")
    gen.add_argument("--seed", type=int, default=0, metavar="S",
                     help="the random seed (default 0)")
    gen.add_argument("--start", type=_date, default=None, metavar="DATE",
                     help="the first day of the log, YYYY-MM-DD (default 2026-01-01)")
    gen.add_argument("-o", "--output", metavar="FILE",
                     help="write here instead of stdout")
    gen.set_defaults(command="generate", run=_generate)

    exp = commands.add_parser(
        "explain", help="explain how one event of a log was decided",
        description="Replay the log up to the event with the given id, apply it, and "
                    "print each decision line by line with the rule behind every figure "
                    "and its source location, the rejected candidates and why, and the "
                    "revenue events with their rules. Exit 0 when the event applied, 1 "
                    "when it did not, 2 when there is no such event.")
    exp.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    exp.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    exp.add_argument("--event", required=True, metavar="ID", help="the id of the event")
    exp.set_defaults(command="explain", run=_explain)

    rec = commands.add_parser(
        "reconcile", help="compare decided charges with what was paid and settled",
        description="Replay the log and list every gap between the charges the rules "
                    "decided and the payments (amount or currency differs, never settled, "
                    "payment without a charge, double payment, refund above what was "
                    "paid); with --settlements, also match a PSP settlement report (CSV: "
                    "psp, reference, date, amount, currency, fee). Exit 0 when there is no "
                    "gap, 1 when there is any, 2 on bad input.")
    rec.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    rec.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    rec.add_argument("--settlements", metavar="FILE.csv", help="a PSP settlement report")
    rec.add_argument("--format", choices=("table", "json"), default="table",
                     help="table (default) or json")
    rec.set_defaults(command="reconcile", run=_reconcile)

    gro = commands.add_parser(
        "growth", help="conversion and retention per price point, offer, channel and design",
        description="Replay the log and print growth figures (docs/growth.md): "
                    "trial-to-paid and first-charge conversion per plan, storefront, "
                    "channel, price point (plan@storefront#N, one per list-price version) "
                    "and promotion; retention by monthly cohort split by plan, price point, "
                    "promotion, channel, entitlement set, trial length, pause and dunning "
                    "outcome; retention by charges per plan; what each promotion gave away "
                    "and brought in. Exit like replay.")
    gro.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    gro.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    gro.add_argument("--format", choices=("table", "json"), default="table",
                     help="table (default) or json")
    gro.add_argument("--months", metavar="N", type=_positive, default=12,
                     help="retention columns shown in the table (default 12; json has all)")
    gro.set_defaults(command="growth", run=_growth)

    cov = commands.add_parser(
        "coverage", help="which conditions and table items an event log exercises",
        description="Replay the log with coverage and report, per rule and per condition, "
                    "how often each was seen true and false, and the prices, promotions, "
                    "routes, tax rates, eligibility denials, dunning steps and lifecycle "
                    "rules never exercised (docs/coverage.md). Exit 0, or 1 when the "
                    "coverage is below --threshold; 2 when the ruleset does not check.")
    cov.add_argument("rules", metavar="RULES", help="the .rr ruleset")
    cov.add_argument("events", metavar="EVENTS", help="a JSONL file of events, or - for stdin")
    cov.add_argument("--threshold", type=_percentage, default=None, metavar="N",
                     help="exit 1 when less than N%% of the outcomes are covered (0-100)")
    cov.add_argument("--format", choices=("text", "json"), default="text",
                     help="text (default) or json")
    cov.add_argument("--html", metavar="FILE",
                     help="also write a self-contained HTML page marking the source lines")
    cov.set_defaults(command="coverage", run=_coverage)

    fmt = commands.add_parser(
        "fmt", help="print rulesets in the canonical layout",
        description="Print a ruleset in the canonical layout (only parsing is needed, not "
                    "checking). Comments are kept in their order; lines between '# fmt: "
                    "off' and '# fmt: on' stay as they are. A directory stands for the .rr "
                    "files under it. Without options, print the one FILE to stdout; "
                    "--write rewrites the files that change, --check lists them and "
                    "--diff shows how they would change; both exit 1 if there is any.")
    fmt.add_argument("files", nargs="+", metavar="FILE|DIR",
                     help="a .rr file, or a directory of them")
    fmt_mode = fmt.add_mutually_exclusive_group()
    fmt_mode.add_argument("--check", action="store_true",
                          help="change nothing; list the files that would change")
    fmt_mode.add_argument("--diff", action="store_true",
                          help="change nothing; print a unified diff of the changes")
    fmt_mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    fmt.set_defaults(command="fmt", run=_fmt)

    lsp = commands.add_parser(
        "lsp", help="run the language server (for editors)",
        description="Run the revrules language server on stdin and stdout: diagnostics, "
                    "go-to-definition, references, hover, completion and formatting for "
                    ".rr files. Needs the 'lsp' extra (pip install 'revrules[lsp]').")
    lsp.add_argument("--stdio", action="store_true",
                     help="talk over stdin and stdout (the default and only transport)")
    lsp.set_defaults(command="lsp", run=_lsp)

    tst = commands.add_parser(
        "test", help="run the .rrtest files: scenarios, examples and invariants",
        description="Run the scenarios and example tables of .rrtest files, then check "
                    "every invariant against generated event sequences (hypothesis, "
                    "seeded). A failed invariant is shrunk to a short scenario to paste. "
                    "Exit 0 when every test passes, 1 when any fails, 2 when a file "
                    "cannot be read or parsed.")
    tst.add_argument("paths", nargs="*", metavar="PATH",
                     help=".rrtest files or directories (default: the current directory)")
    tst.add_argument("--seed", type=int, default=0,
                     help="the seed of the property runs (default 0; printed)")
    tst.add_argument("--examples", type=_positive, default=None, metavar="N",
                     help="event sequences per invariant (default 25)")
    tst.add_argument("-k", dest="keyword", default=None, metavar="TEXT",
                     help="run only the tests whose title contains TEXT")
    tst.add_argument("--coverage", action="store_true",
                     help="report which rules the tests exercised")
    tst.add_argument("--threshold", type=float, default=None, metavar="N",
                     help="with --coverage: fail below N percent")
    tst.add_argument("--coverage-json", default=None, metavar="FILE",
                     help="with --coverage: write the report as JSON to FILE")
    tst.set_defaults(command="test", run=_test)
    _store_commands(commands)
    return parser


def _store_commands(commands: Any) -> None:
    """``ingest``, ``state`` and the ``--db`` option of the commands that read a log."""
    from ._store_cli import add_commands

    add_commands(commands)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, found {value}")
    return value


def _percentage(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, found {text!r}")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, found {text!r}") \
            from None


# -- check ---------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for file in args.files:
        try:
            ruleset = _load(file)
        except RulesetError as exc:
            _err(exc.render())
            status = max(status, EXIT_FAILED)
            continue
        except UsageError as exc:
            _say(str(exc))
            status = max(status, EXIT_USAGE)
            continue
        _print_warnings(ruleset)
        if args.strict and ruleset.warnings:
            count = len(ruleset.warnings)
            _err(printable(f"{file}: {count} warning{'s' if count != 1 else ''} found "
                           "(--strict makes warnings errors)"))
            status = max(status, EXIT_FAILED)
            continue
        if args.state:
            from .engine import Engine
            state = _read_state(args.state)
            _stamp_warning(args.state, state, ruleset)
            engine = Engine(ruleset)
            problem = engine.verify(state)
            if problem is not None:
                raise UsageError(f"{args.state}: not a consistent state: {problem}")
            problems = engine.unservable(state)
            for sub_id, error in problems:
                _out(printable(f"{args.state}: subscription {sub_id!r}: {error.code}: "
                                     f"{error.message}"))
            if problems:
                _out(printable(f"{file}: cannot serve {len(problems)} of "
                               f"{len(state.subscriptions)} subscriptions in {args.state}"))
                status = max(status, EXIT_FAILED)
                continue
            _out(printable(f"{file}: ok, serves all {len(state.subscriptions)} subscriptions "
                           f"in {args.state}"))
            continue
        _out(printable(f"{file}: ok"))
    return status


def _stamp_warning(file: str, state: State, ruleset: Ruleset) -> None:
    """Warn (stderr) when ``state`` was last written under another ruleset text."""
    stamp = state.ruleset
    if stamp is not None and stamp.digest != ruleset.stamp.digest:
        version = f" version {stamp.version}" if stamp.version is not None else ""
        _say(f"warning: {file} was written under ruleset {stamp.name}{version} "
             f"({stamp.digest[:19]}…), not this text of {ruleset.name}; subscriptions it "
             "cannot serve are refused event by event (see 'revrules check --state')")


# -- eval ----------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .events import EventError
    from .results import Error, Outcome
    from .state import State
    from .wire import outcome_to_json

    ruleset = _load_checked(args.rules)
    state = _read_state(args.state_in) if args.state_in else None
    engine = Engine(ruleset)
    if state is not None:
        _stamp_warning(args.state_in, state, ruleset)
        problem = engine.verify(state)
        if problem is not None:
            raise UsageError(f"{args.state_in}: not a consistent state: {problem}")
    current = state if state is not None else State()
    status = EXIT_OK
    with _settled_heap():
        for item in _iter_log(args.events):  # streamed: a long log is never held in memory
            if isinstance(item, EventError):
                outcome = Outcome("", False, current, error=Error(item.code, item.message))
            else:
                outcome = engine.apply(current, item)
            current = outcome.state
            if not outcome.ok:
                status = EXIT_FAILED
            _out(outcome_to_json(outcome))
    if args.state_out:
        _write_state(args.state_out, current)
    return status


# -- quote ---------------------------------------------------------------------------


def _quote(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .quoting import QuoteError, quote_to_wire
    from .wire import WireError, _loads, dumps

    ruleset = _load_checked(args.rules)
    state = _read_state(args.state) if args.state else None
    engine = Engine(ruleset)
    if state is not None:
        assert args.state is not None
        _stamp_warning(args.state, state, ruleset)
        problem = engine.verify(state)
        if problem is not None:
            raise UsageError(f"{args.state}: not a consistent state: {problem}")
    text = _read_text(args.event, "event file", MAX_RULESET_BYTES)
    try:
        event = _loads(text)
    except WireError as exc:
        raise UsageError(f"{args.event}: {exc}") from None
    try:
        quoted = engine.quote(event, state)
    except QuoteError as exc:
        _out(dumps({"error": {"code": exc.code, "message": exc.message}}))
        return EXIT_FAILED
    _out(dumps(quote_to_wire(quoted), check_floats=False))
    return EXIT_OK


# -- replay --------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from . import reports

    if (args.locale or args.fx) and not args.html:
        raise UsageError("--locale and --fx are options of the HTML page: add --html FILE")
    try:
        locale = reports.parse_locale(args.locale or "en")
        fx = reports.parse_fx(args.fx) if args.fx else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ruleset = _load_checked(args.rules)
    views = args.basis == "accrual" or args.movements or args.tax
    if args.format == "csv" and (args.movements or args.tax):
        raise UsageError("--movements and --tax need --format table or json")
    if views and args.workers > 1:
        raise UsageError("--basis accrual, --movements and --tax replay in one process: "
                         "drop --workers")
    result: Streamed | Partitioned
    accrual: Accrual | None = None
    taxes: Taxes | None = None
    if args.workers > 1:
        from .parallel import replay_file

        if args.events == "-":
            raise UsageError("--workers reads the log more than once: give a file, not -")
        with _open_events(args.events):
            pass  # a missing file or a directory: the usual one line
        try:
            result = replay_file(ruleset, args.events, args.workers)
        except UnicodeDecodeError as exc:
            raise UsageError(f"{args.events} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        except OSError as exc:
            raise UsageError(f"cannot read {args.events}: {_reason(exc)}") from None
    elif views or args.html:  # the page always has the accrual and tax views
        result, accrual, taxes = _run_views(ruleset, args.events,
                                            args.basis == "accrual" or bool(args.html),
                                            args.tax or bool(args.html))
    else:
        result = _run_log(ruleset, args.events)
    if fx is not None and (missing := fx.missing(result.ledger.currencies())):
        raise UsageError(f"--fx gives no rate for {', '.join(missing)}, a currency of the log")
    if views:
        _revenue_views(args, ruleset, result, accrual if args.basis == "accrual" else None,
                       taxes if args.tax else None)
    elif args.format == "json":
        _out(reports.render_json(result.ledger, ruleset, result.summary))
    elif args.format == "csv":
        sys.stdout.write(reports.render_csv(result.ledger))
    else:
        _out(reports.render_table(result.ledger, ruleset, result.summary))
    if args.html:
        _write_text(args.html, reports.render_html(result.ledger, ruleset, result.summary,
                                                   locale=locale, fx=fx, accrual=accrual,
                                                   taxes=taxes), "HTML report")
    return _report_failures(result.summary)


def _run_views(ruleset: Ruleset, file: str, accrual: bool,
               tax: bool) -> tuple[Streamed, Accrual | None, Taxes | None]:
    """Replay a log streamed, folding the accrual and tax views beside the ledger (in
    chunks of outcomes, so memory stays flat)."""
    from .accrual import Accrual
    from .reports import Fold
    from .taxes import Taxes

    fold = Fold(ruleset)
    recognised = Accrual.fold((), ruleset) if accrual else None
    collected = Taxes() if tax else None
    with _settled_heap(), _progress(_log_length(file), "replaying") as tick:
        outcomes = fold.outcomes(_iter_log(file), tick)
        while chunk := list(itertools.islice(outcomes, 4096)):
            if recognised is not None:
                recognised = recognised.extend(e for o in chunk if o.ok for e in o.events)
            if collected is not None:
                collected = collected.extend(chunk, ruleset)
    return fold.result(), recognised, collected


def _revenue_views(args: argparse.Namespace, ruleset: Ruleset, result: Streamed | Partitioned,
                   accrual: Accrual | None, taxes: Taxes | None) -> None:
    """replay with --basis accrual, --movements or --tax: the views asked for."""
    from . import reports, views
    from .movements import movements
    from .wire import dumps

    moves = movements(result.ledger) if args.movements else None
    if args.format == "csv":
        assert accrual is not None
        sys.stdout.write(views.accrual_csv(accrual))
        return
    if args.format == "json":
        if accrual is not None:
            data: dict[str, Any] = {"ruleset": ruleset.name, "version": ruleset.version,
                                    "events": result.summary.events,
                                    "failed": result.summary.failed, **accrual.to_wire()}
        else:
            data = reports.ledger_to_wire(result.ledger, ruleset, result.summary)
        if moves is not None:
            data["movements"] = moves.to_wire()
        if taxes is not None:
            data["tax"] = taxes.to_wire()
        _out(dumps(data))
        return
    parts = [views.accrual_table(accrual) if accrual is not None else
             reports.render_table(result.ledger, ruleset, result.summary)]
    if moves is not None:
        parts.append(views.movements_table(moves))
    if taxes is not None:
        parts.append(views.tax_table(taxes))
    _out("\n\n".join(parts))


def _churn_rate(text: str) -> tuple[str, Decimal]:
    plan, sep, value = text.partition("=")
    if not sep or not plan:
        raise argparse.ArgumentTypeError(f"expected PLAN=RATE, found {text!r}")
    value = value.strip()
    percent = value.endswith("%")
    try:
        rate = Decimal(value[:-1] if percent else value)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not a rate: {value!r}") from None
    if not rate.is_finite():
        raise argparse.ArgumentTypeError(f"not a rate: {value!r}")
    if percent:
        rate = rate / 100
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"a churn rate lies between 0 and 1 (or 0% and "
                                         f"100%), found {value!r}")
    return plan.strip(), rate


def _forecast(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .forecast import compare, forecast
    from .wire import dumps

    ruleset = _load_checked(args.rules)
    other = _load_checked(args.against) if args.against else None
    churn = dict(args.churn)
    unknown = sorted(set(churn) - set(ruleset.plans))
    if unknown:
        raise UsageError(f"--churn: no plan {unknown[0]!r} in {args.rules}")
    result = _run_log(ruleset, args.events)
    projected = forecast(Engine(ruleset), result.state, args.months, churn)
    against = forecast(Engine(other), result.state, args.months, churn) \
        if other is not None else None
    if args.format == "json":
        data: dict[str, Any] = {"ruleset": ruleset.name, "version": ruleset.version,
                                **projected.to_wire()}
        if against is not None and other is not None:
            data["against"] = {"ruleset": other.name, "version": other.version,
                               **against.to_wire()}
            data["comparison"] = compare(projected, against)
        _out(dumps(data))
    else:
        text = projected.render()
        if against is not None:
            from .views import grid

            rows = [[r["currency"], r["month"], r["old"], r["new"], r["change"]]
                    for r in compare(projected, against)]
            text += (f"\n\nwhat-if: committed net under {args.rules} (old) and "
                     f"{args.against} (new)\n" + "\n".join(grid(
                         ["currency", "month", "old", "new", "change"], rows)))
        _out(text)
    return _report_failures(result.summary)


# -- diff ----------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _test(args: argparse.Namespace) -> int:
    from .rrtest_run import DEFAULT_EXAMPLES, Suite, collect, load_suite

    if (args.threshold is not None or args.coverage_json) and not args.coverage:
        raise UsageError("--threshold and --coverage-json need --coverage")
    coverage_class: Any = None
    if args.coverage:
        try:
            from .coverage import Coverage  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise UsageError("coverage not available in this build of revrules") from None
        coverage_class = Coverage
    files = collect(args.paths or ["."])
    if not files:
        _say("no .rrtest files found")
        return EXIT_USAGE
    examples = args.examples or DEFAULT_EXAMPLES
    _out(f"revrules test: seed {args.seed}, {examples} sequences per invariant "
         f"(rerun with --seed {args.seed})")
    suites: list[Suite] = []
    status = EXIT_OK
    for file in files:
        try:
            text = _read_text(file, "test file", MAX_RULESET_BYTES)
            suites.append(load_suite(file, text))
        except RulesetError as exc:
            _err(exc.render())
            status = EXIT_USAGE
        except UsageError as exc:
            _say(str(exc))
            status = EXIT_USAGE
    coverages: dict[str, Any] = {}
    if coverage_class is not None:
        for suite in suites:
            key = suite.ruleset.model.file if hasattr(suite.ruleset.model, "file") else ""
            key = key or suite.ruleset.name
            cov = coverages.get(key)
            if cov is None:
                cov = coverages[key] = coverage_class(suite.ruleset)
            suite.make_engine, suite.observe = cov.engine, cov.observe
    passed = failed = 0
    for suite in suites:
        _out(printable(suite.path))
        for case in suite.cases():
            if args.keyword and args.keyword not in case.title:
                continue
            result = case.run(seed=args.seed, examples=examples)
            mark = "PASS" if result.ok else "FAIL"
            _out(printable(f"  {mark} {case.title}"))
            if result.ok:
                passed += 1
                continue
            failed += 1
            for line in result.message.splitlines():
                _out(printable(f"       {line}"))
            if result.counterexample:
                _out("       shrunk to this scenario (paste it into the file):")
                for line in result.counterexample.splitlines():
                    _out(printable(f"       {line}"))
    summary = f"{passed} passed, {failed} failed"
    if status == EXIT_USAGE:
        summary += " (some files could not be read)"
    _out(summary)
    if failed:
        status = max(status, EXIT_FAILED)
    for key, cov in sorted(coverages.items()):
        report = cov.report()
        _out(report.to_text().rstrip("\n"))  # the report escapes what it quotes
        if args.threshold is not None and report.percent < args.threshold:
            _out(printable(f"{key}: coverage {report.percent}% is below the threshold "
                           f"{args.threshold}%"))
            status = max(status, EXIT_FAILED)
    if args.coverage_json and coverages:
        import json
        payloads = {}
        for key, cov in sorted(coverages.items()):
            data = cov.report().to_json()
            payloads[key] = json.loads(data) if isinstance(data, str) else data
        only = next(iter(payloads.values())) if len(payloads) == 1 else payloads
        _write_text(args.coverage_json, json.dumps(only, indent=2, sort_keys=True) + "\n",
                    "coverage report")
    return status


def _diff(args: argparse.Namespace) -> int:
    from .whatif import diff, diff_to_wire, render_diff
    from .wire import dumps

    old = _load_checked(args.old)
    new = _load_checked(args.new)
    if args.events is None:
        return _static_diff(old, new, args.format)
    with _settled_heap(), _progress(_log_length(args.events), "comparing") as tick:
        result = diff(old, new, _iter_log(args.events), tick)
    if args.format == "json":
        _out(dumps(diff_to_wire(result)))
    else:
        _out(render_diff(result, args.old, args.new))
    return max(_report_failures(result.old.summary, f"{args.old}: "),
               _report_failures(result.new.summary, f"{args.new}: "))


def _static_diff(old: Ruleset, new: Ruleset, form: str) -> int:
    from .semdiff import static_diff
    from .wire import dumps

    result = static_diff(old, new)
    _out(dumps(result.to_wire()) if form == "json" else result.render())
    return EXIT_FAILED if result.differs else EXIT_OK


# -- explain -------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> int:
    from .explain import UnknownEvent, explain, render_explanation

    ruleset = _load_checked(args.rules)
    items = _read_log(args.events)
    try:
        result = explain(ruleset, items, args.event)
    except UnknownEvent as exc:
        raise UsageError(str(exc)) from None
    _out(render_explanation(result))
    return EXIT_OK if result.outcome.ok else EXIT_FAILED


# -- reconcile -----------------------------------------------------------------------


def _reconcile(args: argparse.Namespace) -> int:
    from .reconcile import (
        SettlementError,
        read_settlements,
        reconcile,
        reconciliation_to_wire,
        render_reconciliation,
    )
    from .wire import dumps

    ruleset = _load_checked(args.rules)
    settlements = None
    if args.settlements:
        text = _read_text(args.settlements, "settlement report")
        try:
            settlements = read_settlements(text.splitlines())
        except SettlementError as exc:
            raise UsageError(f"{args.settlements}: {exc}") from None
    with _settled_heap():
        result = reconcile(ruleset, _iter_log(args.events), settlements)  # streamed
    if args.format == "json":
        _out(dumps(reconciliation_to_wire(result)))
    else:
        _out(render_reconciliation(result))
    return EXIT_OK if result.clean else EXIT_FAILED


# -- fmt -----------------------------------------------------------------------------


def _fmt(args: argparse.Namespace) -> int:
    import difflib

    from .formatter import format_module
    from .parser import parse

    files: list[str] = []
    status = EXIT_OK
    for given in args.files:
        if os.path.isdir(given):
            files += _rule_files(given)
        else:
            files.append(given)
    if not (args.check or args.write or args.diff) and len(files) > 1:
        raise UsageError("fmt prints one file; use --write, --check or --diff for several")
    for file in files:
        try:
            text = _read_text(file, "ruleset", MAX_RULESET_BYTES)
            formatted = format_module(parse(text, file))
        except RulesetError as exc:
            _err(exc.render())
            status = max(status, EXIT_FAILED)
            continue
        except UsageError as exc:
            _say(str(exc))
            status = max(status, EXIT_USAGE)
            continue
        if args.check or args.diff:
            if formatted != text:
                if args.check:
                    _out(printable(f"{file}: would reformat"))
                else:
                    for line in difflib.unified_diff(_diff_lines(text),
                                                     _diff_lines(formatted),
                                                     f"a/{file}", f"b/{file}"):
                        _out(printable(line.removesuffix("\n")))
                        if not line.endswith("\n"):
                            _out("\\ No newline at end of file")
                status = max(status, EXIT_FAILED)
        elif args.write:
            if formatted != text:
                try:
                    _write_text(file, formatted, "formatted ruleset")
                except UsageError as exc:
                    _say(str(exc))
                    status = max(status, EXIT_USAGE)
                    continue
                _out(printable(f"{file}: reformatted"))
        else:
            sys.stdout.write(formatted)
    return status


def _rule_files(directory: str) -> list[str]:
    """The ``*.rr`` files under ``directory``, in sorted order (symbolic links to
    directories are not followed)."""
    found: list[str] = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        found += [os.path.join(root, name) for name in sorted(names)
                  if name.endswith(".rr") and os.path.isfile(os.path.join(root, name))]
    return sorted(found, key=lambda path: Path(path).parts)


def _diff_lines(text: str) -> list[str]:
    """The lines of ``text`` with their newlines, split at newlines only."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1].removesuffix("\n")
    return lines if lines[-1] else lines[:-1]


# -- lsp -----------------------------------------------------------------------------


def _lsp(args: argparse.Namespace) -> int:
    try:
        from .lsp import serve
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in ("pygls", "lsprotocol"):
            raise
        raise UsageError(f"the language server needs {package}; install it with "
                         "pip install 'revrules[lsp]'") from None
    serve(traceback=args.traceback)
    return EXIT_OK


# -- growth --------------------------------------------------------------------------


def _growth(args: argparse.Namespace) -> int:
    from .growth import Growth, growth_to_wire, render_growth
    from .wire import dumps

    from .reports import Fold

    ruleset = _load_checked(args.rules)
    fold = Fold(ruleset, ledger=False)  # growth folds the revenue events itself
    with _settled_heap(), _progress(_log_length(args.events), "replaying") as tick:
        figures = Growth.fold(fold.outcomes(_iter_log(args.events), tick), ruleset)
    _out(dumps(growth_to_wire(figures)) if args.format == "json"
         else render_growth(figures, args.months))
    return _report_failures(fold.summary)


# -- generate ------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from .generator import generate
    from .wire import dumps

    ruleset = _load_checked(args.rules)
    events = generate(ruleset, args.customers, args.months, args.seed, args.start)
    text = "".join(dumps(e) + "\n" for e in events)
    if args.output:
        _write_text(args.output, text, "events")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _coverage(args: argparse.Namespace) -> int:
    from .coverage import Coverage
    from .events import EventError

    ruleset = _load_checked(args.rules)
    cov = Coverage(ruleset)
    engine = cov.engine()
    state: Any = None
    refused = total = 0
    for item in _iter_log(args.events):
        total += 1
        if isinstance(item, EventError):
            refused += 1
            continue
        (outcome,) = cov.run([item], state, engine)
        state = outcome.state
        refused += not outcome.ok
    report = cov.report()
    _out(report.to_json() if args.format == "json" else report.to_text())
    if args.html:
        _write_text(args.html, report.to_html(), "HTML coverage report")
    if refused:
        _say(f"{refused} of {total} events did not apply (what they exercised before "
             "they were refused is counted); `revrules eval` shows each")
    if args.threshold is not None and not report.passes(args.threshold):
        _say(f"coverage {report.percent}% is below the threshold of {args.threshold}%")
        return EXIT_FAILED
    return EXIT_OK


def _load_checked(file: str) -> Ruleset:
    """A ruleset for a command that needs one: errors rendered, UsageError (exit 2)."""
    try:
        ruleset = _load(file)
    except RulesetError as exc:
        _err(exc.render())
        raise UsageError(f"{file} does not check") from None
    _print_warnings(ruleset)
    return ruleset


def _read_log(file: str) -> list[Mapping[str, Any] | EventError]:
    return list(_iter_log(file))


def _iter_log(file: str) -> Iterator[Mapping[str, Any] | EventError]:
    """The events of a JSONL log (or stdin), a bad line as an EventError; unreadable or
    non-UTF-8 input is a UsageError."""
    from .wire import bounded_lines, read_events

    with _open_events(file) as handle:
        try:
            for _, item in read_events(bounded_lines(handle)):
                yield item
        except UnicodeDecodeError as exc:
            raise UsageError(f"{_name(file)} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise UsageError(f"cannot read {_name(file)}: {_reason(exc)}") from None


def _run_log(ruleset: Ruleset, file: str, label: str = "replaying") -> Streamed:
    """Replay a log file streamed: the ledger is folded as the events are read and only
    the :class:`~revrules.reports.Summary` of the outcomes is kept."""
    from .reports import stream

    with _settled_heap(), _progress(_log_length(file), label) as tick:
        return stream(ruleset, _iter_log(file), tick)


@contextlib.contextmanager
def _settled_heap() -> Iterator[None]:
    """Before a long replay: move what is alive now (the loaded ruleset, its compiled
    code, the grammar) out of the collector's sight, and collect the youngest
    generation less often. The engine's state is immutable and acyclic; without this
    every full collection walks the whole (growing) state again, so that the time per
    event grows with the log (docs/performance.md)."""
    import gc

    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*HEAP_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _log_length(file: str) -> int:
    """The number of lines of a log file, counted only when a progress bar can be shown
    (stderr is a terminal); 0 otherwise, and for stdin."""
    stream = sys.stderr
    if file == "-" or not (hasattr(stream, "isatty") and stream.isatty()):
        return 0
    try:
        with open(file, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0  # reading it properly says what is wrong


def _report_failures(summary: Summary, label: str = "") -> int:
    first = summary.first_failure
    if first is None:
        return EXIT_OK
    detail = f"{first.code}: {first.message}" if first.code else "not applied"
    where = f" event {first.event}" if first.event else ""
    _say(f"{label}{summary.failed} of {summary.events} events did not apply (first:{where} "
         f"{detail}); `revrules eval` shows each")
    return EXIT_FAILED


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal and the log is long."""
    stream = sys.stderr
    if total < 2000 or not (hasattr(stream, "isatty") and stream.isatty()):
        yield None
        return
    step = max(1, total // 200)
    width = 30

    def tick(done: int) -> None:
        if done % step and done != total:
            return
        filled = width * done // total
        stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        stream.flush()

    try:
        yield tick
    finally:
        stream.write("\r" + " " * (len(label) + width + 2 * len(str(total)) + 6) + "\r")
        stream.flush()


def _write_text(file: str, text: str, what: str) -> None:
    """Replace ``file`` with ``text`` (UTF-8): every file the command line writes.

    Atomic and durable: the text goes to a temporary file in the same directory, which
    is fsynced and renamed over the target, and then the directory is fsynced, so a
    reader (or a crash) sees the old file or the new one, never a mix. The temporary
    file is removed on every way out (an error, Ctrl-C, SIGTERM). A replaced file keeps
    its permission bits; a new one gets those the umask allows (0666 & ~umask). A
    symbolic link is followed: the file it points to is replaced, the link stays.
    """
    target = Path(os.path.realpath(file))  # through symbolic links, to the real file
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                       dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace",
                           newline="\n") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            tmp = None
            _fsync_directory(target.parent)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {file}: {_reason(exc)}") from None


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; put back at once
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows, where a directory cannot be opened
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _read_state(file: str) -> State:
    from .wire import WireError, state_from_json

    text = _read_text(file, "state file")
    try:
        return state_from_json(text)
    except WireError as exc:
        raise UsageError(f"{file}: {exc}") from None


def _write_state(file: str, state: State) -> None:
    """Write atomically: a reader never sees half a state file."""
    from .wire import state_to_json

    _write_text(file, state_to_json(state) + "\n", "state")


@contextlib.contextmanager
def _open_events(file: str) -> Iterator[TextIO]:
    if file == "-":
        stdin = sys.stdin
        if hasattr(stdin, "reconfigure"):
            with contextlib.suppress(Exception):
                stdin.reconfigure(encoding="utf-8")
        yield stdin
        return
    path = Path(file)
    if path.is_dir():
        raise UsageError(f"cannot read events from {file}: it is a directory")
    try:
        handle = path.open(encoding="utf-8", newline=None)
    except OSError as exc:
        raise UsageError(f"cannot read events from {file}: {_reason(exc)}") from None
    with handle:
        yield handle


# -- shared --------------------------------------------------------------------------


def _load(file: str) -> Ruleset:
    """Load a ruleset from a path (never from text); unreadable files are UsageErrors, and
    so is a file larger than :data:`MAX_RULESET_BYTES`."""
    from .ruleset import load, load_text

    path = Path(file)
    if path.is_dir():
        raise UsageError(f"cannot read {file}: it is a directory")
    if not path.exists():
        raise UsageError(f"cannot read {file}: no such file")
    try:
        if not path.is_file():  # a pipe or a device: read it, but never more than the limit
            return load_text(_read_text(file, "ruleset", MAX_RULESET_BYTES), file)
        _check_size(file, path.stat().st_size, MAX_RULESET_BYTES, "ruleset")
        return load(path)
    except RulesetError as exc:
        io = [d for d in exc.diagnostics if d.code == "io"]
        if io and len(io) == len(exc.diagnostics):
            raise UsageError(io[0].message) from None
        raise
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None


def _print_warnings(ruleset: Ruleset) -> None:
    source = ruleset.model.source
    for warning in ruleset.warnings:
        _err(warning.render(source))


def _read_text(file: str, what: str, limit: int | None = None) -> str:
    """A UTF-8 text file; with ``limit``, never more than that many bytes are read."""
    try:
        with open(file, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
        if limit is not None:
            _check_size(file, len(data), limit, what)
        # universal newlines, as text mode reads: \r\n and \r become \n
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {file} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {file}: {_reason(exc)}") from None


def _check_size(file: str, size: int, limit: int, what: str) -> None:
    if size > limit:
        raise UsageError(f"{what} {file} is too large: more than {limit:,} bytes (the limit "
                         f"is {limit // (1024 * 1024)} MiB)")


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


def _name(file: str) -> str:
    return "stdin" if file == "-" else file


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(text: str) -> None:
    """Human-readable text on stderr, every line made printable (no terminal escapes)."""
    sys.stderr.write("\n".join(printable(line) for line in text.rstrip("\n").split("\n"))
                     + "\n")


def _say(message: str) -> None:
    _err(f"{PROG}: {message}")


def _silence_stdout() -> None:
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
