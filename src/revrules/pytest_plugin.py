"""The pytest plugin of revrules (registered as ``revrules`` through ``pytest11``).

- ``*.rrtest`` files are collected as pytest items, one per scenario, example row and
  invariant; a failure shows the expected and actual figures (and, for an invariant,
  the shrunk counterexample as a scenario to paste).
- Options: ``--rrtest-seed N`` (default 0) and ``--rrtest-examples N`` (default 25) for
  the property runs of invariants.
- Fixtures: ``ruleset`` (the ruleset named by the ``revrules_ruleset`` marker or ini
  option), ``engine`` (an :class:`~revrules.Engine` for it) and ``replay`` (apply wire
  events, or event lines in .rrtest syntax, to a new state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .diagnostics import RulesetError
from .engine import Engine
from .results import Outcome
from .ruleset import Ruleset, load
from .state import State

__all__ = ["RRTestFile", "RRTestItem", "engine", "replay", "ruleset"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("revrules", "revrules .rrtest files")
    group.addoption("--rrtest-seed", type=int, default=0,
                    help="the seed of the invariants' property runs (default 0)")
    group.addoption("--rrtest-examples", type=int, default=None,
                    help="event sequences per invariant (default 25)")
    parser.addini("revrules_ruleset", "the ruleset the `ruleset` fixture loads "
                  "(relative to the rootdir)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "revrules_ruleset(path): the ruleset the `ruleset` "
                            "fixture loads")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".rrtest":
        return RRTestFile.from_parent(parent, path=file_path)
    return None


class RRTestError(Exception):
    """A .rrtest test that failed: ``message`` and, for an invariant, the scenario."""

    def __init__(self, message: str, counterexample: str | None = None):
        super().__init__(message)
        self.message = message
        self.counterexample = counterexample


class RRTestFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from .rrtest_run import load_suite

        try:
            suite = load_suite(self.path)
        except RulesetError as exc:
            raise self.CollectError(exc.render()) from None
        for case in suite.cases():
            yield RRTestItem.from_parent(self, name=case.title, case=case)


class RRTestItem(pytest.Item):
    def __init__(self, *, case: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case
        # no fixtures; other plugins' hooks (pytest-lsp's) look for this on every item
        self.funcargs: dict[str, Any] = {}

    def runtest(self) -> None:
        from .rrtest_run import DEFAULT_EXAMPLES

        config = self.config
        seed = _option(config, "--rrtest-seed", 0)
        examples = _option(config, "--rrtest-examples", None) or DEFAULT_EXAMPLES
        result = self.case.run(seed=seed, examples=examples)
        if not result.ok:
            raise RRTestError(result.message, result.counterexample)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, RRTestError):
            text = excinfo.value.message
            if excinfo.value.counterexample:
                text += ("\n\nshrunk to this scenario (paste it into the file):\n"
                         + excinfo.value.counterexample)
            return text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.case.title


def _option(config: pytest.Config, name: str, default: Any) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # the plugin was registered after the options were parsed
        return default


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def ruleset(request: pytest.FixtureRequest) -> Ruleset:
    """The ruleset of ``@pytest.mark.revrules_ruleset("path.rr")`` (relative to the test
    file) or of the ``revrules_ruleset`` ini option (relative to the rootdir)."""
    marker = request.node.get_closest_marker("revrules_ruleset")
    if marker is not None and marker.args:
        return load(Path(request.node.path).parent / str(marker.args[0]))
    configured = request.config.getini("revrules_ruleset")
    if configured:
        return load(Path(request.config.rootpath) / str(configured))
    raise pytest.UsageError("the `ruleset` fixture needs @pytest.mark.revrules_ruleset(path) "
                            "or the revrules_ruleset ini option")


@pytest.fixture
def engine(ruleset: Ruleset) -> Engine:
    """An engine for the ``ruleset`` fixture."""
    return Engine(ruleset)


Replay = Callable[..., tuple[State, list[Outcome]]]


@pytest.fixture
def replay(engine: Engine) -> Replay:
    """``replay(events, state=None)``: apply events in order; return the final state
    and every outcome. ``events`` are wire objects or the text of event lines in
    .rrtest syntax (``2027-01-01 checkout s1 plan p at web customer c1``)."""

    def run(events: str | Iterable[Mapping[str, Any]],
            state: State | None = None) -> tuple[State, list[Outcome]]:
        if isinstance(events, str):
            from .rrtest import parse_test

            body = "\n".join(f"  {line}" for line in events.strip().splitlines())
            test = parse_test(f'ruleset "-"\nscenario "replay" {{\n{body}\n}}\n', "<replay>")
            events = [s.event for s in test.scenarios[0].steps if s.event is not None]
        return engine.run(events, state)

    return run
