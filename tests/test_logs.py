"""Structured logs: JSON lines, the request id on a request's lines, the job id on a job's lines."""

import json
import time

import httpx

from tests.sse_client import queue_character, read_stream
from tests.support import wait_until


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        parsed.append(json.loads(line))  # every line is one JSON object
    return parsed


def test_web_logs_are_json_with_the_request_id(live):
    response = httpx.post(f"{live.url}/api/v1/characters/queue", json={"name": "Logged", "age": 5},
                          headers={**live.headers(), "X-Request-ID": "req-test-0123456789"})
    assert response.headers["X-Request-ID"] == "req-test-0123456789"
    generated = httpx.get(f"{live.url}/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    wait_until(lambda: f"request_id={generated}" in live.web.log(), 30, "the access log lines")
    records = json_lines(live.web.log())
    access = [r for r in records if r.get("logger") == "gunicorn.access"]
    assert any("request_id=req-test-0123456789" in r["message"] and "/api/v1/characters/queue" in r["message"]
               for r in access)
    assert any(f"request_id={generated}" in r["message"] for r in access)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_worker_logs_are_json_with_the_job_id(live):
    job = queue_character(live.url, live.headers(), name="JobLogged")
    read_stream(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers())
    wait_until(lambda: job["jobId"] in live.worker.log(), 30, "the worker's lines about the job")
    records = json_lines(live.worker.log())
    assert any(r.get("job_id") == job["jobId"] for r in records), "job logs carry the job id"
