"""Reconciliation: what the rules decided against what was actually paid and settled.

:func:`reconcile` replays a log and flags every gap between the decided charges and
the payments the log reports (payment events may carry the settled ``amount``,
``currency``, ``psp`` and ``reference``, WIRE.md), and, given a PSP settlement report
(CSV with columns ``psp, reference, date, amount, currency, fee``), every gap between
that report and the decided charges. Each :class:`Gap` names its subscription and the
rule that decided the charge, with its source.

Gap kinds:

``amount_differs`` / ``currency_differs``
    a payment event reports another amount or currency than the open charge.
``never_settled``
    a charge still open (outstanding) at the end of the log, or written off unpaid when
    the subscription was canceled: the same definitions as the ledger's
    (:mod:`revrules.accounting`).
``payment_without_charge``
    a payment for a subscription with no open charge and no earlier payment.
``double_payment``
    a payment for a charge already paid (same reference, or no charge open).
``refund_above_paid``
    a refund request for more than is still refundable (of the charge it names).
``settlement_without_payment``
    a settlement row whose reference matches no payment in the log.
``payment_not_in_settlement``
    a payment with a reference through a PSP the report covers, missing from it.
``settlement_amount_differs`` / ``settlement_currency_differs``
    a settlement row that does not match the decided charge.
``double_settlement``
    two settlement rows with the same PSP and reference.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from . import accounting
from .accounting import Account
from .diagnostics import json_text
from .engine import Engine
from .events import Event, EventError, parse_event
from .results import Outcome
from .ruleset import Ruleset
from .runtime import decimal_str, in_context, money_str
from .state import State
from .text import printable_lines

__all__ = ["Gap", "Reconciliation", "Settlement", "SettlementError", "read_settlements",
           "reconcile", "reconciliation_to_wire", "render_reconciliation"]

ZERO = Decimal(0)
SETTLEMENT_COLUMNS = ("psp", "reference", "date", "amount", "currency", "fee")


class SettlementError(ValueError):
    """A settlement report that cannot be read; the message names the line."""


@attrs.frozen
class Settlement:
    """One row of a PSP settlement report (negative amounts are refunds)."""

    psp: str
    reference: str
    date: dt.date
    amount: Decimal
    currency: str
    fee: Decimal = ZERO
    line: int = 0


@attrs.frozen
class Gap:
    """One mismatch between what the rules decided and what was paid or settled."""

    kind: str
    detail: str
    event: str | None = None
    subscription: str | None = None
    at: dt.date | None = None
    currency: str | None = None
    expected: Decimal | None = None
    actual: Decimal | None = None
    rule: str | None = None
    source: str | None = None
    reference: str | None = None
    paid_currency: str | None = None  # where it differs from ``currency``


@attrs.frozen
class Reconciliation:
    """Every gap, in log order (then the settlement report's), and what was checked."""

    gaps: tuple[Gap, ...]
    payments: int
    settlements: int
    fees: dict[tuple[str, str], Decimal]  # (psp, currency) → fees in the report

    @property
    def clean(self) -> bool:
        return not self.gaps


@attrs.frozen
class _Paid:
    event: str
    subscription: str
    at: dt.date
    currency: str
    amount: Decimal
    psp: str | None
    rule: str | None
    source: str | None
    refunded: Decimal = ZERO
    charge: str | None = None  # the id of the charge it paid


class _Payments:
    """What the log has paid so far, indexed so that each event's checks cost the same
    however long the log is: by (psp, reference), by subscription, the reference key of
    each paying event, and the references seen."""

    def __init__(self) -> None:
        self.paid: dict[tuple[str, str], _Paid] = {}  # (psp, reference) → payment
        self.by_sub: dict[str, list[_Paid]] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # paying event id → its key in `paid`
        self.references: set[str] = set()

    def add(self, key: tuple[str, str], record: _Paid) -> None:
        """``record`` under ``key``, unless a payment already has that key."""
        if key not in self.paid:
            self.paid[key] = record
            self.keys[record.event] = key
            self.references.add(key[1])

    def replace(self, old: _Paid, new: _Paid) -> None:
        """``new`` (``old`` with more refunded) wherever ``old`` is kept."""
        key = self.keys.get(old.event)
        if key is not None and self.paid[key].event == old.event:
            self.paid[key] = new


@in_context
def read_settlements(lines: Iterable[str]) -> list[Settlement]:
    """Parse a settlement report (CSV with a header naming at least the six columns)."""
    reader = csv.DictReader(lines)
    try:
        return _read_rows(reader)
    except csv.Error as exc:  # a field over csv's size limit, a stray NUL, …
        raise SettlementError(f"not valid CSV after line {reader.line_num}: {exc}") from None


def _read_rows(reader: csv.DictReader[str]) -> list[Settlement]:
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in SETTLEMENT_COLUMNS if c not in header and c != "fee"]
    if missing:
        raise SettlementError(f"line 1: the header lacks {', '.join(missing)} (columns: "
                              f"{', '.join(SETTLEMENT_COLUMNS)})")
    rows = []
    for raw in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        line = reader.line_num
        try:
            amount = Decimal(row["amount"])
            fee = Decimal(row.get("fee") or "0")
            if not amount.is_finite() or not fee.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise SettlementError(f"line {line}: amount and fee must be decimal numbers, "
                                  f"found {json_text(row.get('amount') or '')} and "
                                  f"{json_text(row.get('fee') or '')}") from None
        try:
            day = dt.date.fromisoformat(row["date"][:10])
        except ValueError:
            raise SettlementError(f"line {line}: date must be YYYY-MM-DD, found "
                                  f"{json_text(row['date'])}") from None
        if not row["psp"] or not row["reference"] or not row["currency"]:
            raise SettlementError(f"line {line}: psp, reference and currency are required")
        rows.append(Settlement(row["psp"], row["reference"], day, amount,
                               row["currency"].upper(), fee, line))
    return rows


@in_context
def reconcile(ruleset: Ruleset, events: Iterable[Mapping[str, Any] | EventError],
              settlements: Iterable[Settlement] | None = None) -> Reconciliation:
    """Replay ``events`` and list every gap (see the module's list of kinds)."""
    engine = Engine(ruleset)
    state = State()
    gaps: list[Gap] = []
    payments = _Payments()
    accounts: dict[str, Account] = {}  # subscription → the books' view (as the ledger's)
    count = 0
    for item in events:
        if isinstance(item, EventError):
            continue
        try:
            event: Event | None = parse_event(item)
        except EventError:
            event = None
        # parsed once: the engine takes the event as it is (the error of a bad one is its)
        outcome = engine.apply(state, event if event is not None else item)
        if event is not None:
            count += _check_event(event, outcome, state, gaps, payments)
        if outcome.ok:
            _track_unsettled(outcome, accounts, gaps)
        state = outcome.state
    for sub_id in sorted(accounts):
        account = accounts[sub_id]
        owed = account.charge
        if owed is None or not account.outstanding:
            continue  # nothing open, or canceled
        sub = state.subscription(sub_id)
        charge = sub.charge if sub is not None else None
        if charge is not None:  # the engine's record of the same charge says more
            gaps.append(Gap("never_settled", f"charge of {charge.period_start} still open at "
                            "the end of the log", None, sub_id, charge.at.date(),
                            charge.currency, charge.total, None, charge.rule, charge.source))
        else:
            gaps.append(Gap("never_settled", f"charge of {owed.date} still open at the end "
                            "of the log", None, sub_id, owed.at.date(), owed.currency,
                            owed.amount, None, owed.rule, owed.source))
    checked = 0
    fees: dict[tuple[str, str], Decimal] = {}
    if settlements is not None:
        rows = list(settlements)
        checked = len(rows)
        gaps.extend(_check_settlements(rows, payments.paid, fees))
    return Reconciliation(tuple(gaps), count, checked, dict(sorted(fees.items())))


def _check_event(event: Event, outcome: Outcome, before: State, gaps: list[Gap],
                 payments: _Payments) -> int:
    paid, payments_by_sub = payments.paid, payments.by_sub
    day = event.at.date()
    sub_id = event.subscription
    if event.type == "payment_succeeded":
        if outcome.ok:
            settled = next((e for e in outcome.events if e.type == "payment.succeeded"), None)
            if settled is None:
                return 0
            cur = settled.currency
            if event.currency is not None and event.currency.upper() != cur:
                gaps.append(Gap("currency_differs", f"paid in {event.currency}, charged in "
                                f"{cur}", event.id, sub_id, day, cur, settled.amount,
                                event.amount, settled.rule, settled.source, event.reference,
                                event.currency.upper()))
            elif event.amount is not None and event.amount != settled.amount:
                gaps.append(Gap("amount_differs", f"paid {money_str(event.amount, cur)}, "
                                f"charged {money_str(settled.amount, cur)} {cur}", event.id,
                                sub_id, day, cur, settled.amount, event.amount, settled.rule,
                                settled.source, event.reference))
            record = _Paid(event.id, settled.subscription, day, cur, settled.amount,
                           event.psp or settled.psp, settled.rule, settled.source,
                           charge=settled.charge)
            payments_by_sub.setdefault(settled.subscription, []).append(record)
            if event.reference is not None:
                key = ((event.psp or settled.psp or ""), event.reference)
                if key in paid:
                    gaps.append(Gap("double_payment", f"reference {event.reference} already "
                                    f"paid by event {paid[key].event}", event.id, sub_id, day,
                                    cur, None, settled.amount, settled.rule, settled.source,
                                    event.reference))
                else:
                    payments.add(key, record)
            return 1
        mismatch = outcome.error.code if outcome.error is not None else None
        open_sub = before.subscriptions.get(sub_id) if sub_id is not None and mismatch in (
            "amount_mismatch", "currency_mismatch") else None
        charge = open_sub.charge if open_sub is not None else None
        if open_sub is not None and charge is not None:
            # the engine refuses a payment that does not match its open charge
            cur = charge.currency
            if mismatch == "currency_mismatch" and event.currency is not None:
                gaps.append(Gap("currency_differs", f"paid in {event.currency}, charged in "
                                f"{cur}", event.id, sub_id, day, cur, charge.total,
                                event.amount, charge.rule, charge.source, event.reference,
                                event.currency.upper()))
            elif event.amount is not None:
                gaps.append(Gap("amount_differs", f"paid {money_str(event.amount, cur)}, "
                                f"charged {money_str(charge.total, cur)} {cur}", event.id,
                                sub_id, day, cur, charge.total, event.amount, charge.rule,
                                charge.source, event.reference))
            if event.reference is not None:  # the PSP may still settle it: match it there
                payments.add((event.psp or charge.psp or "", event.reference), _Paid(
                    event.id, open_sub.id, day, cur, charge.total, event.psp or charge.psp,
                    charge.rule, charge.source))
            return 1
        if outcome.error is not None and outcome.error.code in ("no_open_charge",
                                                                "unknown_subscription"):
            earlier = payments_by_sub.get(sub_id or "", [])
            same_ref = event.reference is not None and event.reference in payments.references
            paid_in = event.currency
            if earlier or same_ref:
                last = earlier[-1] if earlier else None
                gaps.append(Gap("double_payment", "paid again with no charge open"
                                + (f" (last paid by event {last.event})" if last else ""),
                                event.id, sub_id, day,
                                paid_in or (last.currency if last else None),
                                None, event.amount, last.rule if last else None,
                                last.source if last else None, event.reference))
            else:
                gaps.append(Gap("payment_without_charge", outcome.error.message, event.id,
                                sub_id, day, paid_in, None, event.amount, None, None,
                                event.reference))
        return 0
    if event.type == "refund_requested":
        if not outcome.ok and outcome.error is not None and outcome.error.code in (
                "refund_too_large", "nothing_to_refund"):
            sub = before.subscription(sub_id or "")
            payment = sub.payment if sub is not None else None
            if sub is not None and event.charge is not None:
                # the refund names its charge: what is left of that one
                payment = next((p for p in (sub.payment, *sub.earlier_payments)
                                if p is not None and p.charge == event.charge), None)
            refundable = payment.total - payment.refunded if payment is not None else ZERO
            refund_cur = payment.currency if payment is not None else None
            history = payments_by_sub.get(sub_id or "", [])
            last = history[-1] if history else None
            gaps.append(Gap("refund_above_paid", outcome.error.message, event.id, sub_id, day,
                            refund_cur, refundable, event.amount, last.rule if last else None,
                            last.source if last else None))
        elif outcome.ok:
            for e in outcome.events:
                if e.type == "payment.refunded" and payments_by_sub.get(e.subscription):
                    # the payment of the charge the refund names, else the latest
                    records = payments_by_sub[e.subscription]
                    i = next((i for i in range(len(records) - 1, -1, -1)
                              if e.charge is not None and records[i].charge == e.charge),
                             len(records) - 1)
                    last = records[i]
                    records[i] = attrs.evolve(last, refunded=last.refunded + e.amount)
                    payments.replace(last, records[i])
    return 0


def _track_unsettled(outcome: Outcome, accounts: dict[str, Account],
                     gaps: list[Gap]) -> None:
    for e in outcome.events:
        done = accounting.step(accounts.get(e.subscription, Account()), e)
        accounts[e.subscription] = done.account
        off = done.written_off
        if off is not None:
            gaps.append(Gap("never_settled", f"charge of {off.date} was written off unpaid "
                            f"when the subscription was canceled ({e.rule})",
                            outcome.event, e.subscription, e.at.date(), e.currency,
                            off.amount, None, off.rule, off.source))


def _check_settlements(rows: list[Settlement], paid: dict[tuple[str, str], _Paid],
                       fees: dict[tuple[str, str], Decimal]) -> list[Gap]:
    gaps: list[Gap] = []
    seen: dict[tuple[str, str], Settlement] = {}
    for row in rows:
        fees[(row.psp, row.currency)] = fees.get((row.psp, row.currency), ZERO) + row.fee
        key = (row.psp, row.reference)
        where = f"settlement line {row.line}"
        if row.amount < 0:
            payment = paid.get(key)
            if payment is None:
                gaps.append(Gap("settlement_without_payment", f"{where}: a refund of a "
                                "payment not in the log", None, None, row.date, row.currency,
                                None, row.amount, reference=row.reference))
            elif -row.amount != payment.refunded or row.currency != payment.currency:
                gaps.append(Gap("settlement_amount_differs", f"{where}: refund settled "
                                f"{money_str(-row.amount, row.currency)} {row.currency}, "
                                f"refunded {money_str(payment.refunded, payment.currency)} "
                                f"{payment.currency}", payment.event, payment.subscription,
                                row.date, payment.currency, payment.refunded, -row.amount,
                                payment.rule, payment.source, row.reference))
            continue
        if key in seen:
            gaps.append(Gap("double_settlement", f"{where}: reference already settled on "
                            f"line {seen[key].line}", None, None, row.date, row.currency,
                            None, row.amount, reference=row.reference))
            continue
        seen[key] = row
        payment = paid.get(key)
        if payment is None:
            gaps.append(Gap("settlement_without_payment", f"{where}: no payment with this "
                            "reference in the log", None, None, row.date, row.currency, None,
                            row.amount, reference=row.reference))
        elif row.currency != payment.currency:
            gaps.append(Gap("settlement_currency_differs", f"{where}: settled in "
                            f"{row.currency}, charged in {payment.currency}", payment.event,
                            payment.subscription, row.date, payment.currency, payment.amount,
                            row.amount, payment.rule, payment.source, row.reference,
                            row.currency))
        elif row.amount != payment.amount:
            gaps.append(Gap("settlement_amount_differs", f"{where}: settled "
                            f"{money_str(row.amount, row.currency)}, charged "
                            f"{money_str(payment.amount, payment.currency)} {row.currency}",
                            payment.event, payment.subscription, row.date, payment.currency,
                            payment.amount, row.amount, payment.rule, payment.source,
                            row.reference))
    covered = {row.psp for row in rows}
    for (psp, reference), payment in paid.items():
        if psp in covered and (psp, reference) not in seen:
            gaps.append(Gap("payment_not_in_settlement", f"no {psp} settlement row for "
                            f"reference {reference}", payment.event, payment.subscription,
                            payment.at, payment.currency, payment.amount, None, payment.rule,
                            payment.source, reference))
    return gaps


# -- rendering -------------------------------------------------------------------------


def _money(amount: Decimal | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    try:
        return money_str(amount, currency) if currency else decimal_str(amount)
    except (ValueError, LookupError, InvalidOperation):
        return decimal_str(amount)


@in_context
def render_reconciliation(r: Reconciliation) -> str:
    """A plain-text list of gaps with their subscription, amounts and rule."""
    lines = [f"{r.payments} payments checked" + (f", {r.settlements} settlement rows"
                                                 if r.settlements else "")]
    if r.fees:
        lines.append("fees: " + ", ".join(f"{psp} {_money(fee, cur)} {cur}"
                                          for (psp, cur), fee in r.fees.items()))
    if r.clean:
        lines.append("no gaps: every charge was paid as decided")
        return printable_lines(lines)
    kinds: dict[str, int] = {}
    for gap in r.gaps:
        kinds[gap.kind] = kinds.get(gap.kind, 0) + 1
    lines.append(f"{len(r.gaps)} gap{'s' if len(r.gaps) != 1 else ''}: " + ", ".join(
        f"{n} {kind}" for kind, n in sorted(kinds.items())))
    for gap in r.gaps:
        lines.append("")
        head = f"{gap.kind}"
        if gap.subscription:
            head += f"  subscription {gap.subscription}"
        if gap.event:
            head += f"  event {gap.event}"
        if gap.at:
            head += f"  {gap.at.isoformat()}"
        lines.append(head)
        lines.append(f"  {gap.detail}")
        if gap.expected is not None or gap.actual is not None:
            verb = "settled" if "settlement" in gap.kind else "paid"
            cur = gap.currency or ""
            paid_cur = gap.paid_currency or cur
            lines.append(f"  decided {_money(gap.expected, cur)} {cur}, {verb} "
                         f"{_money(gap.actual, paid_cur)} {paid_cur}".rstrip())
        if gap.reference:
            lines.append(f"  reference {gap.reference}")
        if gap.rule:
            lines.append(f"  rule {gap.rule}" + (f" ({gap.source})" if gap.source else ""))
    return printable_lines(lines)


@in_context
def reconciliation_to_wire(r: Reconciliation) -> dict[str, Any]:
    """JSON-ready data: every gap with its fields, money as strings."""
    return {
        "payments": r.payments, "settlements": r.settlements,
        "fees": [{"psp": p, "currency": c, "fee": _money(f, c)} for (p, c), f in r.fees.items()],
        "gaps": [{"kind": g.kind, "detail": g.detail, "event": g.event,
                  "subscription": g.subscription,
                  "at": g.at.isoformat() if g.at else None, "currency": g.currency,
                  "expected": None if g.expected is None else _money(g.expected, g.currency),
                  "actual": None if g.actual is None else _money(g.actual, g.currency),
                  "paid_currency": g.paid_currency or g.currency,
                  "rule": g.rule, "source": g.source, "reference": g.reference}
                 for g in r.gaps],
    }
