"""Contract 1.1 end to end: retries, dependencies, schedules, place in line and job log lines.

Real Redis, gunicorn and RQ workers (with RQ's scheduler); the test-only job types of
``tests/jobs_for_tests.py`` are registered through ``JOBAPP_JOBS`` as a team's own would be.
"""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from tests.sse_client import queue_character, read_stream
from tests.support import WorkerProcess

JOBS = "jobapp.demo,tests.jobs_for_tests"
TERMINAL = {"completed", "failed", "canceled"}


@pytest.fixture(scope="module")
def svc(artifacts):
    from tests.conftest import Live

    # A scheduler that looks on its own once a minute: scheduled jobs and retries start on time only
    # because jobapp wakes it (the queue route and the worker's retry handling).
    service = Live(artifacts, JOBAPP_JOBS=JOBS, POSITION_INTERVAL_SECONDS="0.3", SCHEDULER_LOOK_SECONDS="60")
    yield service
    service.stop()


def queue(svc, route: str, body: dict, user: str = "alice") -> dict:
    response = httpx.post(f"{svc.url}/api/v1/{route}/queue", json=body, headers=svc.headers(user), timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def snapshot(svc, job: dict, log: bool = False) -> dict:
    url = f"{svc.url}{job['statusUrl']}" + ("?log=1" if log else "")
    return httpx.get(url, headers=svc.headers(), timeout=10).json()["data"]


def updates(stream) -> list[dict]:
    return [e for _, e in stream.events if e["type"] == "job_update"]


def log_events(stream) -> list[tuple[int, dict]]:
    return [(i, e) for i, e in stream.events if e["type"] == "job_log"]


def lines_of(stream) -> list[str]:
    return [line for _, e in log_events(stream) for line in e["lines"]]


# --- retries -------------------------------------------------------------------------------------

def test_a_retried_job_restarts_its_progress_and_ends_once(svc):
    job = queue(svc, "flaky", {"fail_times": 1, "pause": 0.2})
    stream = read_stream(svc.url + job["streamUrl"], timeout=40)
    events = updates(stream)
    assert stream.ended and events[-1]["status"] == "completed" and events[-1]["attempt"] == 2
    assert [e for e in events[:-1] if e["status"] in TERMINAL] == [], "no terminal event between attempts"
    assert all(e["maxAttempts"] == 3 for e in events)
    first = [e["progress"] for e in events if e["attempt"] == 1 and e["status"] == "active"]
    second = [e for e in events if e["attempt"] == 2]
    assert first and first == sorted(first) and max(first) == 60, "attempt 1's progress"
    waiting = second[0]
    assert waiting["status"] == "pending" and waiting["progress"] == 0
    assert waiting["message"].startswith("Retrying in ") and waiting["message"].endswith("(attempt 2 of 3)")
    assert waiting["scheduledFor"] is not None and waiting["failedReason"] is None
    progress = [e["progress"] for e in second]
    assert progress == sorted(progress) and progress[0] == 0, "attempt 2 starts again from 0"


def test_a_job_failing_every_attempt_fails_once_after_the_last(svc):
    job = queue(svc, "flaky", {"fail_times": 5, "pause": 0})
    stream = read_stream(svc.url + job["streamUrl"], timeout=40)
    events = updates(stream)
    assert [e["status"] for e in events].count("failed") == 1 and events[-1]["status"] == "failed"
    assert events[-1]["attempt"] == 3 and events[-1]["failedReason"] == "Failure number 3"
    attempts = [e["attempt"] for e in events]
    assert attempts == sorted(attempts) and 2 in attempts, "the stream stayed open through the retries"


def test_a_stopped_job_is_never_retried(svc):
    job = queue(svc, "flaky", {"fail_times": 5, "pause": 1.5})

    def running(events) -> bool:
        return any(e.get("status") == "active" for _, e in events)

    read_stream(svc.url + job["streamUrl"], timeout=20, stop=running)
    canceled = httpx.post(f"{svc.url}/api/v1/jobs/flaky/{job['jobId']}/cancel", headers=svc.headers())
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "canceled"
    conn = redis.Redis.from_url(svc.redis_server.url)
    deadline = time.monotonic() + 15
    while conn.hget(f"rq:job:{job['jobId']}", "status") != b"stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert conn.hget(f"rq:job:{job['jobId']}", "status") == b"stopped"
    time.sleep(2.5)  # longer than the retry interval (1 s) plus the scheduler's tick (1 s)
    assert conn.hget(f"rq:job:{job['jobId']}", "status") == b"stopped", "RQ did not run it again"
    assert conn.get(f"tests:flaky:{job['jobId']}") is None, "the stopped attempt never reached its failure"


# --- dependencies --------------------------------------------------------------------------------

def test_a_dependent_job_runs_only_after_its_dependency_completed(svc):
    first = queue(svc, "burst", {"count": 1, "pause": 1})
    second = queue_character(svc.url, svc.headers(), name="Second", dependsOn=[first["jobId"]])
    assert snapshot(svc, second)["waitingFor"] == [first["jobId"]]
    waited = updates(read_stream(svc.url + second["streamUrl"], timeout=30))
    done = snapshot(svc, first)
    assert done["status"] == "completed" and waited[-1]["status"] == "completed"
    assert waited[0]["status"] == "pending" and waited[0]["waitingFor"] == [first["jobId"]]
    active = [e for e in waited if e["status"] == "active"]
    assert active and active[0]["updatedAt"] > done["updatedAt"], "active only after the dependency completed"
    assert all(e["waitingFor"] is None for e in active)


def test_a_job_depending_on_a_failed_job_fails_naming_it(svc):
    broken = queue(svc, "media", {"characterId": "f" * 32, "kind": "image"})
    dependent = queue_character(svc.url, svc.headers(), dependsOn=[broken["jobId"]])
    final = updates(read_stream(svc.url + dependent["streamUrl"], timeout=30))[-1]
    assert final["status"] == "failed" and broken["jobId"] in final["failedReason"]
    assert snapshot(svc, broken)["status"] == "failed"
    conn = redis.Redis.from_url(svc.redis_server.url)
    assert conn.hget(f"rq:job:{dependent['jobId']}", "status") == b"failed", "failed RQ's way too"


def test_depending_on_another_users_job_is_404(svc):
    foreign = queue_character(svc.url, svc.headers("bob"))
    response = httpx.post(f"{svc.url}/api/v1/characters/queue", headers=svc.headers(),
                          json={"name": "Thief", "age": 3, "dependsOn": [foreign["jobId"]]})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- schedules -----------------------------------------------------------------------------------

def test_a_delayed_job_shows_when_it_is_due_and_starts_no_earlier(svc):
    job = queue_character(svc.url, svc.headers(), delaySeconds=3)
    due = snapshot(svc, job)["scheduledFor"]
    assert due is not None
    events = updates(read_stream(svc.url + job["streamUrl"], timeout=30))
    assert events[0]["status"] == "pending" and events[0]["scheduledFor"] == due
    active = [e for e in events if e["status"] == "active"]
    assert active and active[0]["updatedAt"] >= due and events[-1]["status"] == "completed"


@pytest.mark.parametrize("body", [{"runAt": "2030-01-01T00:00:00"}, {"runAt": "soon"}, {"delaySeconds": -1},
                                  {"delaySeconds": 8 * 86400}, {"delaySeconds": 1, "runAt": "2030-01-01T00:00:00Z"}])
def test_bad_schedules_are_400(svc, body):
    response = httpx.post(f"{svc.url}/api/v1/characters/queue", headers=svc.headers(),
                          json={"name": "Later", "age": 3, **body})
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


# --- place in line -------------------------------------------------------------------------------

def test_queued_jobs_count_down_their_place_in_line(service):
    svc = service(workers=0, JOBAPP_JOBS=JOBS, POSITION_INTERVAL_SECONDS="0.3")
    jobs = [queue(svc, "burst", {"count": 1, "pause": 0.3}) for _ in range(5)]
    assert [snapshot(svc, j)["position"] for j in jobs] == [1, 2, 3, 4, 5]
    seen: list = []

    def active(events) -> bool:
        seen[:] = [e for _, e in events if e["type"] == "job_update"]
        return seen[-1]["status"] != "pending"

    worker = WorkerProcess(svc.env, svc.log_dir)
    try:
        read_stream(svc.url + jobs[-1]["streamUrl"], timeout=40, stop=active)
    finally:
        worker.stop()
    places = [e["position"] for e in seen if e["status"] == "pending"]
    assert places[0] == 5 and places[-1] == 1, places
    assert places == sorted(places, reverse=True) and len(places) == len(set(places)), "counts down, no repeats"


# --- log lines -----------------------------------------------------------------------------------

def test_a_burst_of_log_lines_arrives_complete_in_order_and_resumes_exactly(svc):
    job = queue(svc, "burst", {"count": 1000})
    stream = read_stream(svc.url + job["streamUrl"], timeout=40)
    expected = [f"line {n}" for n in range(1, 1001)]
    batches = log_events(stream)
    assert lines_of(stream) == expected and stream.ended
    assert len(batches) <= 40, f"batched: {len(batches)} events for 1,000 lines"
    assert all(e["seq"] == int(e["lines"][-1].split()[1]) and e["dropped"] == 0 for _, e in batches)
    ids = [i for i, _ in stream.events]
    assert ids == sorted(set(ids))

    middle_id, middle = batches[len(batches) // 2]
    resumed = read_stream(svc.url + job["streamUrl"], {"Last-Event-ID": str(middle_id)}, timeout=20)
    assert lines_of(resumed) == expected[middle["seq"]:], "exactly the lines after that event"
    assert updates(resumed)[-1]["status"] == "completed"

    after = read_stream(svc.url + job["streamUrl"], timeout=20)
    assert lines_of(after) == expected and after.events[-1][1]["status"] == "completed"
    assert after.events[-1][0] == stream.events[-1][0], "the final event keeps its id"
    done = httpx.get(svc.url + job["streamUrl"], headers={"Last-Event-ID": str(after.events[-1][0])})
    assert done.status_code == 204
    kept = snapshot(svc, job, log=True)["log"]
    assert kept == {"lines": expected, "seq": 1000, "dropped": 0}


def test_past_the_cap_the_oldest_lines_are_dropped_and_reported(svc):
    job = queue(svc, "burst", {"count": 1200})
    read_stream(svc.url + job["streamUrl"], timeout=40)
    after = read_stream(svc.url + job["streamUrl"], timeout=20)
    assert lines_of(after) == [f"line {n}" for n in range(201, 1201)], "JOB_LOG_MAX_LINES=1000 keeps the newest"
    assert {e["dropped"] for _, e in log_events(after)} == {200}
    kept = snapshot(svc, job, log=True)["log"]
    assert kept["seq"] == 1200 and kept["dropped"] == 200 and len(kept["lines"]) == 1000
