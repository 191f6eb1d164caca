"""A Redis primary, a replica and three Sentinels on free loopback ports, in temp dirs, for failover tests.

Sentinel is redis-server's own ``--sentinel`` mode (the same binary as the tests' Redis, so nothing
more to install). Timings are tuned down so a failover takes a few seconds.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import redis

from jobapp.devredis import RedisServer, free_port, redis_server_binary

MASTER = "jobapp"


class Sentinels:
    def __init__(self, master: str = MASTER, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.master = master
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.primary: Optional[RedisServer] = None
        self.replica: Optional[RedisServer] = None
        self.ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen] = []

    @property
    def setting(self) -> str:
        """The ``REDIS_SENTINELS`` value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout: float = 20) -> "Sentinels":
        self.primary = RedisServer().start()
        self.replica = RedisServer(args=["--replicaof", "127.0.0.1", str(self.primary.port)]).start()
        for port in self.ports:
            folder = Path(tempfile.mkdtemp(prefix="jobapp-sentinel-"))
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {self.master} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.master} 1\n")
            self.processes.append(subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        while True:  # ready when the replica is in sync and every sentinel sees it and the other two sentinels
            try:
                linked = redis.Redis(port=self.replica.port).info("replication").get("master_link_status") == "up"
                if linked and all(self._ready(port) for port in self.ports):
                    return self
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sentinels did not come up")
            time.sleep(0.1)

    def _ready(self, port: int) -> bool:
        sentinel = redis.Redis(port=port, socket_timeout=1)
        state = sentinel.sentinel_master(self.master)
        return int(state.get("num-slaves", 0)) >= 1 and int(state.get("num-other-sentinels", 0)) >= 2

    def primary_address(self) -> tuple[str, int]:
        """What a sentinel says now (the first that answers)."""
        for port in self.ports:
            try:
                host, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(self.master)
                return host.decode() if isinstance(host, bytes) else host, int(found)
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answers")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.processes = []
        for server in (self.primary, self.replica):
            if server:
                server.stop()
