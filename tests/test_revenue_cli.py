"""The command line of the revenue views: ``replay --basis accrual``, ``--movements``,
``--tax`` and ``forecast``; deterministic output, exact figures, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revrules.cli import main

ROOT = Path(__file__).resolve().parent.parent
STREAMING = str(ROOT / "rulesets" / "streaming.rr")
PRICE_RISE = str(ROOT / "examples" / "streaming-price-rise.rr")
LOG = str(ROOT / "examples" / "events.jsonl")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_replay_accrual_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "replay", STREAMING, LOG, "--basis", "accrual",
                         "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert data["basis"] == "accrual"
    assert data["totals"]["EUR"] == {"paid": "131.76", "refunded": "0.00",
                                     "recognised": "49.58", "deferred": "82.18",
                                     "receivable": "0.00", "unbilled": "0.00"}
    assert cli(capsys, "replay", STREAMING, LOG, "--basis", "accrual", "--format",
               "json")[1] == out


def test_replay_accrual_table_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "replay", STREAMING, LOG, "--basis", "accrual")
    assert status == 0
    assert "EUR (accrual basis): recognised 49.58, deferred at the end 82.18" in out
    assert "2026-12  120.84      0.00       30.42     95.52" in out
    status, out, _ = cli(capsys, "replay", STREAMING, LOG, "--basis", "accrual",
                         "--format", "csv")
    assert out.splitlines()[0] == ("currency,month,storefront,channel,plan,paid,refunded,"
                                   "recognised,deferred,receivable,unbilled")
    assert "EUR,2026-12,b2b,direct,business_annual,99.00,0.00,8.41,90.59,0.00,0.00" in out


def test_replay_cash_is_still_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    plain = cli(capsys, "replay", STREAMING, LOG, "--format", "json")[1]
    cash = cli(capsys, "replay", STREAMING, LOG, "--format", "json", "--basis", "cash")[1]
    assert plain == cash and "recognised" not in plain


def test_replay_movements_and_tax(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "replay", STREAMING, LOG, "--format", "json",
                         "--movements", "--tax")
    assert status == 0
    data = json.loads(out)
    jan = [r for r in data["movements"]["total"]
           if (r["currency"], r["month"]) == ("EUR", "2027-01")]
    assert jan == [{"currency": "EUR", "month": "2027-01", "opening": "30.09", "new": "0.00",
                    "reactivated": "0.00", "expansion": "0.00", "contraction": "0.00",
                    "churned": "10.92", "moved_in": "0.00", "moved_out": "0.00",
                    "closing": "19.17"}]
    fr = [r for r in data["tax"]["rows"] if r["country"] == "FR"]
    assert fr[0]["rate"] == "20%" and fr[0]["net_tax"] == "19.80"
    assert "totals" in data  # the cash report is still there
    status, out, _ = cli(capsys, "replay", STREAMING, LOG, "--tax")
    assert "EUR       2026-12  vat    20%   FR         99.00  19.80" in out


def test_replay_csv_refuses_movements(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "replay", STREAMING, LOG, "--format", "csv",
                           "--movements")
    assert status == 2 and out == ""
    assert err.strip() == "revrules: --movements and --tax need --format table or json"


def test_forecast_twelve_months(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "forecast", STREAMING, LOG, "--months", "12",
                         "--format", "json")
    assert status == 0
    data = json.loads(out)
    months = [r for r in data["months"] if r["currency"] == "EUR"]
    assert len(months) == 12 and months[-1] == {"currency": "EUR", "month": "2027-12",
                                                "charges": 2, "net": "108.24",
                                                "total": "129.79"}
    status, out, _ = cli(capsys, "forecast", STREAMING, LOG, "--churn",
                         "premium_monthly=5%")
    assert "after churn" in out
    assert ["2027-01", "1", "10.92", "12.99", "10.37"] in [line.split() for line in
                                                           out.splitlines()]


def test_forecast_against_a_second_ruleset(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "forecast", STREAMING, LOG, "--against", PRICE_RISE,
                         "--format", "json")
    assert status == 0
    rows = {(r["currency"], r["month"]): r["change"] for r in json.loads(out)["comparison"]}
    assert rows[("USD", "2027-01")] == "2.00"


@pytest.mark.parametrize(("argv", "message"), [
    (["--churn", "nope=5%"], "revrules: --churn: no plan 'nope' in"),
    (["--churn", "premium_monthly=150%"], "a churn rate lies between 0 and 1"),
    (["--churn", "premium_monthly"], "expected PLAN=RATE"),
])
def test_forecast_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                         message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        status = main(["forecast", STREAMING, LOG, *argv])
        raise SystemExit(status)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 4
