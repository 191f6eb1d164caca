"""Job log lines: how a burst of lines reaches a stream (events per 1,000 lines, delivery time).

Starts the service as the tests do (a private redis-server, gunicorn, one RQ worker, the test job
types), queues ``burst`` jobs that each write ``--lines`` lines with one ``progress.log`` call per
line as fast as the worker can, and follows each job's stream from before its first line.
``.venv/bin/python -m bench.logburst`` prints one row per run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

from tests.conftest import Live
from tests.sse_client import read_stream


def one_run(live: Live, lines: int) -> dict:
    job = httpx.post(f"{live.url}/api/v1/burst/queue", json={"count": lines, "pause": 0.5},
                     headers=live.headers(), timeout=10).json()["data"]
    arrivals: list[tuple[float, dict]] = []

    def stop(events) -> bool:
        arrivals.append((time.monotonic(), events[-1][1]))
        return events[-1][1].get("status") == "completed"

    read_stream(live.url + job["streamUrl"], timeout=60, stop=stop)
    logs = [(at, e) for at, e in arrivals if e["type"] == "job_log"]
    received = [line for _, e in logs for line in e["lines"]]
    assert received == [f"line {n}" for n in range(1, lines + 1)], "lines lost or out of order"
    return {"lines": lines, "events": len(logs), "events_per_1000_lines": round(len(logs) * 1000 / lines, 1),
            "first_to_last_line_s": round(logs[-1][0] - logs[0][0], 3),
            "largest_event_lines": max(len(e["lines"]) for _, e in logs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logs = Path("bench/results")
    logs.mkdir(parents=True, exist_ok=True)
    live = Live(logs, JOBAPP_JOBS="jobapp.demo,tests.jobs_for_tests", JOB_LOG_MAX_LINES=str(max(1000, args.lines)))
    try:
        for _ in range(args.runs):
            print(json.dumps(one_run(live, args.lines)), flush=True)
    finally:
        live.stop()


if __name__ == "__main__":
    main()
