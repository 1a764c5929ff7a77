"""Python's limits never show through: deep or long expressions, huge literals, dates
at the edge of the calendar, byte-order marks, odd line breaks, several syntax errors.

Each input either loads or gives located diagnostics (file:line:col and a caret);
never an ``internal error``, a RecursionError or a SyntaxError of the generated code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, RulesetError, State
from revrules.compiler import generated_source
from revrules.formatter import format_module
from revrules.parser import parse

MAX_DEPTH, MAX_DIGITS = 64, 100

HEAD = """ruleset limits version "1"
customer { country: string  age: int = 0 }
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements e }
plan m { product p  every 1 month  price web EUR 1.00 }
"""
LINE = HEAD.count("\n") + 1  # the line the test's own declaration starts on


def countries(count: int) -> list[str]:
    return [chr(65 + i // 26 % 26) + chr(65 + i % 26) + (str(i // 676) if i >= 676 else "")
            for i in range(count)]


def deny(condition: str) -> str:
    """A ruleset whose trial is denied when ``condition`` holds."""
    return HEAD.replace("every 1 month", "every 1 month  trial 14 days if e") + \
        f'eligibility e {{\n  deny "no" when {condition}\n}}\n'


def diagnostics(text: str, file: str = "l.rr") -> list[revrules.Diagnostic]:
    with pytest.raises(RulesetError) as info:
        revrules.load_text(text, file)
    rendered = str(info.value)
    assert "internal" not in rendered and "Traceback" not in rendered
    return list(info.value.diagnostics)


def denied(rules: revrules.Ruleset, country: str, age: int = 0) -> bool:
    """Whether the trial is denied to a customer from ``country``."""
    out = Engine(rules).apply(State(), {
        "id": "e1", "type": "checkout", "at": "2027-01-01T00:00:00Z", "subscription": "s1",
        "storefront": "web", "plan": "m",
        "customer": {"id": "c1", "country": country, "age": age}})
    assert out.ok
    return out.decisions[0].reasons == ("e: no",)


# -- long and deep expressions ---------------------------------------------------------


@pytest.mark.parametrize("count", [200, 2000])
def test_a_long_or_of_comparisons_loads_and_runs(count: int) -> None:
    codes = countries(count)
    condition = " or ".join(f'customer.country == "{c}"' for c in codes)
    rules = revrules.load_text(deny(condition), "or.rr")
    source = generated_source(rules.model)
    assert max(line.count("(") for line in source.splitlines()) == count + 1  # flat
    assert denied(rules, codes[-1])
    assert denied(rules, codes[0])
    assert denied(rules, codes[count // 2])
    assert not denied(rules, "zz")


@pytest.mark.parametrize("op", ["and", "or"])
def test_long_chains_format_flat_and_parse_back_equal(op: str) -> None:
    condition = f" {op} ".join(f"customer.age != {i}" for i in range(1000))
    module = parse(deny(f"({condition}) {op} customer.age == 7"), "c.rr")
    text = format_module(module)
    assert f"deny \"no\" when {condition} {op} customer.age == 7\n" in text
    assert parse(text, "c.rr") == module


def test_and_inside_a_long_or_keeps_its_meaning() -> None:
    condition = " or ".join(f'customer.country == "{c}" and customer.age > 3'
                            for c in countries(300))
    rules = revrules.load_text(deny(condition), "mix.rr")
    assert not denied(rules, "AB")  # age 0: no term holds
    assert denied(rules, "AB", 9)
    assert not denied(rules, "zz", 9)


@pytest.mark.parametrize("depth", [MAX_DEPTH - 8])
@pytest.mark.parametrize("shape", ["not {}", "-({}) < 1", "min({}, 1) > 0", "({} + 1) > 0"])
def test_nesting_up_to_the_limit_loads(shape: str, depth: int) -> None:
    if shape.startswith("not"):
        condition = "not " * depth + "customer.age > 1"
    elif shape.startswith("-"):
        condition = "-" * depth + "customer.age < 1"
    elif shape.startswith("min"):
        condition = "min(" * depth + "customer.age" + ", 1)" * depth + " > 0"
    else:
        condition = "(" * depth + "customer.age" + " + 1)" * depth + " > 0"
    rules = revrules.load_text(deny(condition), "deep.rr")
    assert generated_source(rules.model)
    module = parse(deny(condition), "deep.rr")
    assert parse(format_module(module), "deep.rr") == module


@pytest.mark.parametrize("condition", [
    "not " * 500 + "true",
    "-" * 500 + "customer.age < 1",
    "min(" * 500 + "customer.age" + ", 1)" * 500 + " > 0",
    "(" * 500 + "customer.age" + " + 1)" * 500 + " > 0",
    "customer.age" + " + 1" * 500 + " > 0",
    "{" * 500 + "1" + "}" * 500 + " == {1}",
])
def test_nesting_past_the_limit_is_a_located_diagnostic(condition: str) -> None:
    (d,) = diagnostics(deny(condition))
    assert d.code == "too_deep"
    assert d.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    assert (d.span.file, d.span.line) == ("l.rr", LINE + 1)
    assert d.span.column > len('  deny "no" when ')
    rendered = d.render(deny(condition))
    assert rendered.splitlines()[0].startswith(f"l.rr:{LINE + 1}:")
    assert "^" in rendered.splitlines()[-2]


def test_deep_parentheses_alone_are_free() -> None:
    rules = revrules.load_text(deny("(" * 1000 + "customer.age > 1" + ")" * 1000), "p.rr")
    assert rules.model.eligibilities


# -- literals ----------------------------------------------------------------------------


@pytest.mark.parametrize("literal", [
    "1" * 5000, "1" * (MAX_DIGITS + 1), "1." + "0" * MAX_DIGITS])
def test_a_number_with_too_many_digits_is_a_located_diagnostic(literal: str) -> None:
    (d,) = diagnostics(deny(f"customer.age > {literal}"))
    assert d.code == "literal"
    assert d.message == f"a number has at most {MAX_DIGITS} digits; this one has " \
        f"{len(literal.replace('.', ''))}"
    assert (d.span.line, d.span.column) == (LINE + 1, len('  deny "no" when customer.age > ') + 1)


def test_many_digits_everywhere_a_number_stands() -> None:
    big = "9" * 5000
    text = HEAD.replace("every 1 month", f"every {big} months").replace(
        "EUR 1.00", f"EUR {big}") + f"tax t {{ rate {big}% }}\n"
    found = diagnostics(text)
    assert [d.code for d in found] == ["literal"] * 3
    assert [d.span.line for d in found] == [5, 5, 6]


def test_the_largest_number_allowed_loads() -> None:
    rules = revrules.load_text(deny(f"customer.age > {'9' * MAX_DIGITS}"), "n.rr")
    assert not denied(rules, "DE")


@pytest.mark.parametrize(("literal", "column"), [
    ("9999-12-31T23:59:59-12:00", 0),
    ("0001-01-01T00:00:00+14:00", 0),
    ("9999-12-31", 0),
    ("0001-01-01", 0),
])
def test_dates_at_the_edge_of_the_calendar_are_diagnostics(literal: str, column: int) -> None:
    (d,) = diagnostics(deny(f"event.at < {literal}"))
    assert d.code == "literal"
    assert d.message.startswith(f"'{literal}' is out of range")
    assert (d.span.line, d.span.column) == (LINE + 1, len('  deny "no" when event.at < ') + 1)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_dates_just_inside_the_window_compile_in_any_timezone(zone: str) -> None:
    text = deny("event.at < 0001-01-02 or event.at > 9999-12-30"
                " or event.at > 9999-12-30T23:59:59Z").replace(
                    'version "1"', f'version "1"\ntimezone "{zone}"')
    rules = revrules.load_text(text, "edge.rr")
    assert not denied(rules, "DE")


def test_edge_dates_in_declarations_are_diagnostics() -> None:
    text = HEAD + ('contract big { customer "c"  plan m  price EUR 1.00  '
                   "valid 2027-01-01 to 9999-12-31 }\n")
    (d,) = diagnostics(text)
    assert d.code == "literal" and d.span.line == LINE


# -- files: byte-order marks and line breaks ------------------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bom.rr"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD.encode("utf-8"))
    assert revrules.load(path).name == "limits"
    assert revrules.load_text("\ufeff" + HEAD, "bom.rr").name == "limits"
    bad = "\ufeff" + HEAD.replace("channel web", "channel webb")
    (d,) = diagnostics(bad, "bom.rr")
    assert (d.span.line, d.span.column) == (3, 26)
    assert str(RulesetError([d], {"bom.rr": parse_source(bad)})).splitlines()[2] == \
        " 3 | storefront web { channel webb currency EUR tax inclusive psp stripe }"


def parse_source(text: str) -> str:
    return text.removeprefix("\ufeff")


@pytest.mark.parametrize("brk", ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                                 "\u2028", "\u2029"])
def test_only_newline_breaks_lines_for_carets(brk: str) -> None:
    # the character sits in a comment on line 2; Lark counts lines by \n only
    text = HEAD.replace("\nstorefront", f" # a{brk}b\nstorefront", 1).replace(
        "channel web", "channel webb")
    (d,) = diagnostics(text)
    assert (d.span.line, d.span.column) == (3, 26)
    lines = str(RulesetError([d], {"l.rr": text})).splitlines()
    assert lines[0].startswith("l.rr:3:26: error[unknown_channel]: unknown channel 'webb'")
    assert lines[2] == " 3 | storefront web { channel webb currency EUR tax inclusive psp stripe }"
    assert lines[3] == "   |                          ^^^^"
    assert all(c.isprintable() for line in lines for c in line)


def test_crlf_files_point_at_the_right_line() -> None:
    text = HEAD.replace("channel web", "channel webb").replace("\n", "\r\n")
    (d,) = diagnostics(text)
    lines = str(RulesetError([d], {"l.rr": text})).splitlines()
    assert lines[0].startswith("l.rr:3:26:")
    assert lines[2] == " 3 | storefront web { channel webb currency EUR tax inclusive psp stripe }"


def test_syntax_error_at_end_of_a_file_with_odd_breaks() -> None:
    text = "ruleset x # \u2028 \x85\nstorefront web {"
    (d,) = diagnostics(text)
    assert (d.span.line, d.span.column) == (2, 17)


# -- every syntax error ------------------------------------------------------------------

THREE_ERRORS = HEAD + """plan broken {
  product p
  every 1 mnth
}

eligibility e {
  deny "x" when customer.age >
}

promotion ok { code "A" percent 10 off once }

tax t {
  rate 19 when true
}

route { stripe otherwise }
"""


def test_every_syntax_error_is_reported() -> None:
    found = diagnostics(THREE_ERRORS)
    assert [(d.code, d.span.line, d.span.column) for d in found] == [
        ("syntax", LINE + 2, 11), ("syntax", LINE + 7, 1), ("syntax", LINE + 12, 8)]
    assert found[0].message == "unexpected 'mnth'; expected a unit (days, weeks, months, years)"
    assert found[1].message == "unexpected '}'; expected an expression"
    assert found[2].message == "unexpected '19'; expected a percentage like 19%"
    rendered = str(RulesetError(found, {"l.rr": THREE_ERRORS}))
    assert rendered.count("^") >= 3
    assert rendered.endswith("3 errors found")


def test_errors_after_recovery_are_still_found() -> None:
    text = THREE_ERRORS + "storefront { }\nplan x { every }\n"
    found = diagnostics(text)
    assert [d.span.line for d in found] == [LINE + 2, LINE + 7, LINE + 12, LINE + 16,
                                            LINE + 17]


def test_a_syntax_error_in_the_last_declaration() -> None:
    (d,) = diagnostics(HEAD + "plan x {\n  every 1 month\n")
    assert d.message.startswith("unexpected end of file")


def test_a_file_of_syntax_errors_is_linear() -> None:
    text = HEAD + "plan x { every }\n" * 2000
    found = diagnostics(text)
    assert len(found) == 2000
    assert found[-1].span.line == LINE + 1999


def test_hostile_characters_in_a_syntax_error() -> None:
    (d,) = diagnostics(HEAD + "plan x { \x1b[31m }\n")
    assert d.code == "syntax"
    assert "\x1b" not in d.render(HEAD + "plan x { \x1b[31m }\n")




@pytest.mark.parametrize("brk", ["\x0c", "\u2028", "\x85", "\r"])
def test_reasons_quote_the_right_line(brk: str) -> None:
    text = HEAD.replace("every 1 month", "every 1 month  trial 14 days if e") + (
        f"# a{brk}b\neligibility e {{\n  deny \"no\" when customer.age > 3\n}}\n"
        f"# c{brk}d\npromotion p {{ code \"P\"  percent 10 off once  if customer.age > 5 }}\n")
    rules = revrules.load_text(text, "r.rr")
    out = Engine(rules).apply(State(), {
        "id": "e1", "type": "checkout", "at": "2027-01-01T00:00:00Z", "subscription": "s1",
        "storefront": "web", "plan": "m", "code": "P",
        "customer": {"id": "c1", "country": "DE", "age": 4}})
    assert out.ok
    assert "p requires customer.age > 5" in out.decisions[0].reasons


def test_check_reports_every_syntax_error(capsys: pytest.CaptureFixture[str],
                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    from revrules.cli import main
    path = tmp_path / "three.rr"
    path.write_text(THREE_ERRORS, encoding="utf-8")
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert [line.split(": error[syntax]: ")[0] for line in err.splitlines()
            if ": error[syntax]: " in line] == [
        f"{path}:{LINE + 2}:11", f"{path}:{LINE + 7}:1", f"{path}:{LINE + 12}:8"]
    assert err.count("; expected ") == 3
    assert err.rstrip().endswith("3 errors found")


STREAMING = (Path(__file__).resolve().parent.parent / "rulesets" / "streaming.rr").read_text(
    "utf-8")


def _declarations(text: str) -> list[list[int]]:
    """The line numbers of each top-level declaration's lines of code."""
    decls: list[list[int]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if line[:1].isalpha():
            decls.append([])
        if decls and line.strip() and not line.lstrip().startswith("#"):
            decls[-1].append(number)
    return decls


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_one_syntax_error_per_broken_declaration(data: st.DataObject) -> None:
    decls = _declarations(STREAMING)
    chosen = data.draw(st.sets(st.integers(0, len(decls) - 1), min_size=1, max_size=6))
    lines = STREAMING.split("\n")
    broken = sorted(data.draw(st.sampled_from(decls[i])) for i in chosen)
    columns = []
    for number in broken:  # an '@' after the code, before a trailing comment
        code, hash_, comment = lines[number - 1].partition("  #")
        lines[number - 1] = code + " @" + hash_ + comment
        columns.append(len(code) + 2)
    found = diagnostics("\n".join(lines))
    assert [(d.code, d.span.line, d.span.column) for d in found] == [
        ("syntax", number, column) for number, column in zip(broken, columns, strict=True)]
