"""revrules: revenue policies as declarative, checked, compiled rules.

>>> import revrules
>>> rules = revrules.load("rulesets/streaming.rr")          # doctest: +SKIP
>>> engine = revrules.Engine(rules)                          # doctest: +SKIP
>>> outcome = engine.apply(revrules.State(), {...})          # doctest: +SKIP
"""

from ._version import __version__ as __version__
from .checker import CheckResult as CheckResult
from .checker import check as check
from .diagnostics import Diagnostic as Diagnostic
from .diagnostics import RulesetError as RulesetError
from .engine import Engine as Engine
from .events import Event as Event
from .events import EventError as EventError
from .events import parse_event as parse_event
from .ledger import Ledger as Ledger
from .parser import parse as parse
from .quoting import Quote as Quote
from .quoting import QuoteError as QuoteError
from .results import Decision as Decision
from .results import Discount as Discount
from .results import Error as Error
from .results import Outcome as Outcome
from .results import RevenueEvent as RevenueEvent
from .results import Trace as Trace
from .ruleset import Ruleset as Ruleset
from .ruleset import load as load
from .ruleset import load_text as load_text
from .state import State as State
from .state import Subscription as Subscription

__all__ = [
    "CheckResult", "Decision", "Diagnostic", "Discount", "Engine", "Error", "Event",
    "EventError", "Ledger", "Outcome", "Quote", "QuoteError",
    "RevenueEvent", "Ruleset", "RulesetError", "State",
    "Subscription", "Trace", "__version__", "check", "load", "load_text", "parse", "parse_event",
]
