"""Idle streams wait parked, with no greenlet each (jobapp/sseworker.py), and still do all a stream does:
heartbeats, news, the terminal event, closing, and freeing their place under the per-user cap."""

from __future__ import annotations

import socket
import struct

import httpx
import pytest

from tests.sse_client import queue_character, raw_stream, read_until
from tests.support import wait_until
from tests.test_hub import metric, run_probe

STREAMS = 40


def status_of(url: str) -> int:
    """A stream request's status, without reading its body (a 200 stream never ends by itself)."""
    with httpx.stream("GET", url, timeout=10) as response:
        return response.status_code


def read_to_end(sock) -> bytes:
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


def test_idle_streams_hold_no_greenlet_yet_heartbeat_wake_end_and_free_their_place(service):
    svc = service(workers=0, SSE_HEARTBEAT_SECONDS="0.5", MAX_STREAMS_PER_USER=str(STREAMS))
    headers = svc.headers()
    job = queue_character(svc.url, headers)
    socks = [raw_stream(svc.url, job["streamUrl"], {}, timeout=30)]
    try:
        read_until(socks[0], b"data: ")  # the hub's and the cap's greenlets are up
        before = metric(svc.url, "jobapp_process_greenlets")
        socks += [raw_stream(svc.url, job["streamUrl"], {}, timeout=30) for _ in range(STREAMS - 1)]
        for sock in socks[1:]:
            read_until(sock, b"data: ")
        wait_until(lambda: metric(svc.url, "jobapp_open_streams") == STREAMS, what="every stream counted open")
        # Each stream waits parked: the process holds about as many greenlets as before they opened.
        parked = metric(svc.url, "jobapp_process_greenlets")
        assert parked < before + STREAMS / 4, (before, parked)
        assert status_of(f"{svc.url}{job['streamUrl']}") == 429, "the cap counts parked streams"
        for sock in socks:  # a parked stream still sends its heartbeats
            read_until(sock, b": keep-alive\n")

        cancel = httpx.post(f"{svc.url}/api/v1/jobs/character/{job['jobId']}/cancel", headers=headers, timeout=10)
        assert cancel.status_code < 300, cancel.text
        for sock in socks:  # news wakes each one: the terminal event, the last chunk, the connection closed
            rest = read_to_end(sock)
            assert b'"status":"canceled"' in rest and rest.endswith(b"0\r\n\r\n"), rest[-300:]
    finally:
        for sock in socks:
            sock.close()

    wait_until(lambda: metric(svc.url, "jobapp_open_streams") == 0, what="every stream closed")
    other = queue_character(svc.url, headers)
    wait_until(lambda: status_of(f"{svc.url}{other['streamUrl']}") == 200, what="the cap's places freed")


def test_news_steps_a_parked_stream_in_the_hub_and_only_a_wait_takes_a_greenlet():
    seen = run_probe("step_probe", "", 60)
    assert seen["parked_at_first"]
    assert seen["first"] == "B\r\nnews ['A']\n\r\n", "the frame, chunked as gunicorn frames it"
    assert seen["after_news"] == {"parked": 1, "greenlets": 0, "timer": True}, "parked again, no greenlet"
    assert seen["second"] == "13\r\nafter a wait ['B']\n\r\n"
    assert seen["after_blocking"] == {"parked": 1, "greenlets": 0, "timer": True}, "the greenlet parked it and ended"
    assert seen["where"] == ["hub", "greenlet", "hub", "closed in the hub"], seen["where"]
    assert seen["end"] == "0\r\n\r\n" and seen["after_end"] == {"parked": 0, "greenlets": 0}


def test_a_parked_stream_whose_client_hangs_up_ends_at_once_not_at_its_next_heartbeat(service):
    # Heartbeats two minutes apart: only the hang-up itself can end these streams within the wait below.
    svc = service(workers=0, SSE_HEARTBEAT_SECONDS="120", MAX_STREAMS_PER_USER="3")
    job = queue_character(svc.url, svc.headers())
    socks = [raw_stream(svc.url, job["streamUrl"], {}, timeout=30) for _ in range(3)]
    try:
        for sock in socks:
            read_until(sock, b"data: ")
        wait_until(lambda: metric(svc.url, "jobapp_open_streams") == 3, what="three streams open")
        assert status_of(f"{svc.url}{job['streamUrl']}") == 429, "the cap is full"
        socks[0].close()  # a plain close (FIN)
        reset = socks[1]  # and a reset (RST), as a crashed client's kernel sends
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        wait_until(lambda: metric(svc.url, "jobapp_open_streams") == 1, timeout=30,
                   what="both streams ended when their clients hung up")
        wait_until(lambda: status_of(f"{svc.url}{job['streamUrl']}") == 200, what="their places under the cap freed")
        socks[2].settimeout(2)
        with pytest.raises(socket.timeout):  # the stream whose client stayed is still open, and parked
            socks[2].recv(65536)
    finally:
        for sock in socks:
            sock.close()
