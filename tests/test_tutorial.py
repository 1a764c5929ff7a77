"""docs/tutorial.md is real: its rulesets load, its test file passes and the outputs it
shows are what `revrules test` prints."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import revrules
from revrules.cli import main

DOC = (Path(__file__).parent.parent / "docs" / "tutorial.md").read_text(encoding="utf-8")
BLOCKS = [(m["lang"], m["body"], m["tag"]) for m in re.finditer(
    r"\n```(?P<lang>\w*)(?: (?P<tag>\w+))?\n(?P<body>.*?)```", DOC, re.DOTALL)]
# the fences of docs/architecture.md: ```rr loads, ```rr fragment is part of a ruleset
RULESETS = [body for lang, body, tag in BLOCKS if lang == "rr" and tag is None]
FRAGMENTS = [body for lang, body, tag in BLOCKS if lang == "rr" and tag == "fragment"]
TESTS = [body for lang, body, _ in BLOCKS if lang == "rrtest"]
OUTPUTS = [body for lang, body, _ in BLOCKS if lang == "" and "revrules test" in body
           or lang == "" and "FAIL " in body]


@pytest.mark.parametrize("text", RULESETS)
def test_whole_rulesets_load(text: str) -> None:
    assert revrules.load_text(text).name == "music"


def test_fragments_are_part_of_the_final_ruleset_or_the_bug() -> None:
    final = RULESETS[-1]
    for fragment in FRAGMENTS[:-1]:
        for line in fragment.splitlines():
            assert line in final.splitlines(), line
    revrules.load_text(final + "\n" + FRAGMENTS[-1])


def run(capsys: pytest.CaptureFixture[str], where: Path, *args: str) -> str:
    cwd = os.getcwd()
    os.chdir(where)
    try:
        main(["test", *args])
    finally:
        os.chdir(cwd)
    return capsys.readouterr().out


def test_the_test_file_passes_and_the_outputs_are_real(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    final, test, invariant = RULESETS[-1], TESTS[0], TESTS[1]
    (tmp_path / "music.rr").write_text(final, encoding="utf-8")
    (tmp_path / "music.rrtest").write_text(test, encoding="utf-8")
    passing, wrong, bug = OUTPUTS
    assert run(capsys, tmp_path) == passing.split("\n", 1)[1]

    (tmp_path / "music.rrtest").write_text(test.replace("EUR 1.66", "EUR 1.67"), "utf-8")
    out = run(capsys, tmp_path)
    assert wrong in out

    (tmp_path / "music.rr").write_text(final + "\n" + FRAGMENTS[-1], encoding="utf-8")
    (tmp_path / "music.rrtest").write_text(test + invariant, encoding="utf-8")
    out = run(capsys, tmp_path, "-k", "never free")
    assert bug in out
