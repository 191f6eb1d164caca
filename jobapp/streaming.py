"""The body of an SSE response: a generator that follows jobs through a watcher.

It sends ``retry:`` and each job's current state at once, then one event per change, a
keep-alive comment after each quiet heartbeat interval, and ends at the deadline (token expiry
or maximum lifetime) or, for a single-job stream, after the terminal event.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import redis

from . import lifecycle, metrics, sse, state, statestore
from .watch import Watcher


def event_id(event: dict) -> int:
    """A state's event id: its ``updatedAt`` in microseconds' place, so the same state sent again on a
    reconnect can take the next id up without ever reaching the id of a later state."""
    return int(event["updatedAt"]) * 1000


def client_has(event: dict, last_event_id: Optional[int]) -> bool:
    """Whether a client that last saw ``last_event_id`` already has ``event``."""
    return last_event_id is not None and last_event_id >= event_id(event)


@dataclass
class StreamSettings:
    heartbeat_seconds: float
    retry_ms: int
    deadline: float  # time.monotonic() at which the stream ends
    close_on_terminal: bool  # a single-job stream ends after its terminal event


def events(watcher: Watcher, connection: redis.Redis, job_ids: Iterable[str],
           last_event_id: Optional[int], settings: StreamSettings,
           follow_user: Optional[str] = None) -> Iterator[str]:
    """The stream of ``job_ids`` (and, with ``follow_user``, of every job that user queues meanwhile)."""
    subscription = watcher.subscribe(job_ids)
    if follow_user is not None:
        subscription.follow_user(follow_user)
    opened = time.monotonic()
    metrics.OPEN_STREAMS.inc()
    try:
        yield sse.retry(settings.retry_ms)
        sent: dict[str, tuple[str, int]] = {}  # job id -> (status, updatedAt) last sent
        last_id = last_event_id or 0

        def frame(event: dict, encoded: Optional[str] = None) -> str:
            nonlocal last_id
            last_id = max(event_id(event), last_id + 1)
            sent[event["jobId"]] = (event["status"], event["updatedAt"])
            metrics.EVENTS_SENT.inc()
            return sse.event(last_id, event, encoded)

        def finished() -> bool:
            return settings.close_on_terminal and bool(sent) and all(
                state.is_terminal(status) for status, _ in sent.values())

        # Read after subscribing, so no change falls between the read and the watch.
        for stored in statestore.read_many(connection, subscription.job_ids).values():
            yield frame(stored.event)
        last_write = time.monotonic()
        while not finished():
            now = time.monotonic()
            if lifecycle.stopping():
                yield sse.retry(random.randint(500, 3000))  # spread the reconnects over other processes
                return
            if now >= settings.deadline:
                return
            quiet = settings.heartbeat_seconds - (now - last_write)
            if quiet <= 0:
                yield sse.comment()
                last_write = now
                continue
            changed = subscription.wait(min(quiet, settings.deadline - now))
            for job_id, stored in changed.items():
                previous = sent.get(job_id)
                if previous is not None and (state.is_terminal(previous[0])
                                             or stored.event["updatedAt"] <= previous[1]):
                    continue
                yield frame(stored.event, stored.encoded_event())  # encoded once for every stream of this state
                last_write = time.monotonic()
    finally:
        subscription.close()
        metrics.OPEN_STREAMS.dec()
        metrics.STREAM_SECONDS.observe(time.monotonic() - opened)
