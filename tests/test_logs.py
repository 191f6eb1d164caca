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


def test_log_format_follows_jobapp_env_unless_set():
    from jobapp.logs import log_format
    assert log_format({}) == "human"
    assert log_format({"JOBAPP_ENV": "development"}) == "human"
    assert log_format({"JOBAPP_ENV": "production"}) == "json"
    assert log_format({"JOBAPP_ENV": "production", "LOG_FORMAT": "human"}) == "human"
    assert log_format({"LOG_FORMAT": "json"}) == "json"


def test_development_logs_are_aligned_human_lines_with_the_request_id(live):
    """``make run``'s console: JOBAPP_ENV unset and no LOG_FORMAT, as a newcomer starts it."""
    import re

    from tests.support import WebServer

    env = {k: v for k, v in live.env.items() if k != "LOG_FORMAT"}
    web = WebServer(env, live.log_dir)
    try:
        assert httpx.get(f"{web.url}/healthz", headers={"X-Request-ID": "human-req-0123456789"}).status_code == 200
        line_shape = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +.{20} \[.{8}\] \S")
        deadline = time.monotonic() + 15
        while "request_id=human-req-0123456789" not in web.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [line for line in web.log().splitlines() if line.strip()]
        access = [line for line in lines if "request_id=human-req-0123456789" in line]
        assert access, web.log()
        assert all(line_shape.match(line) for line in lines), web.log()
        assert "gunicorn.access" in access[0] and "/healthz" in access[0]
        assert "[human-re]" in access[0], "the request id's first 8 characters in the id column"
        assert not any(line.startswith("{") for line in lines), "no JSON lines in development"
        starts = {line.index("[") for line in lines}
        assert len(starts) == 1, "the id column starts at the same place on every line"
    finally:
        web.stop()
