"""jobapp's worker (``python worker.py``): RQ's scheduler with its locks renewed every 15 s, not on every
one-second check (jobapp/scheduler.py), and RQ jobs that jobapp did not queue run as RQ runs them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job

from jobapp import keys
from jobapp.extensions import SERIALIZER
from jobapp.scheduler import HEARTBEAT_SECONDS
from tests.probe_support import calls
from tests.support import WorkerProcess, base_env, wait_until


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
