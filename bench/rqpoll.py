"""Push against poll: how fast RQ's own ``save_meta()`` progress reaches a client, and what watching costs.

Two paths carry a job's ``save_meta()`` to its stream:

- push: jobapp's worker (``python worker.py``) runs the job as jobapp's job class, whose ``save_meta``
  records and announces the state at once;
- poll: a plain ``rq worker`` (RQ's CLI, JSON serializer, no jobapp class or hook) runs it, and the hub
  reads RQ's hashes of watched unfinished jobs every ``HUB_RQ_POLL_SECONDS`` (1 s).

Latency: the job writes ``time.time()`` into ``meta["message"]`` just before each ``save_meta()``;
a client watching the job notes when each event arrives (same machine, same clock).

Idle cost: Redis commands per second (``INFO`` ``total_commands_processed`` and ``HMGET`` calls, our own
sampling subtracted) while N pending jobs are watched and nothing happens, watched by 1 and by 5
streams per job group, with the RQ poll on and off.

Run: ``.venv/bin/python -m bench.rqpoll`` (about 4 minutes; ``--help`` for the knobs). Figures go to
``bench/results/rqpoll.json``.

Measured 2026-11-30 on the shared 2-core machine (other helpers' test suites running: load 6-8),
defaults (5 jobs x 10 saves 0.37 s apart per path; ``HUB_RQ_POLL_SECONDS=1``; 10 s idle windows):

| path | events / saves | median | p95 | max |
| --- | --- | --- | --- | --- |
| push (jobapp worker) | 50 / 50 | 6.6 ms | 33 ms | 238 ms |
| poll (plain ``rq worker``) | 20 / 50 (the latest state each poll; faster saves coalesce) | 205 ms | 337 ms | 371 ms |

| watched pending jobs | streams | RQ poll on: Redis cmds/s (HMGET/s) | RQ poll off: Redis cmds/s |
| --- | --- | --- | --- |
| 100 | 1 | 100.6 (100) | 0.6 |
| 100 | 5 | 100.6 (100) | 0.6 |
| 1,000 | 10 | 1,000.6 (1,000) | 0.6 |
| 1,000 | 50 | 900.6 (900) | 0.6 |

Idle cost is one ``HMGET`` per watched unfinished job per second, sent as one pipelined round trip
per 1,000 jobs, whatever the number of streams; jobs jobapp's own worker runs are skipped (their
state carries the push mark) and finished jobs are never polled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from rq import get_current_job

from jobapp import job_type

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bench.rqpoll"


class Stamps(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    saves: int = Field(ge=1, le=100)
    gap: float = Field(ge=0, le=10)


@job_type("stamped", schema=Stamps)
def stamped(owner: str, params: dict) -> dict:
    """Save meta ``saves`` times, ``gap`` seconds apart, each stamped with the time it was saved."""
    job = get_current_job()
    for step in range(1, params["saves"] + 1):
        time.sleep(params["gap"])
        job.meta["progress"] = step * 100 // (params["saves"] + 1)
        job.meta["message"] = repr(time.time())
        job.save_meta()
    return {"saves": params["saves"]}


# --- the measurement (only when run) -------------------------------------------------------------

def _arrivals(url: str, until_done: int, timeout: float, box: dict) -> None:
    """(arrival time, event) for every event on the many-jobs stream until ``until_done`` jobs completed."""
    import httpx
    from httpx_sse._decoders import SSEDecoder

    seen: list[tuple[float, dict]] = []
    done = 0
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(timeout)) as client:
        with client.stream("GET", url) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                now = time.time()
                sse = decoder.decode(line.rstrip("\r\n"))
                if sse is None or not sse.data:
                    if time.monotonic() > deadline:
                        break
                    continue
                event = json.loads(sse.data)
                seen.append((now, event))
                done += event["status"] == "completed"
                if done >= until_done or time.monotonic() > deadline:
                    break
    box["events"] = seen


def latency(svc, worker_args: list[str], label: str, jobs: int, saves: int, gap: float) -> dict:
    import httpx

    from tests.support import Process

    worker = Process(worker_args, svc.env, svc.log_dir / f"bench-rqpoll-{label}.log")
    try:
        headers = svc.headers(f"bench-{label.split()[0]}")  # a user of its own: the stream sees only these jobs
        listing = httpx.get(f"{svc.url}/api/v1/jobs", headers=headers).json()
        box: dict = {}
        reader = threading.Thread(target=_arrivals, args=(svc.url + listing["streamUrl"], jobs,
                                                          60 + jobs * saves * gap * 2, box))
        reader.start()
        time.sleep(1.0)  # connected: it follows every job this user queues from now on
        for _ in range(jobs):
            httpx.post(f"{svc.url}/api/v1/stamped/queue", json={"saves": saves, "gap": gap}, headers=headers)
        reader.join()
        delays = [arrived - float(e["message"]) for arrived, e in box["events"]
                  if e["status"] == "active" and e["message"] and e["message"][0].isdigit()]
        expected = jobs * saves
        delays.sort()
        return {"path": label, "saves": expected, "events": len(delays),
                "median_ms": round(statistics.median(delays) * 1000, 1) if delays else None,
                "p95_ms": round(delays[int(len(delays) * 0.95) - 1] * 1000, 1) if delays else None,
                "max_ms": round(delays[-1] * 1000, 1) if delays else None}
    finally:
        worker.stop()


def idle_cost(svc, pending: int, streams_per_group: int, seconds: float) -> dict:
    """Redis commands/s while ``pending`` jobs are watched by ``streams_per_group`` sets of 100-id streams."""
    import httpx
    import redis

    from tests.sse_client import raw_stream, read_until

    conn = redis.Redis.from_url(svc.redis_server.url)
    headers = svc.headers("idle")
    ids = []
    for _ in range(pending):
        response = httpx.post(f"{svc.url}/api/v1/stamped/queue", json={"saves": 1, "gap": 0}, headers=headers)
        ids.append(response.json()["data"]["jobId"])
    socks = []
    for _ in range(streams_per_group):
        for start in range(0, len(ids), 100):
            sock = raw_stream(svc.url, f"/api/v1/sse/jobs?ids={','.join(ids[start:start + 100])}", headers)
            read_until(sock, b"data: ")
            socks.append(sock)
    time.sleep(3)  # let the opening reads settle

    def sample() -> tuple[int, int]:
        stats = conn.info("commandstats")
        return conn.info("stats")["total_commands_processed"], stats.get("cmdstat_hmget", {}).get("calls", 0)

    total0, hmget0 = sample()
    time.sleep(seconds)
    total1, hmget1 = sample()
    for sock in socks:
        sock.close()
    conn.delete(*[f"rq:job:{i}" for i in ids], *[f"jobapp:state:{i}" for i in ids])  # gone: no longer polled
    conn.delete("rq:queue:stamped")
    time.sleep(2)
    own = 2  # INFO commands of one sample
    return {"watched_pending_jobs": pending, "streams": len(socks),
            "redis_commands_per_s": round((total1 - total0 - own) / seconds, 1),
            "hmget_per_s": round((hmget1 - hmget0) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5, help="jobs per latency path")
    parser.add_argument("--saves", type=int, default=10, help="save_meta() calls per job")
    parser.add_argument("--gap", type=float, default=0.37, help="seconds between saves (not a divisor of 1 s)")
    parser.add_argument("--pending", type=int, nargs="+", default=[100, 1000], help="watched pending jobs")
    parser.add_argument("--seconds", type=float, default=10, help="idle sampling window")
    args = parser.parse_args()

    from tests.conftest import Live

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"latency": [], "idle": []}
    rq = str(Path(sys.executable).parent / "rq")
    for poll in ("1", "0"):
        svc = Live(out_dir, workers=0, JOBAPP_JOBS=MODULE, HUB_RQ_POLL_SECONDS=poll, SSE_HEARTBEAT_SECONDS="15",
                   HUB_POLL_SECONDS="5", MAX_STREAMS_PER_USER="10000")
        try:
            if poll == "1":
                push = latency(svc, [sys.executable, "worker.py"], "push (jobapp worker)", args.jobs, args.saves,
                               args.gap)
                plain = latency(svc, [rq, "worker", "--serializer", "rq.serializers.JSONSerializer", "--url",
                                      svc.redis_server.url, "stamped"], "poll (plain rq worker)", args.jobs,
                                args.saves, args.gap)
                results["latency"] += [push, plain]
                print(json.dumps(push), json.dumps(plain), sep="\n", flush=True)
            for pending in args.pending:
                for per_group in (1, 5):
                    row = {"rq_poll": poll == "1", **idle_cost(svc, pending, per_group, args.seconds)}
                    results["idle"].append(row)
                    print(json.dumps(row), flush=True)
        finally:
            svc.stop()
    (out_dir / "rqpoll.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
