"""The hub's RQ poll leaves alone a watched job found waiting in its queue, and reads it once it leaves.

Usage: python -m tests.rqpoll_skip_probe REDIS_URL — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp import keys, positions  # noqa: E402
from tests.probe_support import until  # noqa: E402
from jobapp.watch.hub import Hub  # noqa: E402


def main(url: str) -> None:
    conn = redis.Redis.from_url(url)
    job_id, queue = "rqpoll-skip-probe", "rqpoll-skip-probe-queue"
    event = {"jobId": job_id, "status": "pending", "progress": 0, "updatedAt": 1}
    conn.delete(positions.queue_key(queue))
    conn.rpush(positions.queue_key(queue), "someone-else", job_id)
    conn.set(keys.job_state(job_id), json.dumps({"owner": "u", "queue": queue, "event": event}, separators=(",", ":")))
    hub = Hub(conn, poll_seconds=5, dead_worker_seconds=60, rq_poll_seconds=0.1, position_seconds=0.1)
    sub = hub.subscribe([job_id])
    placed = until(lambda: hub.positions.get(job_id) == 2)
    reads_placed = hub.rq.reads
    gevent.sleep(1.0)  # about ten polls and ten lookups
    reads_waiting = hub.rq.reads - reads_placed
    conn.lrem(positions.queue_key(queue), 0, job_id)  # taken by a worker jobapp does not know
    left = until(lambda: hub.rq.reads > reads_placed + reads_waiting)
    sub.close()
    print(json.dumps({"placed": placed, "reads_while_waiting": reads_waiting, "read_after_leaving": left}))


if __name__ == "__main__":
    main(sys.argv[1])
