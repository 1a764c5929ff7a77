"""An installed wheel carries the grammar (grammar/*.lark, shipped as package data) and
loads a ruleset with it: the wheel is built from this tree, installed into a fresh
virtual environment and used there, away from the source tree."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import revrules

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from pathlib import Path
import revrules
from revrules import grammars
rules = revrules.load(sys.argv[1])
print(json.dumps({"package": revrules.__file__, "grammar": str(grammars.grammar_path("revrules")),
                  "names": list(grammars.grammar_names()), "ruleset": rules.name,
                  "plans": sorted(rules.plans)}))
"""


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          check=False, **kwargs)  # type: ignore[call-overload]


def test_an_installed_wheel_loads_a_ruleset_with_its_grammar(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # offline when the build backend is installed (the test extra has it)
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec(
        "hatchling") else []
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *offline,
                 "-w", tmp_path / "dist", ROOT, env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("revrules-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    grammar = {n for n in names if n.endswith(".lark")}
    assert grammar == {f"revrules/grammar/{p.name}" for p in (ROOT / "grammar").glob("*.lark")}
    assert "revrules/grammar/revrules.lark" in grammar

    target = tmp_path / "venv"
    try:
        # the dependencies come from this interpreter's site-packages; the wheel's
        # revrules comes first on the path, before any other copy there
        venv.EnvBuilder(system_site_packages=True, with_pip=False).create(target)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot create a virtual environment here ({exc})")
    python = target / ("Scripts" if os.name == "nt" else "bin") / "python"
    # this interpreter's pip installs into the new environment (pip >= 22.3), which is
    # quicker than giving it a pip of its own; an older pip gets one
    install = ["install", "--no-deps", "--no-index", "-q", wheel]
    installed = _run(sys.executable, "-m", "pip", "--python", python, *install, env=env,
                     cwd=tmp_path)
    if installed.returncode != 0 and "no such option" in installed.stderr:
        venv.EnvBuilder(system_site_packages=True, with_pip=True).create(target)
        installed = _run(python, "-m", "pip", *install, env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    ruleset = tmp_path / "streaming.rr"
    ruleset.write_text((ROOT / "rulesets" / "streaming.rr").read_text("utf-8"), "utf-8")
    probe = _run(python, "-I", "-c", PROBE, ruleset, env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    package = Path(found["package"]).resolve()
    assert package.is_relative_to(target.resolve()), found
    assert Path(found["grammar"]).resolve() == package.parent / "grammar" / "revrules.lark"
    assert "revrules" in found["names"]
    assert found["ruleset"] == "streaming"
    assert found["plans"] == sorted(revrules.load(str(ROOT / "rulesets" / "streaming.rr")).plans)
