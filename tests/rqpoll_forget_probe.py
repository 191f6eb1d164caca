"""A job forgotten while the RQ poll waits on its reads stays forgotten (``RQPoller.forget``): the
last stream of a job closing during a poll must not leave the job's last read behind for good.

Usage: python -m tests.rqpoll_forget_probe REDIS_URL — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402
from rq.job import Job  # noqa: E402

from jobapp.watch.rqpoll import RQPoller  # noqa: E402


def main(url: str) -> None:
    conn = redis.Redis.from_url(url)
    closing, staying = "rqpoll-forget-probe-closing", "rqpoll-forget-probe-staying"
    for job_id in (closing, staying):  # RQ's hashes as a plain worker leaves them mid-job
        conn.hset(Job.key_for(job_id), mapping={"status": "started", "meta": "{}"})
    poller = RQPoller(conn)
    polling = gevent.spawn(poller.poll, [closing, staying], {})
    gevent.sleep(0)  # the poll sends its reads and waits for the replies
    waiting = not polling.ready()
    poller.forget([closing])  # the job's last stream closes now
    polling.join(10)
    after = gevent.spawn(poller.poll, [staying], {})
    after.join(10)
    print(json.dumps({"waiting_when_forgotten": waiting, "closing_kept": closing in poller.seen,
                      "staying_kept": staying in poller.seen, "error": repr(polling.exception or after.exception)}))
    conn.delete(Job.key_for(closing), Job.key_for(staying))


if __name__ == "__main__":
    main(sys.argv[1])
