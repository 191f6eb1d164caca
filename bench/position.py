"""Place in line: what it costs to find where watched jobs stand in a long RQ queue.

Compares, per tick (what one web process does every POSITION_INTERVAL_SECONDS for all its
watched pending jobs), on a private redis-server:

* ``rq get_position``: RQ's ``Job.get_position()``, one ``LPOS`` round trip per job (a scan each);
* ``LPOS pipelined``: the same scans in one round trip;
* ``LRANGE``: one ``LRANGE 0 -1`` of the queue, looked up in a dict (what ``positions.find`` does
  for more than ``LPOS_UP_TO`` jobs of a queue);
* ``counters``: one ``GET`` of a per-queue "dequeued so far" counter, subtracted from each job's
  enqueue number (O(1), but wrong as soon as a job leaves the middle of the queue: cancel, delete,
  ``at_front``; shown as the floor, not used).

``.venv/bin/python -m bench.position`` prints a Markdown table (median milliseconds per tick).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import redis

from jobapp.devredis import RedisServer
from jobapp.positions import queue_key


def timed(fn, rounds: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(queue_lengths: list[int], watched_counts: list[int], rounds: int) -> list[dict]:
    server = RedisServer().start()
    rows = []
    try:
        conn = redis.Redis.from_url(server.url)
        for length in queue_lengths:
            conn.flushdb()
            ids = [str(uuid.uuid4()) for _ in range(length)]
            key = queue_key("bench")
            for start in range(0, length, 10_000):
                conn.rpush(key, *ids[start:start + 10_000])
            conn.set("bench:dequeued", 0)
            for watched in watched_counts:
                if watched > length:
                    continue
                step = length // watched
                mine = [ids[i * step + step - 1] for i in range(watched)]  # spread over the queue
                seq = {job_id: i * step + step - 1 for i, job_id in enumerate(mine)}

                def rq_way():
                    return [conn.lpos(key, job_id) for job_id in mine]

                def lpos_pipelined():
                    with conn.pipeline(transaction=False) as pipe:
                        for job_id in mine:
                            pipe.lpos(key, job_id)
                        return pipe.execute()

                def lrange():
                    wanted = set(mine)
                    return {raw: i for i, raw in enumerate(conn.lrange(key, 0, -1)) if raw.decode() in wanted}

                def counters():
                    gone = int(conn.get("bench:dequeued"))
                    return {job_id: n - gone + 1 for job_id, n in seq.items()}

                row = {"queue": length, "watched": watched}
                for name, fn in (("rq get_position", rq_way), ("LPOS pipelined", lpos_pipelined),
                                 ("LRANGE", lrange), ("counters", counters)):
                    row[name] = timed(fn, rounds if name != "rq get_position" or watched * length <= 10**7 else 3)
                rows.append(row)
                print(row, flush=True)
    finally:
        server.stop()
    return rows


def table(rows: list[dict]) -> str:
    names = ["rq get_position", "LPOS pipelined", "LRANGE", "counters"]
    out = ["| queue length | watched jobs | " + " | ".join(names) + " |",
           "| ---: | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for row in rows:
        out.append(f"| {row['queue']:,} | {row['watched']:,} | " + " | ".join(f"{row[n]:.2f}" for n in names) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1000,10000,100000")
    parser.add_argument("--watched", default="1,4,10,100,1000")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = run([int(x) for x in args.lengths.split(",")], [int(x) for x in args.watched.split(",")], args.rounds)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
