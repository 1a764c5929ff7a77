"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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
