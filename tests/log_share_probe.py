"""Many greenlets read the same job's new log lines at once (as the streams one append wakes do).

Usage: python -m tests.log_share_probe REDIS_URL — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp import joblog, keys  # noqa: E402
from tests.probe_support import calls  # noqa: E402


def main(url: str) -> None:
    conn = redis.Redis.from_url(url)
    job_id = "log-share-probe"
    conn.delete(keys.job_log(job_id), keys.job_log_head(job_id))
    joblog.append(conn, job_id, ["one", "two"], max_lines=100, max_chars=200, ttl=60)
    head = joblog.last_line_id(conn, job_id)
    before = calls(conn, "zrangebyscore")
    readers = [gevent.spawn(joblog.read_after_shared, conn, {job_id: 0}, {job_id: head}) for _ in range(25)]
    gevent.joinall(readers, raise_error=True)
    shared = calls(conn, "zrangebyscore") - before
    lines = [[text for _, _, text in r.value[job_id].lines] for r in readers]
    # A reader that knows of a newer line never takes an older read's answer.
    joblog.append(conn, job_id, ["three"], max_lines=100, max_chars=200, ttl=60)
    newer = joblog.last_line_id(conn, job_id)
    later = joblog.read_after_shared(conn, {job_id: 0}, {job_id: newer})
    print(json.dumps({"reads": shared, "lines": lines, "later": [text for _, _, text in later[job_id].lines]}))


if __name__ == "__main__":
    main(sys.argv[1])
