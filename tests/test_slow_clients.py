"""Slow clients at the door: thousands of connections that send half a request line and stop must not
starve real requests, and the server must close them (gunicorn's gevent worker gives each request head
``keepalive`` seconds; ``worker_connections`` caps how many there can be)."""

from __future__ import annotations

import socket
import time

from tests.sse_client import half_open, queue_character, read_stream

HALF_OPEN = 2000


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_half_open_connections_do_not_starve_real_clients_and_are_closed(service):
    svc = service(GUNICORN_KEEPALIVE="5")
    socks = half_open(svc.url, HALF_OPEN)
    try:
        for i in range(3):  # a normal client meanwhile: queue, stream to the end, read the snapshot
            job = queue_character(svc.url, svc.headers(), name=f"Beside{i}")
            stream = read_stream(f"{svc.url}/api/v1/sse/jobs/character/{job['jobId']}", svc.headers(), timeout=30)
            assert stream.ended and stream.events[-1][1]["status"] == "completed"
        # The server drops every half-sent request after GUNICORN_KEEPALIVE seconds.
        deadline = time.monotonic() + 60
        for sock in socks:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            assert closed_by_server(sock), "a half-open connection outlived the request-head timeout"
        assert queue_character(svc.url, svc.headers())["status"] == "pending"
    finally:
        for sock in socks:
            sock.close()
