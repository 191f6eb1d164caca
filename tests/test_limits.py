"""Abuse limits that hold across web processes, and secrets that stay out of logs and errors."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import uuid

from jobapp import create_app
from jobapp.config import Config
from jobapp.ratelimit import RateLimit

from tests.sse_client import queue_character, raw_stream
from tests.support import SECRET, WebServer, make_token

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
        assert 0 < int(limited.headers["Retry-After"]) <= 120  # at most the window and a share of the next
        assert limited.headers["X-RateLimit-Limit"] == "3" and limited.headers["X-RateLimit-Remaining"] == "0"
        assert httpx.post(f"{svc.url}/api/v1/characters/queue", json=BODY, headers=svc.headers("bob")).status_code == 202
    finally:
        other.stop()


def test_unauthenticated_queue_requests_answer_401_and_are_never_counted(redis_server):
    app = create_app(Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET, RATE_LIMIT_QUEUE="3/minute"))
    client = app.test_client()
    user = f"counted-{uuid.uuid4().hex}"
    bad = [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {make_token(user, ttl=-60)}"}]
    codes = [client.post("/api/v1/characters/queue", json=BODY, headers=bad[i % 3]).status_code for i in range(6)]
    assert codes == [401] * 6
    ok = client.post("/api/v1/characters/queue", json=BODY, headers={"Authorization": f"Bearer {make_token(user)}"})
    assert ok.status_code == 202, "the refused requests used none of the user's limit"
    assert ok.headers["X-RateLimit-Limit"] == "3" and ok.headers["X-RateLimit-Remaining"] == "2"


def test_sliding_window_counts_every_limit_at_once_and_refusals_cost_nothing(redis_conn):
    limit = RateLimit("2/second;3/minute", redis_conn)
    user = uuid.uuid4().hex
    verdicts = [limit.check(redis_conn, "test", user) for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[2].retry_after >= 1 and verdicts[2].headers()["Retry-After"] == str(verdicts[2].retry_after)
    deadline = time.monotonic() + 10  # the per-second limit frees a place within about two seconds
    while not (third := limit.check(redis_conn, "test", user)).allowed:
        assert time.monotonic() < deadline, "the per-second limit never let a request through"
        time.sleep(0.1)
    assert third.limit == 3 and third.remaining == 0, "the minute limit counted only the three allowed requests"
    refused = limit.check(redis_conn, "test", user)
    assert not refused.allowed and 1 <= refused.retry_after <= 120
    assert limit.check(redis_conn, "test", "someone-else").allowed, "limits are per user"


def test_malformed_rate_limit_setting_stops_the_app(redis_server):
    with pytest.raises(ValueError):
        create_app(Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET, RATE_LIMIT_QUEUE="lots"))


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


def test_writes_counted_with_the_limit_are_all_or_nothing_and_never_made_after_a_stall():
    """``RateLimit.apply`` (the queue route's one round trip): the writes are made only if the limit
    allows, and a script that reaches a stalled Redis after its client gave up does nothing."""
    import signal

    import redis as redis_py

    from jobapp.devredis import RedisServer
    from jobapp.redisconn import connect

    server = RedisServer().start()
    try:
        web = connect(Config.from_env({}, REDIS_URL=server.url, JWT_SECRET_KEY=SECRET, REDIS_SOCKET_TIMEOUT=0.3))
        plain = redis_py.Redis.from_url(server.url)
        limit = RateLimit("2/minute", web)
        user = uuid.uuid4().hex
        assert limit.apply(web, "test", user, [("SET", "first", "1"), ("RPUSH", "list", "a")]).allowed
        assert plain.get("first") == b"1" and plain.lrange("list", 0, -1) == [b"a"]

        limit._offset_ms -= 3_600_000  # a wrong clock estimate: the script runs "late" though answered in time
        assert limit.apply(web, "test", user, [("RPUSH", "list", "b")]).remaining == 0
        assert plain.lrange("list", 0, -1) == [b"a", b"b"], "retried once with the corrected clock, written once"

        refused = limit.apply(web, "test", user, [("SET", "refused", "1")])
        assert not refused.allowed and plain.exists("refused") == 0

        other = uuid.uuid4().hex
        server.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(redis_py.RedisError):
                limit.apply(web, "test", other, [("SET", "stalled", "1")])
        finally:
            server.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while True:  # the script sent into the stalled Redis has run by the time a later command answers
            try:
                plain.ping()
                break
            except redis_py.RedisError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert plain.exists("stalled") == 0, "a script that arrived after its client gave up wrote"
        assert plain.exists(f"jobapp:ratelimit:test:{other}") == 0, "nor counted"
    finally:
        server.stop()
