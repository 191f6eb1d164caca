"""The seam between a stream and how it learns that its jobs changed.

A stream calls ``watcher.subscribe(job_ids)`` and then ``subscription.wait(timeout)`` in a loop;
each call returns the stored states of the jobs that changed since the last call (empty on
timeout; a pending job's state carries its current ``position``). ``wait`` also returns when a
watched job's log grew; ``log_head(job_id)`` is then the id of its newest line (see ``joblog``). Two watchers sit behind it: the per-process hub (default) and the per-stream
poller (the straightforward design, kept as the benchmark's reference). A subscription that can
also call back on news (``ready()``, ``rawlink(callback)``, ``unlink(callback)``: the hub's) lets
an idle stream wait with no greenlet at all (``streambody``, ``sseworker``).
"""

from __future__ import annotations

from typing import Iterable, Protocol

import redis

from ..config import Config
from ..statestore import StoredState


class Subscription(Protocol):
    job_ids: Iterable[str]

    def wait(self, timeout: float) -> dict[str, StoredState]: ...
    def log_head(self, job_id: str) -> int: ...
    def add(self, job_ids: Iterable[str]) -> None: ...
    def follow_user(self, user_id: str) -> None: ...
    def close(self) -> None: ...


class Watcher(Protocol):
    def subscribe(self, job_ids: Iterable[str]) -> Subscription: ...


def make_watcher(config: Config, connection: redis.Redis) -> Watcher:
    if config.WATCHER == "poll":
        from .poll import PollWatcher
        return PollWatcher(connection, config.POLL_INTERVAL_SECONDS)
    from ..redisconn import connect
    from .hub import Hub
    # The subscription blocks reading by design, so it gets a client without the web's short timeout.
    return Hub(connection, config.HUB_POLL_SECONDS, config.DEAD_WORKER_SECONDS, config.HUB_RQ_POLL_SECONDS,
               config.POSITION_INTERVAL_SECONDS, listener=connect(config, role="listen"))
