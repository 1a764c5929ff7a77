"""docs/codes.md: each warning's bad example gives its code and its good example none;
the index lists every code the checker, the parser and the engine can give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import revrules
from revrules.lint import WARNINGS

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "codes.md").read_text("utf-8")
SECTIONS = dict(re.findall(r"^### (RR\d{3}): .*?\n(.*?)(?=^##)", PAGE, re.M | re.S))


def examples(section: str, label: str) -> list[str]:
    """The ```rr blocks after the paragraph that starts with ``label``."""
    part = section.split(f"\n{label}", 1)[1]
    part = re.split(r"\n(?:Bad|Good)\b", part, maxsplit=1)[0]
    return re.findall(r"```rr\n(.*?)```", part, re.S)


def codes(text: str, name: str) -> list[str]:
    return [d.code for d in revrules.load_text(text, name).warnings]


def test_every_warning_has_a_section() -> None:
    assert sorted(SECTIONS) == sorted(WARNINGS)
    for code, title in WARNINGS.items():
        assert f"### {code}: {title}\n" in PAGE


@pytest.mark.parametrize("code", sorted(WARNINGS))
def test_bad_example_gives_the_code_and_good_one_does_not(code: str) -> None:
    (bad,) = examples(SECTIONS[code], "Bad")
    (good,) = examples(SECTIONS[code], "Good")
    assert codes(bad, f"{code}-bad.rr") == [code]
    assert codes(good, f"{code}-good.rr") == []


def documented(heading: str) -> set[str]:
    table = PAGE.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {c for row in re.findall(r"^\| (.*?) \|", table, re.M) for c in
            re.findall(r"`([a-z_]+)`", row)}


def test_every_ruleset_error_code_is_in_the_index() -> None:
    source = "".join((ROOT / "src" / "revrules" / f).read_text("utf-8")
                     for f in ("checker.py", "parser.py", "ruleset.py"))
    found = set(re.findall(r'self\.error\(\s*"([a-z_]+)"', source))
    found |= {"unknown_" + w.replace(" ", "_")
              for w in re.findall(r'self\.unknown\(\s*"([a-z ]+)"', source)}
    found |= set(re.findall(r'Diagnostic\(\s*"error",\s*"([a-z_]+)"', source))
    assert "unlisted_psp" in found and "syntax" in found
    assert found <= documented("Ruleset errors"), found - documented("Ruleset errors")


def test_every_event_error_code_of_wire_md_is_in_the_index() -> None:
    wire = (ROOT / "docs" / "wire.md").read_text("utf-8")
    table = wire.split("## Error codes\n", 1)[1].split("\n## ", 1)[0]
    codes_ = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))
    assert len(codes_) > 30
    assert codes_ == documented("Event error codes")


def test_readme_links_the_index() -> None:
    assert "(docs/codes.md)" in (ROOT / "README.md").read_text("utf-8")
