"""Saying how far a running job has got: ``report`` once, or ``track`` a loop; ``log`` a line for its user.

Both write ``progress``, ``stage`` and ``message`` into the RQ job's meta (where rq-dashboard
shows them) and record the job's contract state, which streams it. A job may equally use RQ's
own idiom, ``job.meta[...] = ...; job.save_meta()``: jobapp's job class streams that too.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, Optional, TypeVar

from rq import get_current_job

from . import statestore
from .joblog import log  # noqa: F401 - progress.log(...): a line for the job's user
from .rqjob import JobappJob

T = TypeVar("T")

#: ``track`` records a state at most this often (plus its first and last), however fast the loop.
TRACK_INTERVAL_SECONDS = 0.3


def _clamp(progress: float) -> int:
    return min(100, max(0, int(progress)))


def report(progress: float, stage: Optional[str] = None, message: Optional[str] = None) -> None:
    """Record that the running job is ``progress`` % done, at ``stage``, saying ``message``."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("progress.report() must be called inside an RQ job")
    previous = int(job.meta.get("progress") or 0)
    job.meta.update(progress=max(previous, _clamp(progress)), stage=stage, message=message)
    job.save_meta()
    if not isinstance(job, JobappJob):  # a plain ``rq worker``'s job: its save_meta does not record
        statestore.record(job.connection, job)


def track(iterable: Iterable[T], total: Optional[int] = None, stage: Optional[str] = None,
          message: Optional[str] = None, *, start: float = 0, end: float = 100) -> Iterator[T]:
    """Yield each item of ``iterable``, reporting progress from ``start`` to ``end`` % as the loop goes.

    tqdm-style: ``for row in progress.track(rows, total=n, stage="import"): ...``. ``total`` defaults
    to ``len(iterable)`` when it has one; without it the message counts items and progress stays.
    It records at most every ``TRACK_INTERVAL_SECONDS`` (and at the end), so a loop over a million
    items costs a few writes a second. Outside an RQ job it just iterates.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    job = get_current_job()
    if job is None:
        yield from iterable
        return
    span = end - start
    last_at = time.monotonic()
    last: Optional[tuple[int, Optional[str]]] = None

    def say(done: int) -> tuple[int, Optional[str]]:
        pct = _clamp(start + span * done / total) if total else _clamp(start)
        text = message if message is not None else (f"{done:,} of {total:,}" if total else f"{done:,} done")
        return pct, text

    last = say(0)
    report(last[0], stage, last[1])
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last_at >= TRACK_INTERVAL_SECONDS:
            current = say(done)
            if current != last:
                report(current[0], stage, current[1])
                last, last_at = current, now
    current = say(done)
    if current != last:
        report(current[0], stage, current[1])
