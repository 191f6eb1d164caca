"""One watcher per web process: a pub/sub listener and a fetcher greenlet serve every stream.

Streams register the jobs they watch and sleep on their own gevent ``Event``. When a job id is
published on the changes channel (push), or when the safety-net tick comes round (poll), the
fetcher re-reads the watched states in one batched round trip and wakes exactly the streams
of the jobs that changed. Idle cost is one ``MGET`` per 1,000 watched jobs per tick, whatever
the number of streams.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Optional

import gevent
import redis
from gevent.event import Event

from .. import keys, lifecycle, metrics, reaper, statestore
from ..statestore import StoredState

log = logging.getLogger("jobapp.hub")


class HubSubscription:
    def __init__(self, hub: "Hub") -> None:
        self._hub = hub
        self.job_ids: set[str] = set()
        self.user_id: Optional[str] = None
        self._changed: set[str] = set()
        self._event = Event()

    def add(self, job_ids: Iterable[str]) -> None:
        self._hub._register(self, [i for i in job_ids if i not in self.job_ids])

    def follow_user(self, user_id: str) -> None:
        """Also watch every job ``user_id`` queues from now on."""
        self.user_id = user_id
        self._hub.users.setdefault(user_id, set()).add(self)

    def notify(self, job_id: str) -> None:
        self._changed.add(job_id)
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> dict[str, StoredState]:
        if not self._changed:
            self._event.wait(timeout)
        self._event.clear()
        changed, self._changed = self._changed, set()
        hub = self._hub
        return {i: hub.decoded(i) for i in changed if i in hub.latest}

    def close(self) -> None:
        self._hub._unregister(self)


class Hub:
    def __init__(self, connection: redis.Redis, poll_seconds: float, dead_worker_seconds: float) -> None:
        self._connection = connection
        self._poll_seconds = poll_seconds
        self._dead_worker_seconds = dead_worker_seconds
        self.watchers: dict[str, set[HubSubscription]] = {}  # job id -> subscriptions
        self.latest: dict[str, bytes] = {}  # job id -> last state read, as stored (compared undecoded)
        self._decoded: dict[str, tuple[bytes, StoredState]] = {}  # job id -> (latest, decoded once for all its streams)
        self.users: dict[str, set[HubSubscription]] = {}  # user id -> subscriptions following new jobs
        self._dirty: set[str] = set()
        self._wake = Event()
        self._pid: Optional[int] = None
        self._greenlets: list[gevent.Greenlet] = []
        lifecycle.on_shutdown(self.wake_all)

    # -- streams' side -------------------------------------------------------------------
    def subscribe(self, job_ids: Iterable[str]) -> HubSubscription:
        self._ensure_running()
        subscription = HubSubscription(self)
        subscription.add(job_ids)
        return subscription

    def _register(self, subscription: HubSubscription, job_ids: list[str]) -> None:
        for job_id in job_ids:
            subscription.job_ids.add(job_id)
            self.watchers.setdefault(job_id, set()).add(subscription)
        metrics.WATCHED_JOBS.set(len(self.watchers))

    def _unregister(self, subscription: HubSubscription) -> None:
        if subscription.user_id is not None:
            followers = self.users.get(subscription.user_id, set())
            followers.discard(subscription)
            if not followers:
                self.users.pop(subscription.user_id, None)
        for job_id in subscription.job_ids:
            subs = self.watchers.get(job_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self.watchers[job_id]
                    self.latest.pop(job_id, None)
                    self._decoded.pop(job_id, None)
        subscription.job_ids.clear()
        metrics.WATCHED_JOBS.set(len(self.watchers))

    # -- background greenlets --------------------------------------------------------------
    def _ensure_running(self) -> None:
        """Start the greenlets once per process (after a fork, the parent's are not ours)."""
        if self._pid == os.getpid() and all(not g.dead for g in self._greenlets):
            return
        self._pid = os.getpid()
        self._greenlets = [gevent.spawn(self._listen), gevent.spawn(self._fetch), gevent.spawn(self._reap)]

    def decoded(self, job_id: str) -> StoredState:
        """The latest state of ``job_id``, decoded once and shared (read-only) by every stream woken for it."""
        raw = self.latest[job_id]
        cached = self._decoded.get(job_id)
        if cached is None or cached[0] is not raw:
            cached = self._decoded[job_id] = (raw, statestore.decode(raw))
        return cached[1]

    def wake_all(self) -> None:
        """Wake every stream (the process is stopping; each sees nothing changed and checks why)."""
        for subscriptions in list(self.watchers.values()):
            for subscription in list(subscriptions):
                subscription.wake()

    def _listen(self) -> None:
        """Hold one subscription to the changes channel; mark watched jobs dirty as ids arrive."""
        backoff = 0.1
        while True:
            pubsub = self._connection.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.CHANGES_CHANNEL, keys.NEW_JOBS_CHANNEL)
                self._mark_all_dirty()  # anything published while we were not listening
                backoff = 0.1
                for message in pubsub.listen():
                    data = message["data"].decode()
                    if message["channel"] == keys.NEW_JOBS_CHANNEL.encode():
                        user_id, _, data = data.rpartition(" ")
                        for subscription in list(self.users.get(user_id, ())):
                            subscription.add([data])
                    if data in self.watchers:
                        self._dirty.add(data)
                        self._wake.set()
            except redis.RedisError as exc:
                log.warning("hub: changes subscription lost (%s); retrying in %.1fs", type(exc).__name__, backoff)
            finally:
                pubsub.close()
            gevent.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _mark_all_dirty(self) -> None:
        self._dirty.update(self.watchers)
        self._wake.set()

    def _reap(self) -> None:
        """Fail jobs whose worker died (see reaper.py), checking a few times per grace period."""
        interval = max(0.5, self._dead_worker_seconds / 4)
        while True:
            gevent.sleep(interval)
            try:
                reaper.reap(self._connection, self._dead_worker_seconds, lock_seconds=interval * 0.9)
            except redis.RedisError as exc:
                log.warning("hub: reaper pass failed (%s)", type(exc).__name__)
            except Exception:
                log.exception("hub: reaper pass failed")

    def _fetch(self) -> None:
        """Re-read dirty jobs in one batch; on the safety-net tick, every watched job."""
        while True:
            if not self._wake.wait(self._poll_seconds):
                self._dirty.update(self.watchers)
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            dirty &= self.watchers.keys()
            if not dirty:
                continue
            try:
                states = statestore.read_many_raw(self._connection, dirty)
            except redis.RedisError as exc:
                log.warning("hub: re-read failed (%s); will retry", type(exc).__name__)
                self._dirty |= dirty
                gevent.sleep(0.5)
                self._wake.set()
                continue
            for job_id, stored in states.items():
                if job_id in self.watchers and self.latest.get(job_id) != stored:
                    self.latest[job_id] = stored
                    for subscription in list(self.watchers[job_id]):
                        subscription.notify(job_id)
