"""Clients that vanish, read half a stream or read slowly leave nothing behind on the server."""

from __future__ import annotations

import random
import socket
import time

import redis

from tests.sse_client import queue_character, raw_stream
from tests.test_hub import metric


def snapshot(svc, conn) -> dict:
    return {
        "streams": metric(svc.url, "jobapp_open_streams"),
        "watched": metric(svc.url, "jobapp_hub_watched_jobs"),
        "greenlets": metric(svc.url, "jobapp_process_greenlets"),
        "fds": metric(svc.url, "jobapp_process_open_fds"),
        "redis_clients": int(conn.info("clients")["connected_clients"]),
    }


def settle(svc, conn, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(svc, conn)
        if (now["streams"] == 0 and now["watched"] == 0) or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def test_thousands_of_vanishing_clients_leave_no_greenlets_sockets_or_registrations(service):
    svc = service(workers=0, SSE_HEARTBEAT_SECONDS="0.5")
    conn = redis.Redis.from_url(svc.redis_server.url)
    jobs = [queue_character(svc.url, svc.headers()) for _ in range(20)]
    auth = svc.headers()
    rng = random.Random(7)
    slow_readers = []

    def cycles(count: int) -> None:
        for cycle in range(count):
            sock = raw_stream(svc.url, f"/api/v1/sse/jobs/character/{jobs[cycle % len(jobs)]['jobId']}", auth)
            style = rng.random()
            if style < 0.4:
                sock.close()  # gone before reading anything
            elif style < 0.8:
                sock.recv(rng.randint(1, 200))  # half-read
                sock.close()
            elif style < 0.98:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()  # reset
            else:
                slow_readers.append(sock)  # connected, never reads

    # A first round warms up what may grow once and then stays (the hub, the bounded Redis pool);
    # a leak grows with every cycle, so the second, larger round must not add anything.
    cycles(500)
    for sock in slow_readers:
        sock.close()
    slow_readers.clear()
    baseline = settle(svc, conn)
    cycles(2000)
    during = snapshot(svc, conn)
    assert during["streams"] >= len(slow_readers)
    for sock in slow_readers:
        sock.close()

    def clean(now: dict) -> bool:
        # Redis connections live in a pool bounded by REDIS_MAX_CONNECTIONS (50) that may still grow
        # to its bound under load; every other descriptor (client sockets above all) must not grow.
        other_fds = now["fds"] - now["redis_clients"]
        return (now["streams"] == 0 and now["watched"] == 0 and now["greenlets"] <= baseline["greenlets"] + 3
                and other_fds <= baseline["fds"] - baseline["redis_clients"] + 3 and now["redis_clients"] <= 50 + 5)

    def counts() -> dict:  # closed streams are uncounted in batches, up to RELEASE_SECONDS after they close
        return conn.hgetall(next(iter(conn.scan_iter("jobapp:streams:*"))))

    deadline = time.monotonic() + 20  # a parked stream's hang-up shows at once, a busy one's at its next write
    after = snapshot(svc, conn)
    while not (clean(after) and counts() in ({}, {b"alice": b"0"})) and time.monotonic() < deadline:
        time.sleep(0.5)
        after = snapshot(svc, conn)
    assert clean(after), (baseline, after, open_fds(svc))
    assert counts() in ({}, {b"alice": b"0"}), "cap counts released"



def open_fds(svc) -> dict:
    """What the serving process holds open, for the failure message."""
    import glob
    import os

    import httpx
    text = httpx.get(f"{svc.url}/metrics").text
    pid = text.split('jobapp_process_open_fds{pid="')[1].split('"')[0]
    return {path: os.readlink(path) for path in glob.glob(f"/proc/{pid}/fd/*")}
