"""jobapp's worker (``python worker.py``): RQ's scheduler with its locks renewed every 15 s, not on every
one-second check (jobapp/scheduler.py), a suspended worker's heartbeat every 15 s, not on every one-second
look at ``rq suspend``'s key, and RQ jobs that jobapp did not queue run as RQ runs them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job
from rq.suspension import resume, suspend

from jobapp import keys
from jobapp.devredis import RedisServer
from jobapp.extensions import SERIALIZER
from jobapp.scheduler import HEARTBEAT_SECONDS
from jobapp.worker import SUSPENDED_HEARTBEAT_SECONDS
from tests.probe_support import calls
from tests.support import WorkerProcess, base_env, wait_until


@pytest.fixture(scope="module")
def redis_server():
    """A Redis of this module's own: the session's also serves the shared service, whose worker's
    scheduler and web process would count in these tests' command counts."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def worker(redis_server, redis_conn, artifacts):
    process = WorkerProcess(base_env(redis_server.url), artifacts)
    try:
        yield wait_until(lambda: redis_conn.keys("rq:scheduler-lock:*"), what="the scheduler's locks")
    finally:
        process.stop()


def test_the_scheduler_checks_every_second_and_renews_its_locks_every_15_s(worker, redis_conn):
    locks = worker
    checks, renewals = calls(redis_conn, "zrangebyscore"), calls(redis_conn, "evalsha")
    # Five checks of every queue for due jobs (one ZRANGEBYSCORE each, once a second): about five seconds.
    wait_until(lambda: calls(redis_conn, "zrangebyscore") - checks >= 5 * len(locks), timeout=60,
               what="five rounds of checks for due jobs")
    renewed = calls(redis_conn, "evalsha") - renewals  # one lock script per queue and renewal; nothing else runs
    assert renewed <= len(locks), f"{renewed} lock renewals for {len(locks)} queues in five checks"
    assert all(0 < redis_conn.ttl(key) <= 61 for key in locks), "the locks still expire if the worker dies"
    assert HEARTBEAT_SECONDS < 61 / 2, "renewed well within the locks' lifetime"


def test_rq_jobs_jobapp_did_not_queue_run_as_rq_runs_them(worker, redis_conn):
    queue = Queue(worker[0].decode().rsplit(":", 1)[1], connection=redis_conn, serializer=SERIALIZER)
    scheduled = queue.enqueue_in(timedelta(seconds=1), "os.getpid")  # no owner, no job type in its meta
    failing = queue.enqueue("json.loads", "not JSON")
    wait_until(lambda: scheduled.get_status(refresh=True) == "finished", timeout=30, what="the scheduled job run")
    wait_until(lambda: failing.get_status(refresh=True) == "failed", timeout=30, what="the failing job failed")
    failed = Job.fetch(failing.id, connection=redis_conn, serializer=SERIALIZER)
    assert "failedReason" not in failed.meta and "JSONDecodeError" in (failed.latest_result().exc_string or "")
    assert not redis_conn.exists(keys.job_state(scheduled.id), keys.job_state(failing.id)), "no jobapp state"


def test_a_suspended_worker_looks_every_second_and_renews_its_heartbeat_every_15_s(redis_server, redis_conn,
                                                                                   artifacts):
    suspend(redis_conn)  # what `rq suspend` does; a worker started now waits before its first dequeue
    process = WorkerProcess(base_env(redis_server.url), artifacts)
    try:
        worker_key = wait_until(lambda: next((key for key in redis_conn.smembers("rq:workers")
                                              if redis_conn.hget(key, "state") == b"suspended"), None),
                                timeout=60, what="the worker suspended")
        looks, beats = calls(redis_conn, "exists"), {redis_conn.hget(worker_key, "last_heartbeat")}

        def five_looks() -> bool:  # every heartbeat seen meanwhile (the worker's, not the scheduler's)
            beats.add(redis_conn.hget(worker_key, "last_heartbeat"))
            return calls(redis_conn, "exists") - looks >= 5

        wait_until(five_looks, timeout=60, what="five looks at the suspension")
        assert len(beats) - 1 <= 1, f"{len(beats) - 1} heartbeats in five one-second looks while suspended"
        queue = Queue(redis_conn.hget(worker_key, "queues").decode().split(",")[0], connection=redis_conn,
                      serializer=SERIALIZER)
        held = queue.enqueue("os.getpid")
        assert held.get_status(refresh=True) == "queued"
        resume(redis_conn)  # what `rq resume` does: the worker notices within a second or so
        wait_until(lambda: held.get_status(refresh=True) == "finished", timeout=30, what="the job run after rq resume")
        assert redis_conn.ttl(worker_key) > 0 and SUSPENDED_HEARTBEAT_SECONDS < 480 / 4, "the worker never expires"
    finally:
        resume(redis_conn)
        process.stop()
