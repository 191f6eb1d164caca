"""The body of an SSE response: a generator that follows jobs through a watcher.

It sends ``retry:`` (in the first event's block) and each job's current state at once, then one event per change, a
keep-alive comment after each quiet heartbeat interval, and ends at the deadline (token expiry
or maximum lifetime) or, for a single-job stream, after the terminal event.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import redis

from . import joblog, lifecycle, metrics, positions, sse, state, statestore
from .streambody import BLOCKING, Frames, Idle, in_hub
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


#: A stream reads new log lines at most this often, so a burst of lines goes out as a few events.
LOG_BATCH_SECONDS = 0.1
#: After Redis failed to answer a stream's read, it tries again this much later (heartbeats meanwhile).
REDIS_RETRY_SECONDS = 0.5


def events(watcher: Watcher, connection: redis.Redis, job_ids: Iterable[str],
           last_event_id: Optional[int], settings: StreamSettings,
           follow_user: Optional[str] = None) -> Frames:
    """The stream of ``job_ids`` (and, with ``follow_user``, of every job that user queues meanwhile).

    Ids follow the scheme in ``joblog``'s docstring: a state goes out under ``updatedAt * 1000`` and
    a ``job_log`` event under its last line's id, in the order they were written (a job's lines
    below a state's id are always sent before that state); anything else (a replay on reconnect,
    a new place in line) takes the next odd id. A client's ``Last-Event-ID`` then says which lines
    it has: the ones with ids up to it. ``job_update`` events keep their rules (one per change,
    a finished state is the last of its job).
    """
    subscription = watcher.subscribe(job_ids)
    if follow_user is not None:
        subscription.follow_user(follow_user)
    opened = time.monotonic()
    metrics.OPEN_STREAMS.inc()
    try:
        resume = last_event_id or 0
        last_id = resume
        sent: dict[str, dict] = {}  # job id -> last job_update sent
        lines_to: dict[str, int] = {}  # job id -> id of the last log line the client has
        held: dict[str, dict] = {}  # job id -> state to send once the lines before it are out
        truncated: set[str] = set()  # jobs whose last read stopped at EVENT_MAX_LINES: more to read
        last_log_read = 0.0

        def frame(natural: int, data: dict) -> str:
            nonlocal last_id
            if natural > last_id:
                last_id = natural
            else:  # not tied to a write: the next odd id, which no log line ever has
                last_id += 1 if last_id % 2 == 0 else 2
            return sse.event(last_id, data)

        def wanted(event: dict) -> bool:
            previous = sent.get(event["jobId"])
            if previous is None:
                return True
            if event.get("position") is None and previous.get("position") is not None:
                event = {**event, "position": previous["position"], "scheduledFor": previous.get("scheduledFor")}
            elif (event["updatedAt"] == previous["updatedAt"] and previous.get("position") is not None
                  and (event.get("position") or 0) > previous["position"]):
                return False  # an older look at the line than the client's (the hub's, after a fresh one at connect)
            return not (state.is_terminal(previous["status"]) or event == previous
                        or event["updatedAt"] < previous["updatedAt"])

        def lines_behind(ids: Iterable[str]) -> list[str]:
            return [i for i in ids if i in truncated or subscription.log_head(i) > lines_to.get(i, resume)]

        def flush(read_logs_of: Iterable[str]) -> list[str]:
            """Frames for the held states and the new lines of ``read_logs_of``, in id order."""
            nonlocal last_log_read
            if not read_logs_of and len(held) == 1:  # the usual step: one new state, no lines to read
                job_id, event = held.popitem()
                sent[job_id] = event
                metrics.EVENTS.inc(1)
                return [frame(event_id(event), event)]
            heads = {i: subscription.log_head(i) for i in read_logs_of}
            chunks = joblog.read_after_shared(connection, {i: lines_to.get(i, resume) for i in read_logs_of},
                                              heads) if heads else {}
            last_log_read = time.monotonic()
            for job_id in read_logs_of:
                if job_id in chunks and not chunks[job_id].complete:
                    truncated.add(job_id)
                else:
                    truncated.discard(job_id)
            for job_id, head in heads.items():  # nothing to read up to the head (lines dropped meanwhile)
                if job_id not in chunks:
                    lines_to[job_id] = max(lines_to.get(job_id, resume), head)
            items: list[tuple[float, int, dict]] = []  # (order, natural id, payload)
            for job_id in set(held) | set(chunks):
                event, chunk = held.get(job_id), chunks.get(job_id)
                natural = event_id(event) if event is not None else 0
                if event is not None and chunk is not None:
                    before, chunk = chunk.split(natural)
                    if before is not None:
                        items.append((before.last_id, before.last_id, before))
                    if before is None or before.complete:  # else more lines below the state are unread
                        items.append((natural if natural > last_id else float("inf"), natural, held.pop(job_id)))
                elif event is not None:
                    items.append((natural if natural > last_id else float("inf"), natural, held.pop(job_id)))
                if chunk is not None:
                    items.append((chunk.last_id, chunk.last_id, chunk))
            out = []
            for _, natural, item in sorted(items, key=lambda x: x[0]):
                if isinstance(item, joblog.Chunk):
                    lines_to[item.job_id] = item.last_id
                    out.append(frame(natural, item.event()))
                else:
                    sent[item["jobId"]] = item
                    out.append(frame(natural, item))
            if out:
                metrics.EVENTS.inc(len(out))
            return out

        def finished() -> bool:
            return settings.close_on_terminal and bool(sent) and not held and all(
                state.is_terminal(event["status"]) for event in sent.values())

        # Read after subscribing, so no change falls between the read and the watch; lines after states.
        # retry: travels in the first event's block (and write); alone if there is no event yet.
        held.update(positions.add_to(connection, statestore.read_many(connection, subscription.job_ids)))
        first = flush(list(subscription.job_ids))
        yield sse.retry(settings.retry_ms) + "".join(first[:1])
        yield from first[1:]
        del first  # an idle stream keeps only what it needs: no stale frames or states in its locals
        last_write = time.monotonic()
        retry_at = 0.0  # after a failed read of log lines, not before this (time.monotonic())
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
            busy = bool(held) or bool(lines_behind(subscription.job_ids))
            if busy and now < retry_at:  # Redis did not answer a moment ago: heartbeats meanwhile
                timeout = min(quiet, retry_at - now)
            else:
                timeout = 0 if busy else min(quiet, settings.deadline - now)
            if timeout > 0:  # idle: the body waits (streambody), with nothing stale held meanwhile
                changed = frames = None
                changed = yield Idle(subscription, timeout, reads=busy)
            else:
                changed = subscription.wait(0)
            for job_id, stored in changed.items():
                if wanted(stored.event):
                    held[job_id] = stored.event
            stored = None
            behind = lines_behind(subscription.job_ids)
            if (not held and not behind) or time.monotonic() < retry_at:
                continue
            if behind and in_hub():  # the step reads log lines: in a greenlet, from here
                yield BLOCKING
            if behind and not truncated.issuperset(behind):  # a backlog goes out at once; live lines gather
                gap = LOG_BATCH_SECONDS - (time.monotonic() - last_log_read)
                if gap > 0:
                    time.sleep(gap)  # let a burst of lines gather into one event
            try:
                frames = flush(behind)
            except redis.RedisError:  # stalled or away: the stream stays open and sends it all once Redis answers
                retry_at = time.monotonic() + REDIS_RETRY_SECONDS
                continue
            for text in frames:
                yield text
            if frames:
                last_write = time.monotonic()
    finally:
        subscription.close()
        metrics.OPEN_STREAMS.dec()
        metrics.STREAM_SECONDS.observe(time.monotonic() - opened)
