"""Bad input never escapes as a Python traceback.

Rulesets: random token soups and random one-token mutations of streaming.rr either
load or raise RulesetError. Events: random JSON-ish objects either apply or give a
clean ``ok: false``.
"""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import same_but_remembered
import revrules
from revrules import Engine, RulesetError, State

STREAMING = (Path(__file__).parent.parent / "rulesets" / "streaming.rr").read_text("utf-8")
TOKENS = [
    "ruleset", "x", "version", '"1"', "customer", "{", "}", ":", "string", "int", "=", "0",
    "storefront", "web", "channel", "currency", "EUR", "tax", "inclusive", "psp", "stripe",
    "product", "p", "entitlements", "bundle", "products", "plan", "m", "every", "1", "month",
    "price", "EUR 1.00", "trial", "14 days", "if", "e", "eligibility", "deny", "when",
    "customer.country", "==", '"DE"', "promotion", "code", '"C"', "automatic", "percent",
    "off", "once", "for", "3", "cycles", "limit", "total", ",", "per", "route", "otherwise",
    "dunning", "retry", "after", "grace", "then", "cancel", "lifecycle", "pause", "max",
    "refund", "full", "within", "19%", "rate", "and", "or", "not", "in", "(", ")", "[", "]",
    "2027-01-01", "2027-01-01T00:00:00Z", "+", "-", "*", "/", "min(", "round(", "days_between(",
    "subscription.cycle", "storefront.channel", "total", "event.at", "payment.reason", "#c\n",
    "\n", "contract", "valid", "to", "not sold in", "upgrade to", "immediate", "prorate",
    "at period_end", "rounding", "half_up", "timezone", '"UTC"', "stackable", "consent required",
    "from", "existing", "keep entitlements", "unpaid", "{1, 2}", "JPY 1.5", "1.5", "@", '"',
]


# what generated code may consist of: printable ASCII and newlines (string values only
# as ascii() escapes)
CODE_CHARACTERS = frozenset(string.printable) - frozenset("\r\x0b\x0c\t") | {"\n"}


def load_or_diagnose(text: str) -> None:
    try:
        rules = revrules.load_text(text, "fuzz\n\u2028\"'.rr")
    except RulesetError as exc:
        assert exc.diagnostics
        str(exc)  # rendering never fails either
    else:
        assert set(rules.compiled.source) <= CODE_CHARACTERS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup_never_crashes(tokens: list[str]) -> None:
    load_or_diagnose(" ".join(tokens))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_streaming_never_crashes(data: st.DataObject) -> None:
    words = STREAMING.split(" ")
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(words) - 1))
        words[i] = data.draw(st.sampled_from(TOKENS + ["", words[i][::-1]]))
    load_or_diagnose(" ".join(words))


ENGINE = Engine(revrules.load_text(STREAMING, "streaming.rr"))
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                   st.text(max_size=8), st.sampled_from(["s1", "web_eu", "premium_monthly",
                                                         "2027-01-01", "2027-01-01T00:00:00",
                                                         "12.99", "-1", "NaN", "BF2026"]),
                   st.dictionaries(st.sampled_from(["id", "country", "trials_used", "segment",
                                                    "x"]),
                                   st.one_of(st.none(), st.integers(), st.text(max_size=4)),
                                   max_size=4))
FIELDS = ["id", "type", "at", "subscription", "storefront", "plan", "customer", "code",
          "reason", "amount", "currency", "psp", "reference", "attempt", "notification",
          "subtype"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8), max_size=6),
       st.sampled_from(sorted(revrules.events.EVENT_TYPES)))
def test_random_events_fail_cleanly(events: list[dict[str, object]], kind: str) -> None:
    state = State()
    for n, raw in enumerate(events):
        event = {"id": f"e{n}", "type": kind, "at": "2027-01-01", "subscription": "s1", **raw}
        outcome = ENGINE.apply(state, event)
        if not outcome.ok:
            assert same_but_remembered(state, outcome.state)
            assert outcome.error is not None and outcome.error.code and outcome.error.message
            # the safety net is for defects: bad input gets its own code
            assert outcome.error.code != "internal_error", outcome.error
        state = outcome.state
