"""Sentinel failover under load, with the real parts: a primary, a replica, three sentinels, a web
process and two workers that find the primary through Sentinel; the primary is SIGKILLed mid-load."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from jobapp.devredis import free_port
from tests.redis_ha import MASTER, Sentinels
from tests.support import WebServer, WorkerProcess, base_env, make_token
from tests.test_redis_faults import final_status, open_streams, path, wait_for

STREAM_JOBS, STREAMS_PER_JOB = 10, 10


class Load:
    """Queue a job every ``interval`` seconds from a thread, recording every answer."""

    def __init__(self, url: str, headers: dict, interval: float = 0.25) -> None:
        self.url, self.headers, self.interval = url, headers, interval
        self.answers: list[tuple[float, int, dict]] = []  # (monotonic time, status, body)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                answer = httpx.post(f"{self.url}/api/v1/characters/queue", json={"name": f"Load{n}", "age": n},
                                    headers=self.headers, timeout=30)
                self.answers.append((time.monotonic(), answer.status_code, answer.json()))
            except httpx.HTTPError as exc:
                self.answers.append((time.monotonic(), 0, {"error": repr(exc)}))
            self._stop.wait(self.interval)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)


def watch_announcement(ha: Sentinels, before: tuple[str, int], seen: dict) -> threading.Thread:
    """Record when a sentinel first names a new primary."""
    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "at" not in seen:
            try:
                if ha.primary_address() != before:
                    seen["at"] = time.monotonic()
            except RuntimeError:
                pass
            time.sleep(0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def sentinel_service(artifacts):
    ha = Sentinels().start()
    env = base_env(f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there: only Sentinel may name the primary
                   REDIS_SENTINELS=ha.setting, REDIS_SENTINEL_MASTER=MASTER, REDIS_WAIT_REPLICAS="1",
                   REDIS_WAIT_TIMEOUT_MS="200", JOB_STEP_SECONDS="0.1", WORKER_HEARTBEAT_SECONDS="1",
                   DEAD_WORKER_SECONDS="3", RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="dashboard-pass")
    web = WebServer(env, artifacts)
    workers = [WorkerProcess(env, artifacts) for _ in range(2)]
    yield ha, web, workers
    web.stop()
    for worker in workers:
        worker.stop()
    ha.stop()


def test_a_failover_under_load_loses_no_acknowledged_job_and_every_stream_ends_true(sentinel_service):
    ha, web, workers = sentinel_service
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    jobs = []
    for i in range(STREAM_JOBS):
        answer = httpx.post(f"{web.url}/api/v1/characters/queue", json={"name": f"Watched{i}", "age": i},
                            headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        jobs.append(answer.json()["data"])
    started = time.monotonic()
    socks = open_streams(web.url, [path(job) for job in jobs for _ in range(STREAMS_PER_JOB)], headers)
    old_primary = ha.primary_address()
    announced: dict = {}
    with Load(web.url, headers) as load:
        wait_for(lambda: len(load.answers) >= 4, 30, "some load before the kill")
        watcher = watch_announcement(ha, old_primary, announced)
        ha.primary.process.kill()  # SIGKILL: no goodbye to anyone
        killed = time.monotonic()
        wait_for(lambda: any(t > killed and s != 202 for t, s, _ in load.answers), 30, "a refusal after the kill")
        wait_for(lambda: "at" in announced, 60, "Sentinel to announce a new primary")
        wait_for(lambda: any(t > announced["at"] and s == 202 for t, s, _ in load.answers), 30,
                 "a queue request to succeed on the new primary")
    watcher.join(5)
    recovered = min(t for t, s, _ in load.answers if t > announced["at"] and s == 202)
    print(f"\nfailover: refused for {recovered - killed:.1f}s after the kill; "
          f"queueing again {recovered - announced['at']:.1f}s after Sentinel announced the new primary")
    assert recovered - announced["at"] < 15
    for _, status, body in load.answers:
        assert status in (202, 503), body
        if status == 503:
            assert body["error"]["code"] == "unavailable" and "nothing was queued" in body["error"]["message"]

    acknowledged = [body["data"]["jobId"] for _, status, body in load.answers if status == 202]
    acknowledged += [job["jobId"] for job in jobs]

    def final_states() -> dict:
        found = {}
        for job_id in acknowledged:
            answer = httpx.get(f"{web.url}/api/v1/jobs/character/{job_id}", headers=headers, timeout=10)
            found[job_id] = answer.json()["data"]["status"] if answer.status_code == 200 else answer.status_code
        return found

    states = wait_for(lambda: (s := final_states()) and all(v in ("completed", "failed", 404) for v in s.values()) and s,
                      90, "every acknowledged job to finish (workers carry on)")
    print(f"phases: load and failover {recovered - started:.1f}s, all jobs finished {time.monotonic() - started:.1f}s")
    lost = [job_id for job_id, status in states.items() if status == 404]
    print(f"failover with REDIS_WAIT_REPLICAS=1: {len(acknowledged)} acknowledged, {len(lost)} lost")
    assert lost == [], "a job whose 202 was sent is gone"
    for index, sock in enumerate(socks):
        job_id = jobs[index // STREAMS_PER_JOB]["jobId"]
        assert final_status(sock) == states[job_id], f"stream of {job_id} ended on another state"
    dashboard = httpx.get(f"{web.url}/rq/0/data/queues.json", auth=("ops", "dashboard-pass"), timeout=10)
    assert dashboard.status_code == 200 and "character" in {q["name"] for q in dashboard.json()["queues"]}
    assert httpx.get(f"{web.url}/readyz", timeout=10).status_code == 200
