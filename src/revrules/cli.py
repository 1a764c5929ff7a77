"""The ``revrules`` command: check rulesets and evaluate event logs.

``revrules check FILE...``
    Parse and check each ruleset; diagnostics (errors and warnings) go to stderr,
    ``FILE: ok`` to stdout for each file without errors. Exit 0 when every file
    checks (warnings allowed), 1 when any has errors, 2 when a file cannot be read.

``revrules eval RULES EVENTS.jsonl [--state-in FILE] [--state-out FILE]``
    Apply each event in order and print one outcome line per event (WIRE.md). Exit 0
    when every event applied, 1 when any gave ``ok: false`` (every line is still
    printed), 2 when the ruleset does not check or a file cannot be read.

Bad input never gives a Python traceback: every problem is one clear line on stderr
and an exit status. An unexpected internal error exits 3 (``--traceback`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ._version import __version__
from .diagnostics import RulesetError

if TYPE_CHECKING:
    from .ruleset import Ruleset
    from .state import State

__all__ = ["main"]

PROG = "revrules"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A problem with the command line or a file it names: one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (never raises for bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
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
    return parser


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
        _out(f"{file}: ok")
    return status


# -- eval ----------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .events import EventError
    from .results import Error, Outcome
    from .state import State
    from .wire import outcome_to_json, read_events

    try:
        ruleset = _load(args.rules)
    except RulesetError as exc:
        _err(exc.render())
        return EXIT_USAGE
    _print_warnings(ruleset)
    state = _read_state(args.state_in) if args.state_in else None
    engine = Engine(ruleset)
    current = state if state is not None else State()
    status = EXIT_OK
    with _open_events(args.events) as lines:
        try:
            for _, item in read_events(lines):
                if isinstance(item, EventError):
                    outcome = Outcome("", False, current, error=Error(item.code, item.message))
                else:
                    outcome = engine.apply(current, item)
                current = outcome.state
                if not outcome.ok:
                    status = EXIT_FAILED
                _out(outcome_to_json(outcome))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{_name(args.events)} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start})") from None
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise UsageError(f"cannot read {_name(args.events)}: {_reason(exc)}") from None
    if args.state_out:
        _write_state(args.state_out, current)
    return status


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

    text = state_to_json(state) + "\n"
    target = Path(file)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write state to {file}: {_reason(exc)}") from None


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
    """Load a ruleset from a path (never from text); unreadable files are UsageErrors."""
    from .ruleset import load

    path = Path(file)
    if path.is_dir():
        raise UsageError(f"cannot read {file}: it is a directory")
    if not path.exists():
        raise UsageError(f"cannot read {file}: no such file")
    try:
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


def _read_text(file: str, what: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {file} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {file}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


def _name(file: str) -> str:
    return "stdin" if file == "-" else file


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _say(message: str) -> None:
    _err(f"{PROG}: {message}")


def _silence_stdout() -> None:
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
