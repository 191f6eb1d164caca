"""Drives a Hub under gevent in its own process (the hub needs a monkey-patched socket layer).

Usage: python -m tests.hub_probe REDIS_URL — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp import keys  # noqa: E402
from jobapp.watch.hub import Hub  # noqa: E402


def put(conn, job_id: str, progress: int, publish: bool = True) -> None:
    event = {"jobId": job_id, "status": "active", "progress": progress, "updatedAt": progress}
    conn.set(keys.job_state(job_id), json.dumps({"owner": "u", "event": event}))
    if publish:
        conn.publish(keys.CHANGES_CHANNEL, job_id)


def main(url: str) -> None:
    conn = redis.Redis.from_url(url)
    hub = Hub(conn, poll_seconds=0.5, dead_worker_seconds=60)
    a, b, ab = hub.subscribe(["A"]), hub.subscribe(["B"]), hub.subscribe(["A", "B"])
    gevent.sleep(0.2)  # the listener subscribes
    out = {"watched_while_open": sorted(hub.watchers)}
    for sub in (a, b, ab):
        sub.wait(0.6)  # drain what the first safety-net pass found
    put(conn, "A", 10)
    out["a_woken"] = sorted(a.wait(1.0))
    out["b_woken"] = sorted(b.wait(0.3))
    out["ab_woken"] = sorted(ab.wait(1.0))
    put(conn, "B", 20, publish=False)  # a lost notification
    out["b_after_lost_notice"] = {k: v.event["progress"] for k, v in b.wait(2.0).items()}
    # The announcement carries the state: the hub delivers it as announced, without reading the key.
    carried = json.dumps({"owner": "u", "event": {"jobId": "A", "status": "active", "progress": 30, "updatedAt": 30}})
    conn.publish(keys.CHANGES_CHANNEL, f"A {carried}")
    seen = a.wait(1.0)
    again = ab.wait(1.0)
    out["a_carried"] = {k: v.event["progress"] for k, v in seen.items()}
    out["shared_between_streams"] = seen["A"].event is again["A"].event
    for sub in (a, b, ab):
        sub.close()
    out["watched_after_close"] = sorted(hub.watchers)
    out["cached_after_close"] = sorted(hub.latest)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
