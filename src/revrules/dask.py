"""Replay an event log on Dask (the ``dask`` extra: ``pip install 'revrules[dask]'``).

:func:`replay` is :func:`revrules.parallel.replay_file` with Dask running the jobs: the
log is partitioned by customer, every ``tick`` goes to every partition, each
partition's additive :class:`~revrules.ledger.Ledger` is folded on a worker and the
ledgers are added in partition order, and total promotion limits are resolved in
rounds. The result equals the sequential replay's (docs/ledger.md "Parallel replay").

>>> from revrules.dask import replay                                   # doctest: +SKIP
>>> from dask.distributed import Client, LocalCluster                  # doctest: +SKIP
>>> with LocalCluster(n_workers=2) as cluster, Client(cluster):        # doctest: +SKIP
...     result = replay(["events-2026.jsonl", "events-2027.jsonl"], "rules.rr")
...     result.ledger.totals()
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from .parallel import Partitioned, _Part, _resolve, _Runner, _task
from .ruleset import Ruleset, load

__all__ = ["replay"]


def _dask() -> Any:
    try:
        import dask
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "dask":
            raise
        raise ModuleNotFoundError("revrules.dask needs Dask; install it with "
                                  "pip install 'revrules[dask]'", name="dask") from None
    return dask


class _DaskRunner(_Runner):
    def __init__(self, dask: Any, scheduler: str | None) -> None:
        self.dask = dask
        self.scheduler = scheduler

    def _compute(self, *values: Any) -> tuple[Any, ...]:
        kwargs = {"scheduler": self.scheduler} if self.scheduler else {}
        return tuple(self.dask.compute(*values, **kwargs))

    def start_parts(self, tasks: list[Any]) -> Callable[[], list[_Part]]:
        delayed = self.dask.delayed(_task, pure=True)
        done = list(self._compute(*(delayed(t) for t in tasks)))
        return lambda: done


def replay(bag_or_paths: Any, ruleset: Ruleset | str | os.PathLike[str], *,
           partitions: int | None = None, scheduler: str | None = None) -> Partitioned:
    """Replay a log on Dask and return the merged ledger and the outcomes' summary.

    ``bag_or_paths``: a JSONL file, a sequence of them (read one after the other, as
    one log), or a ``dask.bag.Bag`` of wire dicts in log order (its partitions are
    read in order and written to a temporary file first; on a cluster, give paths
    every worker can read). ``ruleset``: a loaded ruleset or a ``.rr`` path.
    ``partitions``: how many parts the log is split into (default: the workers of the
    current ``dask.distributed`` client, else the CPUs). ``scheduler``: passed to
    ``dask.compute`` (default: the current client, or Dask's default).
    """
    dask = _dask()
    rules = ruleset if isinstance(ruleset, Ruleset) else load(ruleset)
    parts = partitions or _default_partitions()
    runner = _DaskRunner(dask, scheduler)
    if isinstance(bag_or_paths, (str, os.PathLike)):
        return _resolve(rules, (os.fspath(bag_or_paths),), parts, runner)
    if isinstance(bag_or_paths, Sequence):
        return _resolve(rules, tuple(os.fspath(p) for p in bag_or_paths), parts, runner)
    with tempfile.TemporaryDirectory(prefix="revrules-") as folder:
        path = os.path.join(folder, "events.jsonl")
        _write_bag(bag_or_paths, path, scheduler)
        return _resolve(rules, (path,), parts, runner)


def _write_bag(bag: Any, path: str, scheduler: str | None) -> None:
    import json

    kwargs = {"scheduler": scheduler} if scheduler else {}
    with open(path, "w", encoding="utf-8") as handle:
        for piece in bag.to_delayed():  # one bag partition at a time, in order
            for item in piece.compute(**kwargs):
                handle.write(json.dumps(dict(item)) + "\n")


def _default_partitions() -> int:
    try:
        from dask.distributed import get_client

        workers = len(get_client().scheduler_info().get("workers", {}))
        if workers:
            return workers
    except (ImportError, ValueError):
        pass
    return max(1, min(os.cpu_count() or 1, 8))
