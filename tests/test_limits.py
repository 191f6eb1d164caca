"""Abuse limits that hold across web processes, and secrets that stay out of logs and errors."""

from __future__ import annotations

import socket
import time

import httpx

from tests.sse_client import queue_character, raw_stream
from tests.support import WebServer, make_token

BODY = {"name": "Aria", "age": 3}


def test_queue_rate_limit_is_per_user_and_shared_by_web_processes(service):
    svc = service(workers=0, RATE_LIMIT_QUEUE="3/minute")
    other = WebServer(svc.env, svc.log_dir)
    try:
        codes = [httpx.post(f"{url}/api/v1/characters/queue", json=BODY, headers=svc.headers("alice")).status_code
                 for url in (svc.url, other.url, svc.url)]
        assert codes == [202, 202, 202]
        limited = httpx.post(f"{other.url}/api/v1/characters/queue", json=BODY, headers=svc.headers("alice"))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0
        assert httpx.post(f"{svc.url}/api/v1/characters/queue", json=BODY, headers=svc.headers("bob")).status_code == 202
    finally:
        other.stop()


def open_stream(url: str, job: dict, headers: dict) -> tuple[socket.socket, bytes]:
    sock = raw_stream(url, f"/api/v1/sse/jobs/character/{job['jobId']}", headers, timeout=10)
    head = sock.recv(65536)
    return sock, head


def test_open_streams_per_user_are_capped_across_web_processes(service):
    svc = service(workers=0, MAX_STREAMS_PER_USER="2")
    other = WebServer(svc.env, svc.log_dir)
    try:
        job = queue_character(svc.url, svc.headers())
        first, head1 = open_stream(svc.url, job, svc.headers())
        second, head2 = open_stream(other.url, job, svc.headers())
        assert b" 200 " in head1.split(b"\r\n")[0] and b" 200 " in head2.split(b"\r\n")[0]
        third = httpx.get(f"{svc.url}/api/v1/sse/jobs/character/{job['jobId']}", headers=svc.headers())
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"
        assert "Retry-After" in third.headers
        bob_job = queue_character(svc.url, svc.headers("bob"))
        bob, head = open_stream(other.url, bob_job, svc.headers("bob"))
        assert b" 200 " in head.split(b"\r\n")[0], "another user is not affected"
        first.close()
        deadline = time.monotonic() + 10  # the server notices at its next heartbeat write
        while time.monotonic() < deadline:
            with httpx.stream("GET", f"{svc.url}/api/v1/sse/jobs/character/{job['jobId']}", headers=svc.headers()) as again:
                if again.status_code == 200:
                    break
            time.sleep(0.3)
        assert again.status_code == 200, "a closed stream frees its place"
        second.close()
        bob.close()
    finally:
        other.stop()


def test_tokens_in_urls_never_reach_the_logs(live):
    job = queue_character(live.url, live.headers())
    stream_token = job["streamUrl"].split("token=")[1]
    access_token = make_token("alice")
    httpx.get(live.url + job["streamUrl"], timeout=10)
    httpx.get(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}?token={access_token}")
    httpx.get(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}?token=garbage.{stream_token[:20]}")
    time.sleep(0.5)
    log = live.web.log()
    assert f"/api/v1/sse/jobs/character/{job['jobId']}" in log, "requests are logged"
    for secret in (stream_token, access_token, stream_token[:20], "token="):
        assert secret not in log


def test_errors_never_leak_internals(client, auth):
    responses = [
        client.get("/api/v1/jobs/character/%00", headers=auth()),
        client.post("/api/v1/characters/queue", data=b"\xff\xfe", headers={**auth(), "Content-Type": "application/json"}),
        client.get("/api/v1/jobs/character/x", headers={"Authorization": "Bearer x.y.z"}),
    ]
    for response in responses:
        text = response.get_data(as_text=True)
        assert response.status_code < 500 and response.is_json
        for leak in ("Traceback", "redis://", "File \"", "dev-only-secret"):
            assert leak not in text
