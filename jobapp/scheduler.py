"""RQ's scheduler as jobapp's worker runs it: asleep until a scheduled job is due, not polling each second.

RQ's scheduler (``rq.scheduler.RQScheduler``, forked by ``work(with_scheduler=True)``) looks for due
jobs every second (one ``ZRANGEBYSCORE`` per queue) and renews its metadata and its locks on every
look (a transaction with a script per queue): about 11 Redis commands a second for two queues, on an
idle deployment. This one renews them every ``HEARTBEAT_SECONDS`` (they live ``interval + 60`` =
61 s), and between looks it waits in one ``BLPOP`` on its queues' wake keys until the earliest job in
its registries is due, until jobapp schedules a job (``wake``: the queue route and retries), or at
most ``LOOK_SECONDS``. So jobapp's own scheduled jobs start on time (RQ's look came up to a second
late), a job other code schedules (RQ's ``enqueue_at``/``enqueue_in``) less than ``LOOK_SECONDS``
ahead may start up to that much late, and an idle scheduler sends about 3 commands every
``LOOK_SECONDS``. A plain ``rq worker --with-scheduler`` keeps RQ's own scheduler.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import redis
import rq.worker.base
from rq.scheduler import RQScheduler

from . import keys

#: How often the scheduler renews its locks and metadata (they live ``interval + 60`` = 61 s).
HEARTBEAT_SECONDS = 15.0
#: The longest the scheduler waits before looking at its registries again: how late a job that
#: other code schedules (without ``wake``) less than this far ahead may start.
LOOK_SECONDS = 5.0
#: A wake nobody takes (no jobapp scheduler runs) is gone after this long.
WAKE_TTL_SECONDS = 60


def wake(connection: Any, queue: str) -> None:
    """Tell ``queue``'s scheduler that a job was scheduled, so it looks at once (``connection`` may be a
    pipeline: the wake then goes with the job). A list of at most one element, taken by its ``BLPOP``."""
    key = keys.scheduler_wake(queue)
    pipe = connection if isinstance(connection, redis.client.Pipeline) else connection.pipeline(transaction=False)
    pipe.lpush(key, 1)
    pipe.ltrim(key, 0, 0)
    pipe.expire(key, WAKE_TTL_SECONDS)
    if pipe is not connection:
        pipe.execute()


class _StopWaiting(Exception):
    """Raised by the stop signal's handler to end a ``BLPOP`` in progress (the worker waits for us)."""


class Scheduler(RQScheduler):
    _waiting = False

    def work(self) -> None:
        """``RQScheduler.work`` (RQ 2.12), with the heartbeat every ``HEARTBEAT_SECONDS`` and, between
        looks, a wait until the next due job, a wake, or ``LOOK_SECONDS``."""
        self._install_signal_handlers()
        self.register_birth()
        renew_at = look_at = 0.0
        while True:
            if self._stop_requested:
                self.stop()
                break
            if self.should_reacquire_locks:
                self.acquire_locks()
            if time.monotonic() >= renew_at:
                self.heartbeat()
                renew_at = time.monotonic() + HEARTBEAT_SECONDS
            if time.monotonic() >= look_at:
                due = self.next_due()
                if due is not None and due <= time.time():
                    self.enqueue_scheduled_jobs()  # RQ's
                    due = self.next_due()
                wait = LOOK_SECONDS if due is None else min(LOOK_SECONDS, max(0.1, due - time.time()))
                look_at = time.monotonic() + wait
            if self.wait(min(look_at, renew_at) - time.monotonic()):
                look_at = 0.0  # woken: a job was scheduled, perhaps sooner than the earliest we knew

    def next_due(self) -> Optional[float]:
        """When the earliest job in this scheduler's registries is due (epoch seconds); None if they are
        empty. One ``ZRANGE`` per queue, in one round trip."""
        if not self._scheduled_job_registries and self._acquired_locks:
            self.prepare_registries()
        with self.connection.pipeline(transaction=False) as pipe:
            for registry in self._scheduled_job_registries:
                pipe.zrange(registry.key, 0, 0, withscores=True)
            firsts = pipe.execute()
        scores = [first[0][1] for first in firsts if first]
        return min(scores) if scores else None

    def wait(self, seconds: float) -> bool:
        """Up to ``seconds``, or until a wake on one of this scheduler's queues (True), or a stop signal."""
        if seconds <= 0 or self._stop_requested:
            return False
        names = sorted(self._acquired_locks)
        if not names:  # no queue of ours (locks lost): nothing to wake us
            time.sleep(seconds)
            return False
        self._waiting = True
        try:
            return self.connection.blpop([keys.scheduler_wake(name) for name in names], timeout=seconds) is not None
        except _StopWaiting:
            return False
        finally:
            self._waiting = False

    def request_stop(self, signum: Any = None, frame: Any = None) -> None:
        """RQ's (a flag the loop checks), and a wait in progress ends at once: the worker stopping
        waits for this process."""
        self._stop_requested = True
        if self._waiting:
            raise _StopWaiting()


def start_with(start: Any, *args: Any, **kwargs: Any) -> None:
    """Run RQ's ``Worker._start_scheduler`` (``start``) with this ``Scheduler`` in place of RQ's.

    RQ builds its scheduler from the name ``RQScheduler`` in ``rq.worker.base`` and offers no setting
    for the class; the name is swapped for the call alone (a worker runs this once, in its one thread),
    rather than copying RQ's method."""
    original = rq.worker.base.RQScheduler
    rq.worker.base.RQScheduler = Scheduler
    try:
        start(*args, **kwargs)
    finally:
        rq.worker.base.RQScheduler = original
