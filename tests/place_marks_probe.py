"""The hub reads a queue for places in line only when the line moved (or at its periodic full read),
looks at a line that stands still less and less often, and looks again at once on news.

Usage: python -m tests.place_marks_probe REDIS_URL — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp import keys, positions  # noqa: E402
from tests.probe_support import calls, until  # noqa: E402
from jobapp.watch import hub as hub_module  # noqa: E402
from jobapp.watch.hub import Hub  # noqa: E402


def main(url: str) -> None:
    conn = redis.Redis.from_url(url)
    queue = "place-marks-probe-queue"
    ids = [f"place-marks-{i}" for i in range(3)]
    conn.delete(positions.queue_key(queue))
    conn.rpush(positions.queue_key(queue), "ahead", *ids)
    for updated, job_id in enumerate(ids, start=1):
        event = {"jobId": job_id, "status": "pending", "progress": 0, "updatedAt": updated}
        conn.set(keys.job_state(job_id), json.dumps({"owner": "u", "queue": queue, "event": event},
                                                    separators=(",", ":")))
    hub_module.FULL_LOOKUP_SECONDS = 1.5
    hub = Hub(conn, poll_seconds=30, dead_worker_seconds=60, rq_poll_seconds=0, position_seconds=0.1)
    passes = []  # each pass that went on to compare places (``_send_places``)
    send_places = hub._send_places
    hub._send_places = lambda found: (passes.append(1), send_places(found))  # type: ignore[method-assign]
    sub = hub.subscribe(ids)
    placed = until(lambda: [hub.positions.get(i) for i in ids] == [2, 3, 4])
    before, passes_before = calls(conn, "lpos", "lrange"), len(passes)
    gevent.sleep(1.0)  # about ten intervals of a line that does not move
    scans_while_still = calls(conn, "lpos", "lrange") - before
    passes_while_still = len(passes) - passes_before
    conn.lpop(positions.queue_key(queue))  # the job in front is taken
    moved = until(lambda: [hub.positions.get(i) for i in ids] == [1, 2, 3], 5)
    # The one change the marks miss: a job leaves the middle while another joins the end.
    conn.lrem(positions.queue_key(queue), 0, ids[1])
    conn.rpush(positions.queue_key(queue), "behind")
    corrected = until(lambda: hub.positions.get(ids[2]) == 2, 10)
    # A still line: the looks (LLEN, one per look) thin out. 6.5 s at a 0.1 s interval would be 65 looks;
    # doubling, they come at about 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s, and the next at 12.7 s.
    hub_module.STILL_LINE_SECONDS = 30.0
    before = calls(conn, "llen")
    gevent.sleep(6.5)
    looks_while_still = calls(conn, "llen") - before
    # News (any announced state, here another job's) brings the next look forward: the move below
    # shows at once rather than at the 12.7 s look.
    conn.publish(keys.CHANGES_CHANNEL, "some-other-job")
    conn.lpop(positions.queue_key(queue))
    moved_after_news = until(lambda: hub.positions.get(ids[2]) == 1, 4)
    sub.close()
    print(json.dumps({"placed": placed, "scans_while_still": scans_while_still, "moved": moved,
                      "passes_while_still": passes_while_still,
                      "corrected_by_full_read": corrected, "looks_while_still": looks_while_still,
                      "moved_after_news": moved_after_news}))


if __name__ == "__main__":
    main(sys.argv[1])
