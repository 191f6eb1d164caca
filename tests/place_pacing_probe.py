"""Place news yields to state news (``Hub._send_places``): a burst of new places wakes streams a batch
at a time, and a state announced meanwhile goes out between batches, not after the whole burst.

Usage: python -m tests.place_pacing_probe — prints one JSON line of observations (no Redis needed).
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp.watch.hub import PLACE_BATCH_STREAMS, Hub, HubSubscription  # noqa: E402

JOBS = 5 * PLACE_BATCH_STREAMS


def main() -> None:
    hub = Hub(redis.Redis(), poll_seconds=30, dead_worker_seconds=60)  # no greenlets started: no Redis used
    woken: list[str] = []
    for i in range(JOBS):  # one stream on each of JOBS pending jobs, all waiting in one queue
        job_id = f"job-{i}"
        subscription = HubSubscription(hub)
        subscription.notify = lambda _job_id: woken.append("place")  # type: ignore[method-assign]
        subscription.job_ids.add(job_id)
        hub.watchers[job_id] = {subscription}
        hub._queued[job_id] = "default"
    running = HubSubscription(hub)
    running.notify = lambda _job_id: woken.append("state")  # type: ignore[method-assign]
    gevent.spawn(running.notify, "running-job")  # a state announced as the burst starts
    hub._send_places({f"job-{i}": i + 1 for i in range(JOBS)})
    again = len(woken)
    hub._send_places({f"job-{i}": i + 1 for i in range(JOBS)})  # the same places: nobody is woken
    print(json.dumps({"state_at": woken.index("state"), "places": woken.count("place"),
                      "woken_again": len(woken) - again, "batch": PLACE_BATCH_STREAMS,
                      "positions": len(hub.positions)}))


if __name__ == "__main__":
    main()
