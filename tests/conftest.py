"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from revrules import Engine, Outcome, State

# tests/data holds .rrtest files with seeded bugs: the tests run them on purpose
collect_ignore_glob = ["data/*"]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """Write a text file into the test's temporary folder; return its path."""
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


def same_but_remembered(before: object, after: object) -> bool:
    """A refused event leaves the state as it was, except that its id (and outcome) is
    remembered and the state carries the engine's ruleset stamp."""
    import attrs
    return bool(attrs.evolve(after, applied=before.applied,  # type: ignore[attr-defined]
                             applied_limit=before.applied_limit,  # type: ignore[attr-defined]
                             ruleset=before.ruleset) == before)  # type: ignore[attr-defined]


# A small ruleset that checks clean; diagnostics and lint tests append one snippet after
# it (line 17 on).
SMALL_RULESET = """\
ruleset t version "1"
customer {
  country: string
  trials_used: int = 0
}
storefront web_eu { channel web currency EUR tax inclusive psp adyen, stripe }
storefront web_us { channel web currency USD tax exclusive psp stripe }
product premium { entitlements hd }
bundle duo { products premium }
plan monthly {
  product premium
  every 1 month
  price web_eu EUR 9.99
  price web_us USD 9.99
}
eligibility trial_ok { deny "used" when customer.trials_used > 0 }
"""


class EventLog:
    """Sends events to ``engine`` with numbered ids and keeps the state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state = State()
        self.n = 0

    def send(self, ok: bool = True, **event: Any) -> Outcome:
        self.n += 1
        outcome = self.engine.apply(self.state, {"id": f"e{self.n}", **event})
        assert outcome.ok is ok, outcome.error
        self.state = outcome.state
        return outcome
