"""Small HTTP helpers for tests: queue a job, read an SSE stream with httpx-sse or raw chunks."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

import httpx
from httpx_sse import connect_sse
from httpx_sse._decoders import SSEDecoder  # the parser behind iter_sse, fed line by line


def queue_character(base: str, headers: dict, **body) -> dict:
    response = httpx.post(f"{base}/api/v1/characters/queue", json={"name": "Aria", "age": 30, **body},
                          headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["data"]


@dataclass
class Stream:
    status: int
    headers: dict
    events: list = field(default_factory=list)  # (id, data dict)
    retry: Optional[int] = None
    ended: bool = False  # the server closed the stream


def read_stream(url: str, headers: Optional[dict] = None, timeout: float = 15, stop=None) -> Stream:
    """Read events until the server ends the stream, ``stop(events)`` says enough, or ``timeout``
    passes. Lines are fed to httpx-sse's decoder one by one, so the heartbeat comments of a quiet
    stream let the deadline be checked."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(timeout, read=timeout)) as client:
        with connect_sse(client, "GET", url, headers=headers or {}) as source:
            result = Stream(source.response.status_code, dict(source.response.headers))
            if source.response.status_code != 200:
                source.response.read()
                return result
            decoder = SSEDecoder()
            for line in source.response.iter_lines():
                if time.monotonic() > deadline:
                    return result
                sse = decoder.decode(line.rstrip("\r\n"))
                if sse is None:
                    continue
                if sse.retry is not None:
                    result.retry = sse.retry
                if sse.data:
                    result.events.append((int(sse.id), json.loads(sse.data)))
                    if stop and stop(result.events):
                        return result
            result.ended = True
            return result


def raw_stream(base: str, path: str, headers: dict, timeout: Optional[float] = None) -> socket.socket:
    """Send ``GET path`` to ``base`` over a raw socket, as a browser would, and return the socket unread."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read until ``marker`` has arrived; a stream that closes first fails the test."""
    received = b""
    while marker not in received:
        data = sock.recv(65536)
        assert data, f"stream closed early: {received!r}"
        received += data
    return received


def raw_chunks(url: str, headers: dict, until: bytes, timeout: float = 15) -> tuple[bytes, list[bytes]]:
    """GET ``url`` over a raw socket and return (head, chunks): every HTTP chunk is one server write."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    head = f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    header_block, rest = buffer.split(b"\r\n\r\n", 1)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while b"\r\n" not in rest:
            data = sock.recv(65536)
            if not data:
                sock.close()
                return header_block, chunks
            rest += data
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(rest) < size + 2:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2:]
        if until in chunks[-1]:
            break
    sock.close()
    return header_block, chunks


def half_open(base: str, count: int) -> list[socket.socket]:
    """``count`` connections to ``base`` that each send half a request line and stop (slow clients)."""
    parts = urlsplit(base)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.sendall(b"GET /api/v1/jo")
        socks.append(sock)
    return socks
