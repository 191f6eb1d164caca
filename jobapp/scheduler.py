"""RQ's scheduler as jobapp's worker runs it: due jobs checked every second, locks renewed every 15 s.

RQ's scheduler (``rq.scheduler.RQScheduler``, forked by ``work(with_scheduler=True)``) renews its
metadata and its lock on every queue once per check, every second: a transaction with a script per
queue, about 11 Redis commands a second for two queues, on an idle deployment. Its locks and its
metadata live ``interval + 60`` seconds, so renewing them every ``HEARTBEAT_SECONDS`` keeps them as
safe, while the check for due jobs (one ``ZRANGEBYSCORE`` per queue) still runs every second, so a
scheduled job starts as promptly as before. A plain ``rq worker --with-scheduler`` keeps RQ's own.
"""

from __future__ import annotations

import time
from typing import Any

import rq.worker.base
from rq.scheduler import RQScheduler

#: How often the scheduler renews its locks and metadata (they live ``interval + 60`` = 61 s).
HEARTBEAT_SECONDS = 15.0


class Scheduler(RQScheduler):
    def work(self) -> None:
        """``RQScheduler.work`` (RQ 2.12) with the heartbeat every ``HEARTBEAT_SECONDS``, not every check."""
        self._install_signal_handlers()
        self.register_birth()
        renew_at = 0.0
        while True:
            if self._stop_requested:
                self.stop()
                break
            if self.should_reacquire_locks:
                self.acquire_locks()
            if time.monotonic() >= renew_at:
                self.heartbeat()
                renew_at = time.monotonic() + HEARTBEAT_SECONDS
            self.enqueue_scheduled_jobs()
            time.sleep(self.interval)


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
