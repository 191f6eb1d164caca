"""Faults with the real parts: workers SIGKILLed, jobs timing out or raising, Redis killed and
restarted, the web process told to stop. Nothing may hang, and no final state may be lost."""

from __future__ import annotations

import json
import signal
import time

import httpx
import redis

from jobapp import keys
from tests.sse_client import queue_character, raw_stream, read_stream, read_until
from tests.support import WebServer, job_log, wait_until
from tests.test_hub import metric


def path(job: dict) -> str:
    return f"/api/v1/sse/jobs/{job['type']}/{job['jobId']}"


def first_active(events) -> bool:
    return events[-1][1].get("status") == "active" and events[-1][1]["progress"] > 0


def test_a_sigkilled_worker_fails_its_job_and_the_stream_hears_it(service):
    svc = service(JOB_STEP_SECONDS="1", WORKER_HEARTBEAT_SECONDS="1", DEAD_WORKER_SECONDS="3")
    job = queue_character(svc.url, svc.headers())
    opened = read_stream(svc.url + path(job), svc.headers(), timeout=10, stop=first_active)
    assert opened.events[-1][1]["status"] == "active"
    assert svc.worker.descendants(), "the work horse is running the job"
    svc.worker.kill_all()  # the worker and its work horse, no cleanup at all
    killed = time.monotonic()
    stream = read_stream(svc.url + path(job), svc.headers(), timeout=20)
    final = stream.events[-1][1]
    assert final["status"] == "failed" and final["failedReason"] == "The worker running this job died"
    assert time.monotonic() - killed < 30, "within seconds (DEAD_WORKER_SECONDS=3), not RQ's 90 s and more"
    conn = redis.Redis.from_url(svc.redis_server.url)
    assert conn.hget(f"rq:job:{job['jobId']}", "status") == b"failed"
    assert conn.zscore("rq:failed:character", job["jobId"]) is not None


def test_a_job_past_its_timeout_fails_as_timed_out(service):
    svc = service(JOB_STEP_SECONDS="1", JOB_TIMEOUT="1")
    job = queue_character(svc.url, svc.headers())
    final = read_stream(svc.url + path(job), svc.headers(), timeout=15).events[-1][1]
    assert final["status"] == "failed" and final["failedReason"] == "Job timed out after 1 seconds"


def test_a_job_that_raises_fails_with_a_short_reason_and_logs_the_traceback(live):
    conn = redis.Redis.from_url(live.redis_server.url)
    conn.set(keys.character("c" * 32), json.dumps({"owner": "alice", "character": {"id": "c" * 32}}))  # no traits
    job = httpx.post(f"{live.url}/api/v1/media/queue", json={"characterId": "c" * 32, "kind": "image"},
                     headers=live.headers()).json()["data"]
    final = read_stream(live.url + path(job), live.headers()).events[-1][1]
    assert final["status"] == "failed"
    assert final["failedReason"] == "Job failed with an unexpected error (KeyError)"
    assert "Traceback" not in json.dumps(final) and "File " not in json.dumps(final)
    wait_until(lambda: "KeyError: 'traits'" in job_log(live.worker.log(), job["jobId"]), 30,
               "this job's traceback in the worker's log")


def test_sigterm_ends_open_streams_with_a_retry_hint_and_nothing_is_lost(service):
    svc = service(workers=0, GUNICORN_GRACEFUL_TIMEOUT="10")
    jobs = [queue_character(svc.url, svc.headers()) for _ in range(3)]
    socks = [raw_stream(svc.url, path(job), svc.headers(), timeout=10) for job in jobs]
    for sock in socks:
        read_until(sock, b"data: ")
    started = time.monotonic()
    svc.web.send(signal.SIGTERM)
    for sock in socks:
        tail = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"stream did not end; got {tail!r}; log:\n{svc.web.log()}")
            if not data:
                break
            tail += data
        assert b"retry: " in tail and tail.endswith(b"0\r\n\r\n"), tail  # a retry hint, then a clean end
    assert time.monotonic() - started < 10, "before the graceful timeout (10 s) would cut them"
    svc.web.popen.wait(10)
    # a job's final state recorded meanwhile reaches the client that reconnects elsewhere
    other = WebServer(svc.env, svc.log_dir)
    try:
        httpx.post(f"{other.url}/api/v1/jobs/character/{jobs[0]['jobId']}/cancel", headers=svc.headers())
        again = read_stream(other.url + path(jobs[0]), {**svc.headers(), "Last-Event-ID": "1"})
        assert [e["status"] for _, e in again.events] == ["canceled"]
    finally:
        other.stop()


def test_redis_going_away_and_coming_back(service):
    svc = service(persistent=True, JOB_STEP_SECONDS="0.7")
    job = queue_character(svc.url, svc.headers())
    port = svc.redis_server.port
    outage = {}

    def kill_redis_once_active(events):
        if first_active(events) and not outage:
            svc.redis_server.stop()
            outage["at"] = time.monotonic()
            try:
                answer = httpx.post(f"{svc.url}/api/v1/characters/queue", json={"name": "X", "age": 1},
                                    headers=svc.headers(), timeout=10)
                outage["queue"] = (answer.status_code, answer.json())
                outage["ready"] = httpx.get(f"{svc.url}/readyz", timeout=10).status_code
            finally:
                time.sleep(2)
                svc.redis_server.port = port
                svc.redis_server.start()
        return False

    stream = read_stream(svc.url + path(job), svc.headers(), timeout=40, stop=kill_redis_once_active)
    status, body = outage["queue"]
    assert status == 503 and "nothing was queued" in body["error"]["message"]
    assert "redis://" not in json.dumps(body)
    assert outage["ready"] == 503
    final = stream.events[-1][1]
    assert stream.ended and final["status"] in {"completed", "failed"}
    snapshot = httpx.get(f"{svc.url}/api/v1/jobs/character/{job['jobId']}", headers=svc.headers()).json()["data"]
    assert snapshot["status"] == final["status"], "the stream delivered the true final state"
    assert final["status"] == "completed", "the worker rode out the restart"
    conn = redis.Redis.from_url(svc.redis_server.url)
    assert conn.llen("rq:queue:character") == 0, "the refused request left nothing half-queued"
    assert httpx.get(f"{svc.url}/readyz").status_code == 200
    assert queue_character(svc.url, svc.headers())["status"] == "pending"
    assert metric(svc.url, "jobapp_open_streams") == 0
