"""``revrules fmt`` keeps every comment, in order, and leaves ``# fmt: off`` alone.

Exact layouts for the tricky places (top and end of file, after ``{``, before ``}``,
between grouped one-liners, inside a multi-line expression, ``fmt: off`` regions), and
hypothesis properties on generated rulesets with comments sprinkled in: formatting is
idempotent, means the same, and keeps the list of comment texts unchanged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revrules.cli import main
from revrules.formatter import format_module
from revrules.parser import parse
from revrules.testing import rulesets

ROOT = Path(__file__).resolve().parent.parent


def fmt(text: str) -> str:
    return format_module(parse(text))


def texts(text: str) -> list[str]:
    return [c.text for c in parse(text).comments]


def check_stable(source: str, expected: str) -> None:
    """``source`` formats to ``expected``, which formats to itself, meaning the same."""
    assert fmt(source) == expected
    assert fmt(expected) == expected
    assert parse(expected) == parse(source)
    assert texts(expected) == texts(source)


# -- the parser collects comments ------------------------------------------------------


def test_comments_are_collected_in_order_with_positions_and_not_compared() -> None:
    module = parse('# top\nruleset x  # name\nplan p { # open\n  every 1 month\n}  \t\n# end')
    assert [(c.text, c.span.line, c.span.column) for c in module.comments] == [
        ("# top", 1, 1), ("# name", 2, 12), ("# open", 3, 10), ("# end", 6, 1)]
    assert module == parse("ruleset x\nplan p { every 1 month }")  # comments mean nothing
    # a '#' inside a string is not a comment
    assert parse('ruleset x version "a # b"').comments == ()


def test_comment_text_loses_trailing_white_space_only() -> None:
    assert texts("ruleset x   #  two  spaces \t \r\n") == ["#  two  spaces"]


# -- exact placements ------------------------------------------------------------------


def test_comment_at_top_of_file() -> None:
    check_stable("# Policy for the EU web shop.\n# Owner: billing.\nruleset x\n",
                 "# Policy for the EU web shop.\n# Owner: billing.\nruleset x\n")
    # a blank line after a file header comment stays (one, however many there were)
    check_stable("\n\n# header\n\n\n\nruleset x\n", "# header\n\nruleset x\n")


def test_comment_at_end_of_file_without_newline() -> None:
    check_stable("ruleset x\nrounding half_up\n# the end", "ruleset x\n\nrounding half_up\n# the end\n")
    check_stable("ruleset x\n\n# the end", "ruleset x\n\n# the end\n")
    check_stable("ruleset x  # the end", "ruleset x  # the end\n")
    check_stable("# only a comment", "# only a comment\n")


def test_comments_inside_a_block_before_the_closing_brace() -> None:
    check_stable("plan p {\n  every 1 month\n    # more prices later\n  # really\n}\n",
                 "plan p {\n  every 1 month\n  # more prices later\n  # really\n}\n")


def test_comment_after_an_opening_brace_and_after_items() -> None:
    check_stable("plan p {   # the plan\n every 1 month # monthly\n  product basic\n} # done\n",
                 "plan p {  # the plan\n  every 1 month  # monthly\n  product basic\n}  # done\n")
    # a block written on one line is printed as a block; the comment stays at its end
    check_stable("plan p { every 1 month } # monthly\n",
                 "plan p {\n  every 1 month\n}  # monthly\n")


def test_comments_before_items_are_indented_with_them() -> None:
    check_stable("tax vat {\n# Germany\nrate 19% when customer.country == \"DE\"\n"
                 "        # everyone else\n  rate 0%\n}\n",
                 "tax vat {\n  # Germany\n  rate 19% when customer.country == \"DE\"\n"
                 "  # everyone else\n  rate 0%\n}\n")


def test_comments_between_grouped_one_line_declarations() -> None:
    source = ("ruleset x\n"
              "storefront a { channel web }  # the web shop\n"
              "# the app\n"
              "storefront b { channel app_store }\n"
              "\n"
              "# after a blank line\n"
              "storefront c { channel web }\n")
    check_stable(source,
                 "ruleset x\n\n"
                 "storefront a { channel web }  # the web shop\n"
                 "# the app\n"
                 "storefront b { channel app_store }\n"
                 "\n"
                 "# after a blank line\n"
                 "storefront c { channel web }\n")


def test_comment_between_declarations_keeps_its_blank_lines() -> None:
    check_stable("ruleset x\n# about the plan\nplan p {}\n\n# loose note\n\nplan q {}\n",
                 "ruleset x\n\n# about the plan\nplan p {}\n\n# loose note\n\nplan q {}\n")


def test_comments_inside_a_multi_line_expression() -> None:
    source = ("tax vat {\n"
              "  rate 19% when customer.country == \"DE\"  # Germany\n"
              "           or customer.country == \"AT\"  # and Austria\n"
              "           # not Switzerland\n"
              "           and not customer.vip  # last\n"
              "  rate 0%\n"
              "}\n")
    check_stable(source,
                 "tax vat {\n"
                 "  # Germany\n"
                 "  # and Austria\n"
                 "  # not Switzerland\n"
                 "  rate 19% when customer.country == \"DE\" or customer.country == \"AT\" "
                 "and not customer.vip  # last\n"
                 "  rate 0%\n"
                 "}\n")


def test_comments_inside_a_one_line_declaration_go_before_it() -> None:
    check_stable("storefront web {\n  channel web  # web\n  # EU only\n  region EU\n}  # end\n",
                 "# web\n# EU only\nstorefront web { channel web  region EU }  # end\n")
    check_stable("plan p { # nothing yet\n}\n", "# nothing yet\nplan p {}\n")


def test_comment_between_a_block_head_and_its_brace() -> None:
    check_stable("dunning d for storefront.channel == web  # web only\n{\n  then cancel\n}\n",
                 "# web only\ndunning d for storefront.channel == web {\n  then cancel\n}\n")
    # a set literal in the head is not the block's brace
    check_stable('dunning d for customer.country in {"DE"} { # DE\n  then cancel\n}\n',
                 'dunning d for customer.country in {"DE"} {  # DE\n  then cancel\n}\n')


def test_comment_that_looks_like_code() -> None:
    check_stable("plan p {\n  # price web EUR 1 }\n  every 1 month\n}\n",
                 "plan p {\n  # price web EUR 1 }\n  every 1 month\n}\n")


# -- fmt: off ----------------------------------------------------------------------------

OFF = ("ruleset   x\n"
       "# fmt: off\n"
       "storefront web_eu   { channel web  region EU }\n"
       "storefront web_us   { channel web  region US }  # aligned\n"
       "\n"
       "plan   p { every 1 month }\n"
       "# fmt: on\n"
       "plan   q { every 1 month }\n")


def test_fmt_off_region_spanning_several_declarations_stays_verbatim() -> None:
    check_stable(OFF,
                 "ruleset x\n\n"
                 "# fmt: off\n"
                 "storefront web_eu   { channel web  region EU }\n"
                 "storefront web_us   { channel web  region US }  # aligned\n"
                 "\n"
                 "plan   p { every 1 month }\n"
                 "# fmt: on\n\n"
                 "plan q {\n  every 1 month\n}\n")


def test_unterminated_fmt_off_runs_to_the_end_of_the_file() -> None:
    check_stable("ruleset   x\n# fmt: off\nplan   p { every 1 month }\n\n# bye   \n\n\n",
                 "ruleset x\n\n# fmt: off\nplan   p { every 1 month }\n\n# bye   \n")
    check_stable("ruleset x\n\n#fmt:off\nplan   p { every 1 month }",
                 "ruleset x\n\n#fmt:off\nplan   p { every 1 month }\n")


def test_fmt_off_inside_a_declaration_keeps_the_whole_declaration() -> None:
    check_stable("ruleset x\nplan   p {\n  every 1 month  # fmt: off\n  product   basic  # fmt: on\n"
                 "}\nplan   q { every 1 month }\n",
                 "ruleset x\n\nplan   p {\n  every 1 month  # fmt: off\n  product   basic  # fmt: on\n"
                 "}\n\nplan q {\n  every 1 month\n}\n")
    # fmt: on inside a declaration ends the region after the declaration
    check_stable("# fmt: off\nplan   p {\n  # fmt: on\n  every 1 month\n}\nplan   q {}\n",
                 "# fmt: off\nplan   p {\n  # fmt: on\n  every 1 month\n}\n\nplan q {}\n")


def test_fmt_on_without_off_is_a_plain_comment() -> None:
    check_stable("# fmt: on\nruleset   x\n", "# fmt: on\nruleset x\n")


# -- properties ----------------------------------------------------------------------------

_WORDS = st.sampled_from(["", "note", "TODO: raise in 2027", "price {", "}", '"quoted"',
                          "# twice", "fmt: off", "fmt: on", "ünïcode €", "when x"])


@st.composite
def commented(draw: st.DrawFn) -> str:
    """A generated ruleset with comments at random line ends and between lines, and
    some lines broken in two (so that comments fall inside items)."""
    lines = draw(rulesets()).split("\n")
    out: list[str] = []
    for line in lines + [""]:
        line = _split(draw, line)
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.integers(0, 3)) == 0:
                out.append(draw(st.sampled_from(["", "   ", "\t"])))
            else:
                indent = draw(st.sampled_from(["", "  ", "      "]))
                out.append(f"{indent}# {draw(_WORDS)}")
        if draw(st.booleans()):
            line += f"{draw(st.sampled_from([' ', '  ', '']))}# {draw(_WORDS)}"
        out.append(line)
    return "\n".join(out).rstrip("\n") + draw(st.sampled_from(["", "\n", "\n\n"]))


def _split(draw: st.DrawFn, line: str) -> str:
    """``line`` broken at some spaces between tokens, a comment maybe at each break.

    Never inside a string, and never after a currency code (``EUR 12.99`` is one
    token only with a space or a tab between).
    """
    spaces = [i for i, ch in enumerate(line) if ch == " " and i > 0 and line[i - 1] != " "
              and line[:i].count('"') % 2 == 0 and not re.search(r"\b[A-Z]{3}$", line[:i])]
    if not spaces or not draw(st.integers(0, 4)) == 0:
        return line
    for i in sorted(draw(st.sets(st.sampled_from(spaces), max_size=3)), reverse=True):
        comment = draw(st.sampled_from(["", "  # split", " #"]))
        line = line[:i] + comment + "\n" + draw(st.sampled_from(["", "    "])) + line[i + 1:]
    return line


@settings(max_examples=int(os.environ.get("REVRULES_FMT_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(commented())
def test_formatting_keeps_meaning_and_comments_and_is_idempotent(source: str) -> None:
    once = fmt(source)
    assert fmt(once) == once
    assert parse(once) == parse(source)
    assert texts(once) == texts(source)


# -- the command line ----------------------------------------------------------------------


def test_fmt_diff(write, capsys) -> None:  # type: ignore[no-untyped-def]
    good = write("good.rr", "ruleset x  # kept\n")
    bad = write("bad.rr", "ruleset x  # kept\nrounding   half_up")
    assert main(["fmt", "--diff", good]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["fmt", "--diff", good, bad]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (f"--- a/{bad}\n+++ b/{bad}\n@@ -1,2 +1,3 @@\n"
                   " ruleset x  # kept\n"
                   "-rounding   half_up\n\\ No newline at end of file\n"
                   "+\n+rounding half_up\n")
    assert Path(bad).read_text("utf-8") == "ruleset x  # kept\nrounding   half_up"


def test_fmt_walks_directories_in_sorted_order(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    for name in ("b.rr", "a.rr", "sub/c.rr", "sub/deeper/d.rr", "notes.txt", "z.rr.bak"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("ruleset   x  # keep me\n", "utf-8")
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"{tmp_path / name}: would reformat"
                                for name in ("a.rr", "b.rr", "sub/c.rr", "sub/deeper/d.rr")]
    assert main(["fmt", "--write", str(tmp_path)]) == 0
    capsys.readouterr()
    assert (tmp_path / "sub/c.rr").read_text("utf-8") == "ruleset x  # keep me\n"
    assert (tmp_path / "notes.txt").read_text("utf-8") == "ruleset   x  # keep me\n"
    assert main(["fmt", "--check", str(tmp_path)]) == 0
    assert main(["fmt", str(tmp_path)]) == 2  # printing is for one file


def test_fmt_keeps_comments_and_says_nothing_about_them(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("c.rr", "# header\nruleset   x  # name\n")
    assert main(["fmt", path]) == 0
    assert capsys.readouterr() == ("# header\nruleset x  # name\n", "")


@pytest.mark.parametrize("where", ["rulesets", "examples"])
def test_bundled_rulesets_are_formatted(where: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["fmt", "--check", str(ROOT / where)]) == 0
    assert capsys.readouterr().out == ""
