"""A per-user cap on concurrent open streams, held in Redis so it holds across web processes.

Each process keeps its users' open-stream counts in its own Redis hash, refreshed (with a TTL)
by one background greenlet, so a crashed process's counts expire instead of leaking, and an
idle stream costs no Redis command at all. Opening a stream counts first and checks the total
second, so concurrent opens can be refused together but never admitted past the cap. Closing
streams are uncounted in batches (one ``HINCRBY`` per user every ``RELEASE_SECONDS``), so the
many streams that end with one job cost one command, not one each.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Optional

import gevent
import redis
from gevent.lock import Semaphore

from . import keys

log = logging.getLogger("jobapp.streamcap")

REFRESH_SECONDS = 10
TTL_SECONDS = 3 * REFRESH_SECONDS
RELEASE_SECONDS = 0.2  # a closed stream frees its place this much later, at most


class StreamCap:
    def __init__(self, connection: redis.Redis, limit: int) -> None:
        self._connection = connection
        self.limit = limit
        self._process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._refresher: Optional[gevent.Greenlet] = None
        self._starting = Semaphore()  # one refresher per process, however many streams open at once
        self._pid: Optional[int] = None
        self._released: dict[str, int] = {}  # user id -> closed streams not yet uncounted in Redis
        self._releaser: Optional[gevent.Greenlet] = None

    @property
    def _hash(self) -> str:
        return keys.stream_counts(self._process)

    def _ensure_refreshing(self) -> None:
        if self._pid != os.getpid():  # forked: a process of its own
            self._pid = os.getpid()
            self._process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self._refresher, self._starting = None, Semaphore()
            self._released, self._releaser = {}, None
        if self._refresher is None or self._refresher.dead:
            with self._starting:  # the first refresh waits on Redis: streams opening meanwhile wait for it
                if self._refresher is None or self._refresher.dead:
                    try:
                        self._refresh()
                    except redis.exceptions.OutOfMemoryError:
                        log.warning("stream counts not refreshed: redis is full")
                    self._refresher = gevent.spawn(self._refresh_forever)

    def _refresh(self) -> None:
        with self._connection.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.STREAM_PROCESSES, {self._process: time.time() + TTL_SECONDS})
            pipe.expire(self._hash, TTL_SECONDS)
            pipe.execute()

    def _refresh_forever(self) -> None:
        while True:
            gevent.sleep(REFRESH_SECONDS)
            try:
                self._refresh()
            except redis.RedisError as exc:
                log.warning("stream counts not refreshed (%s)", type(exc).__name__)

    def acquire(self, user_id: str) -> Optional[bool]:
        """Count a new stream for ``user_id``; False (and nothing counted) if that passes the cap.

        None: admitted uncounted, because Redis is full and refuses the count (a full store must not
        stop anyone watching the jobs already in it); such a stream is not released either.
        """
        self._ensure_refreshing()
        try:
            self._connection.hincrby(self._hash, user_id, 1)
        except redis.exceptions.OutOfMemoryError:
            log.warning("stream admitted uncounted: redis is full")
            return None
        if self.total(user_id) <= self.limit:
            return True
        self._uncount({user_id: 1})
        return False

    def release(self, user_id: str) -> None:
        """A stream of ``user_id`` closed: uncount it with the others closing about now."""
        self._released[user_id] = self._released.get(user_id, 0) + 1
        if self._releaser is None:
            self._releaser = gevent.spawn_later(RELEASE_SECONDS, self._flush)

    def _flush(self) -> None:
        try:
            while self._released:  # streams that close while we write go in the next round
                released, self._released = self._released, {}
                self._uncount(released)
        finally:
            self._releaser = None  # no switch between the last check and this: nothing is left behind

    def _uncount(self, counts: dict[str, int]) -> None:
        try:
            with self._connection.pipeline(transaction=False) as pipe:
                for user_id, count in counts.items():
                    pipe.hincrby(self._hash, user_id, -count)
                pipe.execute()
        except redis.RedisError as exc:  # the hash expires with this process's refreshes anyway
            log.warning("stream counts not released (%s)", type(exc).__name__)

    def total(self, user_id: str) -> int:
        """Open streams of ``user_id`` across every live web process."""
        now = time.time()
        self._connection.zremrangebyscore(keys.STREAM_PROCESSES, 0, now)
        processes = self._connection.zrange(keys.STREAM_PROCESSES, 0, -1)
        with self._connection.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.hget(keys.stream_counts(process.decode()), user_id)
            return sum(int(v or 0) for v in pipe.execute())
