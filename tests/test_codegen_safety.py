"""Nothing from outside a ruleset's grammar reaches the generated Python source.

The compiler turns rule conditions into Python code that is compiled and run. The
only outside text that may appear in it is ``ascii()``/``repr()`` of a value or a name
that matched the grammar's NAME token: a hostile file name, string literal or
attribute name must never become code.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import RulesetError
from revrules.compiler import generated_source

ROOT = Path(__file__).resolve().parent.parent

# a ruleset with a condition in every kind of rule that compiles to a function
RULES = """ruleset hostile version "1"
customer { country: string  age: int = 0 }
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements e }
plan m { product p  every 1 month  price web EUR 1.00 }
eligibility ok { deny "no" when customer.country == "XX" }
tax vat { rate 19% when customer.country in {"DE", "AT"}  rate 0% }
route { stripe when customer.age > 3  stripe otherwise }
"""
# and one without any condition: only the header comment would carry the path
PLAIN = """ruleset plain version "1"
storefront web { channel web currency EUR tax inclusive psp stripe }
"""

HOSTILE_NAMES = [
    'x\nimport os; os.system("touch PWNED")\n#.rr',
    'x\rimport os; os.system("touch PWNED")\r#.rr',
    "x\r\nimport os; os.system('touch PWNED')\r\n#.rr",
    'q"\'\\.rr',
    "sep\u2028import os; os.system('touch PWNED')\u2029#.rr",
    "ff\x0cvt\x0bfs\x1c\x85.rr",
    "\u00e9t\u00e9 \U0001f600.rr",
]
ALLOWED = frozenset(string.printable) - frozenset("\r\x0b\x0c\t") | {"\n"}


def assert_clean(source: str) -> None:
    bad = sorted({c for c in source if c not in ALLOWED})
    assert not bad, f"generated source holds {bad!r}"
    for line in source.splitlines():
        assert not line.startswith(("import", "from ")), line


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("text", [RULES, PLAIN], ids=["rules", "plain"])
def test_hostile_file_names_never_reach_code(tmp_path: Path, name: str, text: str) -> None:
    if os.sep in name or "\x00" in name:  # pragma: no cover - not a portable file name
        pytest.skip("not a file name")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-m", "revrules", "check", str(path)],
                            cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no PWNED
    rules = revrules.load(path)
    assert rules.model.file == str(path)
    assert_clean(rules.compiled.source)
    assert_clean(generated_source(rules.model, coverage=True))


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "nul\x00import os\x00.rr"])
def test_hostile_file_names_through_load_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              name: str) -> None:
    monkeypatch.chdir(tmp_path)
    for text in (RULES, PLAIN):
        rules = revrules.load_text(text, name)
        assert_clean(rules.compiled.source)
        assert_clean(generated_source(rules.model, coverage=True))
    assert list(tmp_path.iterdir()) == []


def test_a_nul_in_a_path_is_a_diagnostic_not_a_crash() -> None:
    with pytest.raises(RulesetError) as info:
        revrules.load(Path("bad\x00name.rr"))
    assert [d.code for d in info.value.diagnostics] == ["io"]
    assert "\x00" not in str(info.value)


def test_hostile_string_literals_are_escaped() -> None:
    text = RULES.replace('"XX"', r'"\"\n__import__(\"os\")\t\u2028\u00e9"')
    text = text.replace('"AT"', '"\u2028\u2029\u0085\x0c\x0b\u00e9\U0001f600"')
    rules = revrules.load_text(text, "s.rr")
    assert_clean(rules.compiled.source)
    assert_clean(generated_source(rules.model, coverage=True))


# -- generated rulesets ---------------------------------------------------------------

# text a string literal may hold: anything but a quote, a backslash or a newline
_string_text = st.text(st.characters(blacklist_categories=("Cs",),
                                     blacklist_characters='"\\\n'), max_size=6)
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)


@st.composite
def _condition(draw: st.DrawFn, depth: int = 0) -> str:
    atoms = [
        st.builds(lambda s: f'customer.country == "{s}"', _string_text),
        st.builds(lambda s: f'customer.country in {{"{s}", "b"}}', _string_text),
        st.builds(lambda i: f"customer.age > {i}", st.integers(0, 10**30)),
        st.builds(lambda d: f"customer.score >= {d}", st.decimals(0, 10**6, places=3)
                  .map(str)),
        st.sampled_from(["storefront == web", "plan == m", "subscription.cycle >= 2",
                         "storefront.channel == web", "event.at >= 2027-01-01",
                         "event.at < 2027-01-01T05:00:00+02:00", "true", "false",
                         "customer.id == \"c\"", "min(customer.age, 3) == 3"]),
    ]
    if depth >= 3:
        return draw(st.one_of(atoms))
    kind = draw(st.sampled_from(["atom", "and", "or", "not", "paren"]))
    if kind == "atom":
        return draw(st.one_of(atoms))
    inner = draw(_condition(depth + 1))
    if kind == "not":
        return f"not {inner}"
    if kind == "paren":
        return f"({inner})"
    return f"{inner} {kind} {draw(_condition(depth + 1))}"


@st.composite
def _rulesets(draw: st.DrawFn) -> str:
    attr = draw(_names.filter(lambda s: s not in ("country", "age", "score", "id")))
    conditions = draw(st.lists(_condition(), min_size=1, max_size=4))
    denies = "\n".join(f'  deny "{draw(_string_text)}" when {c}' for c in conditions)
    return (f'ruleset {draw(_names)} version "{draw(_string_text)}"\n'
            f"customer {{ country: string  age: int = 0  score: decimal = 0  {attr}: string }}\n"
            "storefront web { channel web currency EUR tax inclusive psp stripe }\n"
            "product p { entitlements e }\n"
            "plan m { product p  every 1 month  price web EUR 1.00 }\n"
            f"eligibility ok {{\n{denies}\n}}\n"
            f"tax vat {{ rate 19% when {draw(_condition())}  rate 0% }}\n")


@settings(max_examples=150, deadline=None)
@given(_rulesets(), st.sampled_from(HOSTILE_NAMES))
def test_generated_source_of_generated_rulesets_is_printable_ascii(text: str, file: str) -> None:
    try:
        rules = revrules.load_text(text, file)
    except RulesetError as exc:  # e.g. a generated attribute named like a keyword
        assert all(d.code != "internal" for d in exc.diagnostics)
        return
    assert_clean(generated_source(rules.model))
    assert_clean(generated_source(rules.model, coverage=True))  # the coverage build's too


@pytest.mark.parametrize(("condition", "denied"), [
    ("subscription.storefront.channel == web", True),
    ("subscription.storefront.currency == \"EUR\"", True),
    ("subscription.storefront.region == EU", False),
    ("subscription.plan.name == \"m\"", True),
    ("shop.channel == web", True),
    ("shop.region == EU", True),
    ("m.name == \"x\"", False),
])
def test_fields_of_storefront_and_plan_values_compile(condition: str, denied: bool) -> None:
    text = RULES.replace("storefront web {", "storefront shop { channel web region EU "
                         "currency EUR tax inclusive psp stripe }\nstorefront web {").replace(
        "every 1 month", "every 1 month  trial 14 days if ok  not sold in shop").replace(
        'deny "no" when customer.country == "XX"', f'deny "no" when {condition}')
    rules = revrules.load_text(text, "f.rr")
    out = revrules.Engine(rules).apply(revrules.State(), {
        "id": "e1", "type": "checkout", "at": "2027-01-01T00:00:00Z", "subscription": "s1",
        "storefront": "web", "plan": "m", "customer": {"id": "c1", "country": "DE"}})
    assert out.ok, out.error
    assert (out.decisions[0].reasons[:1] == ("ok: no",)) is denied


# -- the generated decision code (revrules.decision) ----------------------------------

PROMOTED = RULES + """promotion p1 { code "C1" percent 10 off once if customer.country == "XX" }
promotion p2 { automatic amount EUR 0.10 off forever if customer.age > 3 }
"""


def _decision_sources(rules: revrules.Ruleset) -> list[str]:
    made = rules.decision_tables.deciders
    return [made.checkout(p.name, s.name).source for p in rules.model.plans
            for s in rules.model.storefronts]


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "nul\x00import os\x00.rr"])
def test_hostile_file_names_never_reach_decision_code(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      name: str) -> None:
    monkeypatch.chdir(tmp_path)
    for text in (RULES, PLAIN, PROMOTED):
        rules = revrules.load_text(text, name)
        for source in _decision_sources(rules):
            assert_clean(source)
    assert list(tmp_path.iterdir()) == []


def test_hostile_string_literals_are_escaped_in_decision_code() -> None:
    text = PROMOTED.replace('"XX"', r'"\"\n__import__(\"os\")\t\u2028\u00e9"')
    text = text.replace('"AT"', '"\u2028\u2029\u0085\x0c\x0b\u00e9\U0001f600"')
    rules = revrules.load_text(text, "s.rr")
    sources = _decision_sources(rules)
    assert sources and all("def tax_co(" in s for s in sources)
    for source in sources:
        assert_clean(source)
    # and the decision still gives what the transition gives
    engine = revrules.Engine(rules)
    out = engine.apply(revrules.State(), {
        "id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s1",
        "storefront": "web", "plan": "m", "code": "C1",
        "customer": {"id": "c1", "country": "\u2028\u2029\u0085\x0c\x0b\u00e9\U0001f600"}})
    quoted = engine.quote({
        "id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s1",
        "storefront": "web", "plan": "m", "code": "C1",
        "customer": {"id": "c1", "country": "\u2028\u2029\u0085\x0c\x0b\u00e9\U0001f600"}})
    assert out.ok and (quoted.tax, quoted.total, quoted.reasons) == (
        out.decisions[0].tax, out.decisions[0].total, out.decisions[0].reasons)


@settings(max_examples=60, deadline=None)
@given(_rulesets(), st.sampled_from(HOSTILE_NAMES))
def test_decision_code_of_generated_rulesets_is_printable_ascii(text: str, file: str) -> None:
    try:
        rules = revrules.load_text(text, file)
    except RulesetError as exc:
        assert all(d.code != "internal" for d in exc.diagnostics)
        return
    for source in _decision_sources(rules):
        assert_clean(source)
