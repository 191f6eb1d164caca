"""One watcher per web process: a pub/sub listener and a fetcher greenlet serve every stream.

Streams register the jobs they watch and sleep on their own gevent ``Event``. When a state is
published on the changes channel (push: the announcement carries it), the listener takes it as
is and wakes exactly the streams of that job, without reading Redis; when the safety-net tick
comes round (poll), or after the subscription was lost, the fetcher re-reads the watched states
in one batched round trip and wakes the streams of the jobs that changed. Idle cost is one
``MGET`` per 1,000 watched jobs per tick, whatever the number of streams. Each change is decoded
and encoded once per process, whatever the number of streams (``current``).

Two more things ride on the same listener, at a cost that does not grow with streams either:
log appends (``keys.LOG_CHANNEL`` carries the new last line id, so the hub knows each watched
job's log head without reading it and wakes only that job's streams), and places in line: every
``POSITION_INTERVAL_SECONDS`` one lookup per queue for all watched pending jobs (``positions``),
waking only the streams whose job moved, so a job's place changes at most once per interval. Place
news yields to state news: it wakes streams a batch at a time, each batch once the process has
nothing else to do, so a burst of new places (200 jobs in line, every one moving each second) never
delays a job's progress, and under load places simply go out less often.

The same lookup spares the RQ poll (``rqpoll``): a job the latest lookup found still waiting in its
queue has not been taken by any worker, so its RQ hash is not read that second. When a lookup no
longer finds a job it found before, that job's hash is read at once, so a plain worker's job is
seen within one place-in-line interval (used only when that interval is no longer than the poll's).

A line that stands still is looked at less often, down to every ``STILL_LINE_SECONDS``, so idle
streams on waiting jobs cost Redis almost nothing. Any announced state (a jobapp worker taking a job,
a job queued through jobapp) brings the looks back to every interval at once; only a plain worker's
first move after a still spell shows up to ``STILL_LINE_SECONDS`` late, and the moves after it on time.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Iterable, Optional

import gevent
import redis
from gevent.event import Event

from .. import keys, lifecycle, metrics, positions, reaper, sse, state, statestore
from ..statestore import StoredState
from .rqpoll import RQPoller

log = logging.getLogger("jobapp.hub")

#: Even a queue whose length and first job stay the same is read in full this often: a job removed
#: from the middle while another is pushed on the end changes places without changing either.
FULL_LOOKUP_SECONDS = 10.0
#: A line found standing still is looked at less and less often, down to once in this many seconds,
#: until news (any announced state: a jobapp worker took a job, a job was queued) or a look finds it moved.
STILL_LINE_SECONDS = 5.0
#: Place news wakes about this many streams, then waits for the process to be idle (or at most one
#: check interval) before the next batch: state news, which arrives meanwhile, goes first.
PLACE_BATCH_STREAMS = 200


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
        if timeout > 0 and not self._changed and not self._event.is_set():  # 0: never waits (a step in the hub)
            self._event.wait(timeout)
        self._event.clear()
        changed, self._changed = self._changed, set()
        return {i: s for i, s in ((i, self._hub.current(i)) for i in changed) if s is not None}

    def log_head(self, job_id: str) -> int:
        return self._hub.log_heads.get(job_id, 0)

    # -- a stream parked with no greenlet waiting (jobapp/sseworker.py) --
    def ready(self) -> bool:
        """Whether ``wait`` would return at once (news, or a wake, arrived)."""
        return bool(self._changed) or self._event.is_set()

    def rawlink(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` (in gevent's hub: it must not block) when news or a wake arrives."""
        self._event.rawlink(callback)

    def unlink(self, callback: Callable[[Any], None]) -> None:
        self._event.unlink(callback)

    def close(self) -> None:
        self._hub._unregister(self)


class Hub:
    def __init__(self, connection: redis.Redis, poll_seconds: float, dead_worker_seconds: float,
                 rq_poll_seconds: float = 1.0, position_seconds: float = 1.0,
                 listener: Optional[redis.Redis] = None) -> None:
        self._connection = connection  # reads and the reaper: the web's fail-fast client
        self._listener = listener or connection  # the pub/sub subscription: a client that may block reading
        self._poll_seconds = poll_seconds
        self._position_seconds = position_seconds
        self.log_heads: dict[str, int] = {}  # job id -> id of its last log line announced
        self.positions: dict[str, int] = {}  # job id -> place in line last found
        self._queued: dict[str, str] = {}  # watched job id -> queue, for jobs that may be waiting in it
        self._queued_changed = True  # ``_queued`` changed since ``_by_queue`` was built from it
        self._by_queue: dict[str, list[str]] = {}  # queue -> its jobs in ``_queued``
        self.waiting: set[str] = set()  # watched jobs the latest place-in-line lookup found in their queue
        # Per queue, the last place-in-line read: places found, jobs looked up, the queue's marks, next full read.
        self._places: dict[str, dict[str, int]] = {}
        self._looked_up: dict[str, set[str]] = {}
        self._marks: dict[str, tuple[int, Optional[bytes]]] = {}
        self._full_at: dict[str, float] = {}
        self._line_news = Event()  # a state was announced: some line may have moved
        self._found: dict[str, int] = {}  # the places the latest lookup found
        self._dead_worker_seconds = dead_worker_seconds
        self._rq_poll_seconds = rq_poll_seconds
        # A job found waiting is skipped by the RQ poll only if the next lookup comes no later than the next poll.
        self._skip_waiting = 0 < position_seconds <= rq_poll_seconds
        self.rq = RQPoller(connection)
        self.watchers: dict[str, set[HubSubscription]] = {}  # job id -> subscriptions
        self.latest: dict[str, bytes] = {}  # job id -> last state read, as stored (compared undecoded)
        self._views: dict[str, tuple[bytes, Optional[int], StoredState]] = {}  # job id -> (raw, place, decoded)
        self._arrived: Optional[set[str]] = None  # while a re-read is in flight: jobs announced meanwhile
        self.settled: set[str] = set()  # watched jobs that are finished, or whose changes jobapp's worker pushes
        self.users: dict[str, set[HubSubscription]] = {}  # user id -> subscriptions following new jobs
        self._dirty: set[str] = set()
        self._wake = Event()
        self._pid: Optional[int] = None
        self._greenlets: dict[str, gevent.Greenlet] = {}  # by loop: each runs once per process
        lifecycle.on_shutdown(self.wake_all)

    # -- streams' side -------------------------------------------------------------------
    def subscribe(self, job_ids: Iterable[str]) -> HubSubscription:
        self._ensure_running()
        subscription = HubSubscription(self)
        subscription.add(job_ids)
        return subscription

    def _register(self, subscription: HubSubscription, job_ids: list[str]) -> None:
        unread = [i for i in job_ids if i not in self.watchers]
        for job_id in job_ids:
            subscription.job_ids.add(job_id)
            self.watchers.setdefault(job_id, set()).add(subscription)
        if unread:  # read them soon (batched with other new ones): their place in line and RQ polling need it
            self._dirty.update(unread)
            self._wake.set()
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
                    self._views.pop(job_id, None)
                    self.log_heads.pop(job_id, None)
                    self._unqueue(job_id)
                    self.settled.discard(job_id)
                    self.rq.forget([job_id])
        subscription.job_ids.clear()
        metrics.WATCHED_JOBS.set(len(self.watchers))

    # -- background greenlets --------------------------------------------------------------
    def _ensure_running(self) -> None:
        """Start the greenlets once per process (after a fork, the parent's are not ours), and again
        only the one that died: a second listener or fetcher beside a live one would handle every
        announcement twice, and two fetchers would lose the announcements made during each other's reads."""
        if self._pid == os.getpid() and all(not g.dead for g in self._greenlets.values()):
            return  # every stream's open comes here: the usual answer costs no more than before
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._greenlets = {}
        loops = [self._listen, self._fetch, self._reap, self._place]
        if self._rq_poll_seconds > 0:
            loops.append(self._poll_rq)
        for loop in loops:
            running = self._greenlets.get(loop.__name__)
            if running is not None and not running.dead:
                continue
            if running is not None:
                log.error("hub: %s stopped (%r); started again", loop.__name__, running.exception)
            self._greenlets[loop.__name__] = gevent.spawn(loop)

    def current(self, job_id: str) -> Optional[StoredState]:
        """The job's latest state as streams see it: as stored, plus its place in line.

        Decoded once per change (or new place) and shared by every stream of the job: its event
        is an ``sse.Shared``, encoded once for all of them. Streams must not change it."""
        raw = self.latest.get(job_id)
        if raw is None:
            return None
        position = self.positions.get(job_id)
        view = self._views.get(job_id)
        if view is not None and view[0] is raw and view[1] == position:
            return view[2]
        stored = statestore.decode(raw)
        stored["event"] = sse.Shared(state.with_position(stored.event, position))
        self._views[job_id] = (raw, position, stored)
        return stored

    def wake_all(self) -> None:
        """Wake every stream (the process is stopping; each sees nothing changed and checks why)."""
        for subscriptions in list(self.watchers.values()):
            for subscription in list(subscriptions):
                subscription.wake()

    def _listen(self) -> None:
        """Hold one subscription to the changes channel; take each announced state as it arrives.

        A change carries the state as stored (``"<job id> <JSON>"``, see ``statestore``), applied in the
        order announced, which is the order written; a bare job id (an older worker's) marks it dirty.
        """
        changes, new_jobs, lines = (c.encode() for c in (keys.CHANGES_CHANNEL, keys.NEW_JOBS_CHANNEL, keys.LOG_CHANNEL))
        backoff = 0.1
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.CHANGES_CHANNEL, keys.NEW_JOBS_CHANNEL, keys.LOG_CHANNEL)
                self._mark_all_dirty()  # anything published while we were not listening
                backoff = 0.1
                for message in pubsub.listen():
                    channel, data = message["channel"], message["data"]
                    if channel == changes:
                        self._line_news.set()
                        job_id, _, raw = data.partition(b" ")
                        self._announced(job_id.decode(), raw)
                        continue
                    data = data.decode()
                    if channel == lines:
                        self._log_appended(data)
                        continue
                    if channel == new_jobs:
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

    def _announced(self, job_id: str, raw: bytes) -> None:
        if job_id not in self.watchers:
            return
        if not raw:  # an id alone: read it
            self._dirty.add(job_id)
            self._wake.set()
            return
        if self._arrived is not None:
            self._arrived.add(job_id)  # newer than what the re-read in flight may bring back
        self._apply(job_id, raw)

    def _apply(self, job_id: str, raw: bytes) -> None:
        """Take ``raw`` as the job's latest state and wake its streams, if it changed."""
        if self.latest.get(job_id) != raw:
            self.latest[job_id] = raw
            try:  # decoded once here for the hub's own bookkeeping (streams get theirs from ``current``)
                stored: Optional[StoredState] = statestore.decode(raw)
                stored.event.get("status")
            except (ValueError, AttributeError, KeyError, TypeError):
                stored = None
            self._track_queued(job_id, stored)
            self._settle(job_id, stored)
            for subscription in list(self.watchers[job_id]):
                subscription.notify(job_id)

    def _log_appended(self, data: str) -> None:
        """``"<job id> <line id>"``: remember the head and wake the job's streams (they read the lines)."""
        job_id, _, line_id = data.partition(" ")
        subscriptions = self.watchers.get(job_id)
        if not subscriptions or not line_id.isdigit():
            return
        self.log_heads[job_id] = max(self.log_heads.get(job_id, 0), int(line_id))
        for subscription in list(subscriptions):
            subscription.wake()

    def _place(self) -> None:
        """Every interval: one lookup per queue for every watched job that may wait in it. While the
        lines stand still, the interval doubles up to ``STILL_LINE_SECONDS``; news cuts it short."""
        interval = self._position_seconds
        while True:
            gevent.sleep(self._position_seconds)
            if interval > self._position_seconds:
                self._line_news.wait(interval - self._position_seconds)
            self._line_news.clear()
            if not self._queued:
                self.waiting.clear()
                continue
            interval = min(2 * interval, max(self._position_seconds, STILL_LINE_SECONDS))
            same_jobs = not self._queued_changed
            if not same_jobs:
                self._queued_changed = False
                self._by_queue = {}
                for job_id, queue in self._queued.items():
                    self._by_queue.setdefault(queue, []).append(job_id)
            try:
                found = self._lookup(self._by_queue, same_jobs)
            except redis.RedisError as exc:
                log.warning("hub: place-in-line lookup failed (%s)", type(exc).__name__)
                self.waiting.clear()  # nothing known: the RQ poll reads them all again
                self._queued_changed = True  # and the next pass goes all the way
                continue
            if found is None:
                continue  # the same jobs, and no line moved: the same places as last time
            if not same_jobs or found != self._found:
                interval = self._position_seconds  # lines move: keep looking every interval
            self._found = found
            left = [i for i in self.waiting if i not in found]
            self.waiting = {i for i in found if i in self._queued}
            if left and self._skip_waiting:
                self._poll_rq_once([i for i in left if i in self.watchers and i not in self.settled])
            self._send_places(found)

    def _send_places(self, found: dict[str, int]) -> None:
        """Take the new places and wake their streams, a batch at a time (``PLACE_BATCH_STREAMS``)."""
        woken = 0
        for job_id, place in found.items():
            if job_id not in self._queued or self.positions.get(job_id) == place:  # (re-checked after each wait)
                continue
            self.positions[job_id] = place
            for subscription in list(self.watchers.get(job_id, ())):
                subscription.notify(job_id)
                woken += 1
            if woken >= PLACE_BATCH_STREAMS:
                woken = 0
                gevent.with_timeout(self._position_seconds, gevent.idle, timeout_value=None)

    def _lookup(self, by_queue: dict[str, list[str]], same_jobs: bool = False) -> Optional[dict[str, int]]:
        """Places of the watched jobs: a queue is read again only if its length or first job changed
        (``positions.marks``, two small replies), new jobs are watched in it, or its last full read is
        ``FULL_LOOKUP_SECONDS`` old. So a line that does not move costs no scan of it. None when no
        queue was read and ``same_jobs`` (the same jobs as last time): the places are the last ones."""
        now = time.monotonic()
        marks = positions.marks(self._connection, by_queue)
        stale = {queue: ids for queue, ids in by_queue.items()
                 if marks[queue] != self._marks.get(queue) or now >= self._full_at.get(queue, 0)
                 or not self._looked_up.get(queue, set()).issuperset(ids)}
        if stale:
            fresh = positions.find(self._connection, stale, {queue: marks[queue][0] for queue in stale})
            for queue, ids in stale.items():
                self._places[queue] = {i: fresh[i] for i in ids if i in fresh}
                self._looked_up[queue] = set(ids)
                self._marks[queue] = marks[queue]  # taken before the read: a change meanwhile shows next time
                self._full_at[queue] = now + FULL_LOOKUP_SECONDS
        if not stale and same_jobs:
            return None
        for queue in [q for q in self._places if q not in by_queue]:
            for table in (self._places, self._looked_up, self._marks, self._full_at):
                table.pop(queue, None)
        found: dict[str, int] = {}
        for queue, ids in by_queue.items():
            places = self._places.get(queue, {})
            found.update((i, places[i]) for i in ids if i in places)
        return found

    def _track_queued(self, job_id: str, stored: Optional[StoredState]) -> None:
        """Keep ``_queued`` to the watched jobs whose state says they may be waiting in a queue."""
        if stored is not None and stored.event.get("status") == state.PENDING and not stored.event.get("waitingFor"):
            if self._queued.get(job_id) != stored.queue:
                self._queued[job_id] = stored.queue  # queued, or scheduled (in its queue once due)
                self._queued_changed = True
        else:
            self._unqueue(job_id)

    def _unqueue(self, job_id: str) -> None:
        """The job waits in no queue any more (or is no longer watched): forget its place."""
        if self._queued.pop(job_id, None) is not None:
            self._queued_changed = True
        self.positions.pop(job_id, None)
        self.waiting.discard(job_id)

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
        """Re-read dirty jobs in one batch; on the safety-net tick, every watched job.

        A state announced while the read is in flight is at least as new as what the read returns,
        so the read's answer for that job is dropped."""
        while True:
            if not self._wake.wait(self._poll_seconds):
                self._dirty.update(self.watchers)
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            dirty &= self.watchers.keys()
            if not dirty:
                continue
            self._arrived = set()
            try:
                states = statestore.read_many_raw(self._connection, dirty)
            except redis.RedisError as exc:
                log.warning("hub: re-read failed (%s); will retry", type(exc).__name__)
                self._dirty |= dirty
                gevent.sleep(0.5)
                self._wake.set()
                continue
            finally:
                arrived, self._arrived = self._arrived, None
            for job_id, stored in states.items():
                if job_id in self.watchers and job_id not in arrived:  # else pub/sub brought a newer one meanwhile
                    self._apply(job_id, stored)

    def _settle(self, job_id: str, stored: Optional[StoredState]) -> None:
        """Note whether RQ's hash of this job still needs polling."""
        if stored is not None and (state.is_terminal(stored.event.get("status")) or stored.pushed):
            self.settled.add(job_id)
        else:
            self.settled.discard(job_id)

    def _poll_rq(self) -> None:
        """About once a second, read RQ's hashes of the watched jobs no jobapp code reports on (rqpoll.py),
        except those the latest place-in-line lookup found still waiting in their queue."""
        while True:
            gevent.sleep(self._rq_poll_seconds)
            candidates = self.watchers.keys() - self.settled  # set operations: 10,000 jobs cost little
            if self._skip_waiting:
                candidates -= self.waiting
            self._poll_rq_once(list(candidates))

    def _poll_rq_once(self, candidates: list[str]) -> None:
        if not candidates or self._rq_poll_seconds <= 0:
            return
        try:
            self.rq.poll(candidates, {i: self.latest[i] for i in candidates if i in self.latest})
        except redis.RedisError as exc:
            log.warning("hub: RQ poll failed (%s); will retry", type(exc).__name__)
        except Exception:
            log.exception("hub: RQ poll failed")
