"""jobapp's worker (``python worker.py``): a scheduler that waits for the next due job or a wake rather
than looking every second, its locks renewed every 15 s (jobapp/scheduler.py); a suspended worker whose
looks at ``rq suspend``'s key thin out to one every 5 s, its heartbeat every 15 s; and RQ jobs that
jobapp did not queue run as RQ runs them."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.suspension import resume, suspend

from jobapp import keys, scheduler
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


def commands_on(redis_server, prefix: str, until) -> list[str]:
    """The commands (MONITOR) that name a key starting with ``prefix`` until ``until()`` holds: a
    count by key, where commandstats would also count the worker's own registry cleaning at start."""
    monitor = redis.Redis.from_url(redis_server.url).monitor()
    monitor.__enter__()
    seen: list[str] = []

    def read() -> None:
        try:
            while True:
                words = monitor.next_command()["command"].split(" ")
                if any(word.startswith(prefix) for word in words[1:]):
                    seen.append(words[0].lower())
        except (redis.RedisError, OSError, ValueError):
            pass  # the connection closed below

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        until()
    finally:
        monitor.connection.disconnect()
        reader.join(5)
    return seen


def test_an_idle_scheduler_waits_rather_than_looking_every_second_and_renews_its_locks_every_15_s(worker, redis_server,
                                                                                                  redis_conn):
    locks = worker
    renewals = calls(redis_conn, "evalsha")
    waits = calls(redis_conn, "blpop")
    # Nothing is scheduled: the scheduler waits in BLPOP for SCHEDULER_LOOK_SECONDS (5) between looks.
    on_schedules = commands_on(redis_server, "rq:scheduled:", lambda: wait_until(
        lambda: calls(redis_conn, "blpop") - waits >= 1, timeout=60, what="a wait of the scheduler"))
    assert "zrangebyscore" not in on_schedules, "no look for due jobs while none is due"
    looks = on_schedules.count("zrange")  # one ZRANGE per queue and look
    assert looks <= 2 * len(locks), f"{looks} looks at {len(locks)} queues' schedules in one wait"
    renewed = calls(redis_conn, "evalsha") - renewals  # one lock script per queue and renewal
    assert renewed <= len(locks), f"{renewed} lock renewals for {len(locks)} queues in one wait"
    assert all(0 < redis_conn.ttl(key) <= 61 for key in locks), "the locks still expire if the worker dies"
    assert HEARTBEAT_SECONDS < 61 / 2, "renewed well within the locks' lifetime"


def test_a_woken_scheduler_starts_a_job_on_time_and_a_stop_ends_its_wait(redis_server, redis_conn, artifacts):
    # A scheduler that looks on its own only once a minute: only the wake can start the job in time.
    process = WorkerProcess(base_env(redis_server.url, SCHEDULER_LOOK_SECONDS="60"), artifacts)
    try:
        locks = wait_until(lambda: redis_conn.keys("rq:scheduler-lock:*"), what="the scheduler's locks")
        wait_until(lambda: any(client.get("cmd") == "blpop" for client in redis_conn.client_list()), timeout=60,
                   what="the scheduler waiting")
        queue = Queue(locks[0].decode().rsplit(":", 1)[1], connection=redis_conn, serializer=SERIALIZER)
        job = queue.enqueue_in(timedelta(seconds=1), "os.getpid")
        scheduler.wake(redis_conn, queue.name)  # what jobapp's queue route and retries send with the job
        wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=30, what="the woken job run")
        stopping = time.monotonic()
    finally:
        process.stop()
    assert time.monotonic() - stopping < 30, "the worker's stop waited for the scheduler's minute-long wait"
    assert not redis_conn.keys("rq:scheduler-lock:*"), "the stopped scheduler released its locks"


def test_rq_jobs_jobapp_did_not_queue_run_as_rq_runs_them(worker, redis_conn):
    queue = Queue(worker[0].decode().rsplit(":", 1)[1], connection=redis_conn, serializer=SERIALIZER)
    scheduled = queue.enqueue_in(timedelta(seconds=1), "os.getpid")  # no owner, no job type in its meta
    failing = queue.enqueue("json.loads", "not JSON")
    wait_until(lambda: scheduled.get_status(refresh=True) == "finished", timeout=30, what="the scheduled job run")
    wait_until(lambda: failing.get_status(refresh=True) == "failed", timeout=30, what="the failing job failed")
    failed = Job.fetch(failing.id, connection=redis_conn, serializer=SERIALIZER)
    assert "failedReason" not in failed.meta and "JSONDecodeError" in (failed.latest_result().exc_string or "")
    assert not redis_conn.exists(keys.job_state(scheduled.id), keys.job_state(failing.id)), "no jobapp state"


def test_a_suspended_worker_looks_less_and_less_often_and_renews_its_heartbeat_every_15_s(redis_server, redis_conn,
                                                                                          artifacts):
    suspend(redis_conn)  # what `rq suspend` does; a worker started now waits before its first dequeue
    process = WorkerProcess(base_env(redis_server.url), artifacts)
    try:
        worker_key = wait_until(lambda: next((key for key in redis_conn.smembers("rq:workers")
                                              if redis_conn.hget(key, "state") == b"suspended"), None),
                                timeout=60, what="the worker suspended")
        looks, beats = calls(redis_conn, "exists"), {redis_conn.hget(worker_key, "last_heartbeat")}
        started = time.monotonic()

        def three_looks() -> bool:  # every heartbeat seen meanwhile (the worker's, not the scheduler's)
            beats.add(redis_conn.hget(worker_key, "last_heartbeat"))
            return calls(redis_conn, "exists") - looks >= 3

        wait_until(three_looks, timeout=60, what="three looks at the suspension")
        # RQ's one-second looks would take about 3 s; thinning out (1, 2 and 4 s apart), about 7.
        assert time.monotonic() - started >= 5, "the looks at a long suspension do not thin out"
        assert len(beats) - 1 <= 1, f"{len(beats) - 1} heartbeats in three looks while suspended"
        queue = Queue(redis_conn.hget(worker_key, "queues").decode().split(",")[0], connection=redis_conn,
                      serializer=SERIALIZER)
        held = queue.enqueue("os.getpid")
        assert held.get_status(refresh=True) == "queued"
        resume(redis_conn)  # what `rq resume` does: the worker notices within SUSPENDED_LOOK_SECONDS
        wait_until(lambda: held.get_status(refresh=True) == "finished", timeout=30, what="the job run after rq resume")
        assert redis_conn.ttl(worker_key) > 0 and SUSPENDED_HEARTBEAT_SECONDS < 480 / 4, "the worker never expires"
    finally:
        resume(redis_conn)
        process.stop()
