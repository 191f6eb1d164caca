"""Slow clients at the door: what a half-open connection costs and what it does to a normal client.

Starts the real service (gunicorn gevent + a worker, private Redis), then for each count of
half-open connections (each sent ``GET /api/v1/jo`` and stopped) measures the web worker's RSS and
a normal client's latency: queue a job and read its stream to the end, ``--rounds`` times.

    .venv/bin/python -m bench.slowclients [--counts 0,2000,5000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from tests.conftest import Live
from tests.sse_client import half_open, queue_character, read_stream


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def web_worker_pid(live: Live) -> int:
    children = live.web.descendants()
    return children[0] if children else live.web.popen.pid


def client_latency(live: Live, rounds: int) -> list[float]:
    """Seconds from queueing a job to its stream's final event, one job at a time."""
    times = []
    for i in range(rounds):
        started = time.monotonic()
        job = queue_character(live.url, live.headers(), name=f"Bench{i}")
        read_stream(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers(), timeout=60)
        times.append(time.monotonic() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="0,2000,5000")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    live = Live(Path(tempfile.mkdtemp(prefix="jobapp-bench-")), JOB_STEP_SECONDS="0.02")
    try:
        client_latency(live, 3)  # warm up
        pid = web_worker_pid(live)
        base_rss = rss_kb(pid)
        print(f"{'half-open':>9} {'RSS MB':>7} {'KB/conn':>8} {'p50 s':>6} {'p95 s':>6} {'max s':>6}")
        for count in (int(c) for c in args.counts.split(",")):
            socks = half_open(live.url, count)
            time.sleep(1)  # let the server accept and park them all
            rss = rss_kb(pid)
            times = sorted(client_latency(live, args.rounds))
            per = (rss - base_rss) / count if count else 0.0
            print(f"{count:>9} {rss / 1024:>7.1f} {per:>8.1f} {statistics.median(times):>6.3f} "
                  f"{times[int(len(times) * 0.95) - 1]:>6.3f} {times[-1]:>6.3f}")
            for sock in socks:
                sock.close()
            time.sleep(1)
    finally:
        live.stop()


if __name__ == "__main__":
    main()
