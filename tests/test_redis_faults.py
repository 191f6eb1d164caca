"""A Redis that stalls (SIGSTOP) or fills up, with the real parts: refuse fast, keep streams open,
lose and half-write nothing, recover without a restart."""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from jobapp import keys
from tests.sse_client import queue_character, raw_stream, read_stream, read_until

STREAMS_PER_JOB = 125


def path(job: dict) -> str:
    return f"/api/v1/sse/jobs/{job['type']}/{job['jobId']}"


class Opened:
    """A raw stream socket and what was read from it so far."""

    def __init__(self, sock: socket.socket, received: bytes) -> None:
        self.sock, self.received = sock, received


def open_streams(base: str, paths: list[str], headers: dict, batch: int = 50) -> list[Opened]:
    """Open streams a batch at a time (each batch's first events read before the next opens)."""
    streams: list[Opened] = []
    for start in range(0, len(paths), batch):
        socks = [raw_stream(base, p, headers, timeout=90) for p in paths[start:start + batch]]
        streams += [Opened(sock, read_until(sock, b"data: ")) for sock in socks]
    return streams


def final_status(stream: Opened) -> str:
    """Read a raw stream to its end (the last chunk; the connection itself stays open for keep-alive);
    the status of its last event."""
    sock, received = stream.sock, stream.received
    while not received.endswith(b"\r\n0\r\n\r\n"):
        data = sock.recv(65536)
        if not data:
            break
        received += data
    sock.close()
    events = [json.loads(line[6:]) for line in received.decode().splitlines() if line.startswith("data: ")]
    events = [e for e in events if e["type"] == "job_update"]  # job_log lines carry no status
    return events[-1]["status"] if events else f"no event in {received[-300:]!r}"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def server_ms(log: str, method: str, route: str, status: int) -> list[int]:
    """Durations (ms) the web process logged for ``method route`` answered ``status`` (the access log's %(M)s)."""
    found = []
    for line in log.splitlines():
        if line.startswith("{") and f'"{method} {route}' in line:
            match = re.search(r'" (\d{3}) \S+ (\d+)ms', json.loads(line).get("message", ""))
            if match:
                found.append((int(match.group(1)), int(match.group(2))))
    return [ms for code, ms in found if code == status]


def job_keys_consistent(conn: redis.Redis) -> set[str]:
    """Every RQ job has its state record and its owner's index entry (nothing half-written); their ids."""
    ids = {k.decode().split(":", 2)[2] for k in conn.scan_iter("rq:job:*") if k.count(b":") == 2}
    for job_id in ids:
        stored = conn.get(keys.job_state(job_id))
        assert stored, f"job {job_id} has no state record"
        owner = json.loads(stored)["owner"]
        assert conn.zscore(keys.user_jobs(owner), job_id) is not None, f"job {job_id} is not in its owner's index"
    return ids


def test_a_stalled_redis_is_refused_fast_streams_survive_and_nothing_is_half_written(service):
    svc = service(JOB_STEP_SECONDS="1", SSE_HEARTBEAT_SECONDS="1")
    headers = svc.headers()
    jobs = [queue_character(svc.url, headers, name=f"Stall{i}") for i in range(4)]
    socks = open_streams(svc.url, [path(job) for job in jobs for _ in range(STREAMS_PER_JOB)], headers)
    conn = redis.Redis.from_url(svc.redis_server.url)
    before = job_keys_consistent(conn)
    unfinished = [j for j in jobs if json.loads(conn.get(keys.job_state(j["jobId"])))["event"]["status"]
                  in ("pending", "active")]
    assert unfinished, "some streams must still be waiting for their job when Redis stalls"

    svc.redis_server.process.send_signal(signal.SIGSTOP)  # the socket accepts; nothing answers
    try:
        def queue(i: int) -> tuple[int, dict, float]:
            started = time.monotonic()
            answer = httpx.post(f"{svc.url}/api/v1/characters/queue", json={"name": f"Refused{i}", "age": 1},
                                headers=headers, timeout=30)
            return answer.status_code, answer.json(), time.monotonic() - started

        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(queue, range(100)))
        assert {status for status, _, _ in answers} == {503}, answers[:3]
        for _, body, _ in answers:
            assert body["error"]["code"] == "unavailable" and "nothing was queued" in body["error"]["message"]

        job = jobs[1]
        for method, route in (("GET", f"/api/v1/jobs/character/{job['jobId']}"), ("GET", "/api/v1/jobs"),
                              ("POST", f"/api/v1/jobs/character/{job['jobId']}/cancel"),
                              ("GET", f"/api/v1/characters/{'0' * 32}"), ("GET", path(job))):
            answer = httpx.request(method, svc.url + route, headers=headers, timeout=30)
            assert answer.status_code == 503, (route, answer.text)
            assert "nothing was queued or changed" in answer.json()["error"]["message"]
        ready = httpx.get(f"{svc.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        assert httpx.get(f"{svc.url}/healthz", timeout=30).status_code == 200
        # The web process's own clock for each refusal. Only the requests already waiting when the one
        # timeout (0.5 s) fires pay it; the breaker answers the rest at once, so nine in ten take well
        # under a second (without the breaker every request would pay at least one timeout, 15 s in
        # all before). The bound on the slowest is loose only because this shared machine stalls the
        # process now and then (5.3 s seen once in a full suite run; 0.7-1.3 s alone).
        refused = sorted(server_ms(svc.web.log(), "POST", "/api/v1/characters/queue", 503))
        assert len(refused) == 100, refused
        slowest_at_client = max(seconds for _, _, seconds in answers)  # includes this loaded client's own delays
        assert refused[89] < 1000 and refused[-1] < 10000, (refused[-12:], slowest_at_client)
        # Streams of unfinished jobs stay open meanwhile: heartbeats keep coming.
        waiting = {j["jobId"] for j in unfinished}
        for index in range(0, len(socks), 25):
            if jobs[index // STREAMS_PER_JOB]["jobId"] in waiting:
                socks[index].received += read_until(socks[index].sock, b": keep-alive")
    finally:
        svc.redis_server.process.send_signal(signal.SIGCONT)

    statuses = [final_status(sock) for sock in socks]
    assert statuses == ["completed"] * len(socks), {s for s in statuses if s != "completed"}
    assert job_keys_consistent(conn) == before, "a refused request left a job behind"
    assert conn.llen("rq:queue:character") == 0
    again = wait_for(lambda: httpx.get(f"{svc.url}/readyz").status_code == 200, 10, "ready again")
    assert again
    assert queue_character(svc.url, headers)["status"] == "pending"


def fill(conn: redis.Redis) -> int:
    """Fill Redis: 5 MB of filler, then ``maxmemory`` set 1 MB below what it holds (noeviction), so
    every write is refused until the filler goes; the number of filler keys."""
    for i in range(50):
        conn.set(f"filler:{i}", b"x" * 100_000)
    conn.config_set("maxmemory-policy", "noeviction")
    conn.config_set("maxmemory", conn.info("memory")["used_memory"] - 1_000_000)
    try:
        conn.set("filler:probe", b"x")
        raise AssertionError("Redis still takes writes")
    except redis.exceptions.OutOfMemoryError:
        return 50


def test_a_full_redis_refuses_new_jobs_writes_nothing_keeps_streams_and_recovers(service):
    from tests.support import WorkerProcess
    svc = service(workers=0)
    headers = svc.headers()
    characters = WorkerProcess(svc.env, svc.log_dir, queues=("character",))
    media = None
    try:
        done = queue_character(svc.url, headers, name="Before")
        final = read_stream(svc.url + path(done), headers, timeout=30).events[-1][1]
        assert final["status"] == "completed"
        waiting = httpx.post(f"{svc.url}/api/v1/media/queue", headers=headers, timeout=10,
                             json={"characterId": final["result"]["characterId"], "kind": "image"}).json()["data"]
        sock = raw_stream(svc.url, path(waiting), headers, timeout=60)  # opened before Redis fills
        early = Opened(sock, read_until(sock, b'"pending"'))

        conn = redis.Redis.from_url(svc.redis_server.url)
        filler = fill(conn)
        keys_before = conn.dbsize()
        for _ in range(3):
            refused = httpx.post(f"{svc.url}/api/v1/characters/queue", json={"name": "Full", "age": 1},
                                 headers=headers, timeout=10)
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "store_full" and "full" in error["message"]
            assert "nothing was queued" in error["message"]
        assert conn.dbsize() == keys_before, "a refused request wrote something"
        assert conn.llen("rq:queue:character") == 0
        # Existing jobs stay readable and watchable.
        snapshot = httpx.get(f"{svc.url}/api/v1/jobs/character/{done['jobId']}", headers=headers, timeout=10)
        assert snapshot.status_code == 200 and snapshot.json()["data"]["status"] == "completed"
        replay = read_stream(svc.url + path(done), headers, timeout=15)
        assert replay.ended and replay.events[-1][1]["status"] == "completed"
        sock = raw_stream(svc.url, path(waiting), headers, timeout=60)  # opened while Redis is full
        late = Opened(sock, read_until(sock, b'"pending"'))
        ready = httpx.get(f"{svc.url}/readyz", timeout=10).json()
        assert ready["full"] is True and any("full" in w for w in ready["warnings"])

        conn.delete(*[f"filler:{i}" for i in range(filler)])  # memory frees; no restart
        again = wait_for(lambda: httpx.post(f"{svc.url}/api/v1/characters/queue", json={"name": "After", "age": 1},
                                            headers=headers, timeout=10), 10, "a queue request after recovery")
        assert again.status_code == 202, again.text
        media = WorkerProcess(svc.env, svc.log_dir, queues=("media",))
        assert final_status(early) == "completed" and final_status(late) == "completed"
    finally:
        characters.stop()
        if media:
            media.stop()


def test_an_evicting_memory_policy_is_warned_about_at_start_and_on_readyz(caplog):
    from jobapp import create_app
    from jobapp.config import Config
    from jobapp.devredis import RedisServer
    from tests.support import SECRET
    server = RedisServer().start()
    try:
        redis.Redis(port=server.port).config_set("maxmemory-policy", "allkeys-lru")
        logger = logging.getLogger("jobapp.health")  # jobapp's JSON logging replaces the root's handlers
        logger.addHandler(caplog.handler)
        try:
            app = create_app(Config.from_env({}, REDIS_URL=server.url, JWT_SECRET_KEY=SECRET))
        finally:
            logger.removeHandler(caplog.handler)
        assert any("allkeys-lru" in r.getMessage() and "vanish" in r.getMessage() for r in caplog.records)
        ready = app.test_client().get("/readyz")
        body = ready.get_json()
        assert ready.status_code == 200 and body["evicts"] is True and body["maxmemoryPolicy"] == "allkeys-lru"
        assert any("noeviction" in w for w in body["warnings"])
        redis.Redis(port=server.port).config_set("maxmemory-policy", "noeviction")
        body = app.test_client().get("/readyz").get_json()
        assert body["evicts"] is False and body["warnings"] == []
    finally:
        server.stop()


def test_redis_settings_are_validated():
    import pytest
    from jobapp.config import Config, ConfigError
    config = Config.from_env({"REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380", "REDIS_WAIT_REPLICAS": "1"})
    assert config.REDIS_SENTINELS == ["10.0.0.1:26379", "sentinel-b:26380"]
    for bad in ({"REDIS_SENTINELS": "10.0.0.1"}, {"REDIS_SENTINELS": "host:port"}, {"REDIS_WAIT_REPLICAS": "-1"},
                {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "500"}, {"REDIS_SOCKET_TIMEOUT": "0"}):
        with pytest.raises(ConfigError):
            Config.from_env(bad)
