"""Several processes ingesting into one store at once (SQLite and PostgreSQL): four
processes race for the last redemptions of a promotion's total limit, and it is never
over-redeemed; every event is stored exactly once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durable_store_support import BACKENDS, fresh_url

import revrules
from revrules.store import Store

LIMITED = """
ruleset race
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements hd }
plan monthly { product p  every 1 month  price web EUR 10.00 }
tax vat { rate 19% }
promotion launch {
  automatic
  percent 50 off for 1 cycles
  limit 7 total
}
"""
WORKERS, PER_WORKER, LIMIT = 4, 12, 7


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path, request.node.name)


def _checkout(worker: int, n: int) -> dict[str, Any]:
    sub = f"w{worker}s{n}"
    return {"id": f"e-{sub}", "type": "checkout", "at": f"2027-01-01T00:00:{n:02d}Z",
            "subscription": sub, "storefront": "web", "plan": "monthly",
            "customer": {"id": f"c-{sub}"}}


def _worker(url: str, worker: int, start: Any) -> None:
    engine = revrules.Engine(revrules.load_text(LIMITED, "race.rr"))
    with Store.open(url) as store:
        store.use(engine)
        start.wait()  # every process at the starting line, then all at once
        for n in range(PER_WORKER):
            store.apply(engine, _checkout(worker, n))
            # and a redelivery of an event another worker may be applying right now
            store.apply(engine, _checkout((worker + 1) % WORKERS, n))


def test_four_processes_never_over_redeem_a_total_limit(url: str) -> None:
    with Store.open(url) as store:  # the schema, before the race
        store.use(revrules.Engine(revrules.load_text(LIMITED, "race.rr")))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    procs = [context.Process(target=_worker, args=(url, w, start)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
        assert proc.exitcode == 0
    with Store.open(url) as store:
        state = store.state()
        assert state.redemptions["launch"] == LIMIT
        counts = store.counts()
        assert counts["events"] == WORKERS * PER_WORKER  # each id stored exactly once
        assert counts["subscriptions"] == WORKERS * PER_WORKER
        outcomes = list(store.outcomes())
        applied = [e for o in outcomes for e in o.events if e.type == "campaign.applied"]
        exhausted = [e for o in outcomes for e in o.events if e.type == "promo.exhausted"]
        assert len(applied) == LIMIT and len(exhausted) == 1
        discounted = [o for o in outcomes
                      if any(d.discounts for d in o.decisions)]
        assert len(discounted) == LIMIT
