"""The Redis connection budget: a web process and a worker at their defaults fit a 20-client Redis,
and a burst larger than the pool waits for a connection instead of failing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from tests.sse_client import queue_character, raw_stream, read_until

BODY = {"name": "Aria", "age": 3}


class ClientPeak(threading.Thread):
    """Samples Redis's ``connected_clients`` (minus this sampler's own connection) until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.redis = redis.Redis.from_url(url)
        self.peak = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.peak = max(self.peak, self.redis.info("clients")["connected_clients"] - 1)
            self.halt.wait(0.05)

    def stop(self) -> int:
        self.halt.set()
        self.join(5)
        return self.peak


def burst(url: str, headers: dict, count: int, threads: int) -> list[int]:
    """``count`` queue requests from ``threads`` threads, each thread with a keep-alive client of its own."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(_: int) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
            clients.append(local.client)
        return local.client.post(f"{url}/api/v1/characters/queue", json=BODY, headers=headers).status_code

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(post, range(count)))
    finally:  # idle keep-alive connections would hold the server's graceful shutdown to its timeout
        for client in clients:
            client.close()


def test_one_web_process_and_one_worker_stay_within_20_redis_connections(service):
    svc = service(workers=1, RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="pw")  # default pool size
    peak = ClientPeak(svc.redis_server.url)
    peak.start()
    try:
        job = queue_character(svc.url, svc.headers())
        streams = [raw_stream(svc.url, job["streamUrl"], {}, timeout=20) for _ in range(40)]
        for sock in streams:
            read_until(sock, b"data:")
        with ThreadPoolExecutor(4) as pool:  # an operator on rq-dashboard meanwhile
            dash = pool.map(lambda _: httpx.get(f"{svc.url}/rq/0/view/queues", auth=("ops", "pw"), timeout=30,
                                                 follow_redirects=True).status_code,
                            range(8))
            codes = burst(svc.url, svc.headers(), 300, 40)
        assert set(codes) == {202} and set(dash) == {200}
        for sock in streams:
            sock.close()
    finally:
        used = peak.stop()
    assert 0 < used <= 20, f"{used} Redis clients at peak"


def test_a_burst_beyond_the_pool_waits_for_a_connection_and_never_errors(service):
    svc = service(workers=0, REDIS_MAX_CONNECTIONS="2")
    peak = ClientPeak(svc.redis_server.url)
    peak.start()
    try:
        codes = burst(svc.url, svc.headers(), 120, 30)
    finally:
        used = peak.stop()
    assert codes == [202] * 120
    assert used <= 2, "the web process opened more connections than its pool allows"
