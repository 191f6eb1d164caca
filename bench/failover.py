"""Sentinel failover and the cost of WAIT, measured with the real parts.

1. Latency of a queue request (POST .../queue, 202) on a healthy primary + replica, with
   ``REDIS_WAIT_REPLICAS=0`` and ``=1``: the price of waiting for a replica.
2. A failover under load (queue requests as fast as ``--loaders`` threads can send them, SIGKILL
   the primary), with and without WAIT: acknowledged jobs lost, time refused after the kill, time
   from Sentinel announcing the new primary to the first 202.

    .venv/bin/python -m bench.failover [--requests 300] [--loaders 4] [--trials 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from jobapp.devredis import free_port
from tests.redis_ha import MASTER, Sentinels
from tests.support import WebServer, WorkerProcess, base_env, make_token
from tests.test_sentinel import Load, watch_announcement

LOGS = Path(tempfile.mkdtemp(prefix="jobapp-bench-failover-"))


def start(wait: bool) -> tuple[Sentinels, WebServer, list[WorkerProcess]]:
    ha = Sentinels().start()
    env = base_env(f"redis://127.0.0.1:{free_port()}/0", REDIS_SENTINELS=ha.setting, REDIS_SENTINEL_MASTER=MASTER,
                   REDIS_WAIT_REPLICAS="1" if wait else "0", REDIS_WAIT_TIMEOUT_MS="200", JOB_STEP_SECONDS="0.01",
                   WORKER_HEARTBEAT_SECONDS="1", DEAD_WORKER_SECONDS="3")
    return ha, WebServer(env, LOGS), [WorkerProcess(env, LOGS) for _ in range(2)]


def stop(ha: Sentinels, web: WebServer, workers: list[WorkerProcess]) -> None:
    web.stop()
    for worker in workers:
        worker.stop()
    ha.stop()


def wait_cost(transactions: int) -> None:
    """The WAIT round trip alone: a small MULTI/EXEC like the queue's, with and without WAIT after it."""
    from jobapp.config import Config
    from jobapp.redisconn import connect, replicated
    ha = Sentinels().start()
    try:
        config = Config.from_env({"REDIS_SENTINELS": ha.setting, "REDIS_SENTINEL_MASTER": MASTER})
        client = connect(config)
        print(f"transaction latency over {transactions} transactions, in process (ms)")
        print(f"{'WAIT':>5} {'p50':>6} {'p95':>6} {'p99':>6}")
        for replicas in (0, 1, 0, 1):
            times = []
            for i in range(transactions):
                began = time.perf_counter()
                with replicated(client, replicas, 200) as conn:
                    with conn.pipeline() as pipe:
                        pipe.hset(f"bench:{i}", mapping={"a": "x" * 200, "b": "y" * 200})
                        pipe.rpush("bench:queue", i)
                        pipe.set(f"bench:state:{i}", "z" * 300)
                        pipe.execute()
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            print(f"{replicas:>5} {statistics.median(times):>6.2f} {times[int(len(times) * .95)]:>6.2f} "
                  f"{times[int(len(times) * .99)]:>6.2f}")
    finally:
        ha.stop()


def latency(requests: int) -> None:
    headers = {"Authorization": f"Bearer {make_token('bench')}"}
    print(f"queue latency over {requests} sequential requests (ms)")
    print(f"{'WAIT':>5} {'p50':>6} {'p95':>6} {'p99':>6}")
    for wait in (False, True):
        parts = start(wait)
        try:
            web = parts[1]
            times = []
            with httpx.Client(timeout=10) as client:
                for i in range(requests):
                    began = time.perf_counter()
                    answer = client.post(f"{web.url}/api/v1/characters/queue", json={"name": f"L{i}", "age": 1},
                                         headers=headers)
                    assert answer.status_code == 202, answer.text
                    times.append((time.perf_counter() - began) * 1000)
            times.sort()
            print(f"{int(wait):>5} {statistics.median(times):>6.1f} {times[int(len(times) * .95)]:>6.1f} "
                  f"{times[int(len(times) * .99)]:>6.1f}")
        finally:
            stop(*parts)


def failover(wait: bool, loaders: int) -> None:
    ha, web, workers = start(wait)
    headers = {"Authorization": f"Bearer {make_token('bench')}"}
    try:
        loads = [Load(web.url, headers, interval=0) for _ in range(loaders)]
        for load in loads:
            load.__enter__()
        time.sleep(2)
        announced: dict = {}
        watcher = watch_announcement(ha, ha.primary_address(), announced)
        ha.primary.process.kill()
        killed = time.monotonic()
        watcher.join(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                t > announced.get("at", 1e18) and s == 202 for load in loads for t, s, _ in load.answers):
            time.sleep(0.05)
        time.sleep(1)
        for load in loads:
            load.__exit__()
        answers = [a for load in loads for a in load.answers]
        recovered = min((t for t, s, _ in answers if t > announced["at"] and s == 202), default=float("nan"))
        acknowledged = [body["data"]["jobId"] for _, status, body in answers if status == 202]
        lost = 0
        with httpx.Client(timeout=10) as client:
            for job_id in acknowledged:
                if client.get(f"{web.url}/api/v1/jobs/character/{job_id}", headers=headers).status_code == 404:
                    lost += 1
        refused = sum(1 for _, s, _ in answers if s != 202)
        print(f"{int(wait):>5} {len(acknowledged):>6} {lost:>5} {refused:>8} {recovered - killed:>10.1f} "
              f"{recovered - announced['at']:>13.1f}")
    finally:
        stop(ha, web, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    wait_cost(args.requests * 5)
    print()
    latency(args.requests)
    print(f"\nfailover under load ({args.loaders} loaders, no pause between requests)")
    print(f"{'WAIT':>5} {'acked':>6} {'lost':>5} {'refused':>8} {'refused s':>10} {'after news s':>13}")
    for _ in range(args.trials):
        for wait in (False, True):
            failover(wait, args.loaders)


if __name__ == "__main__":
    main()
