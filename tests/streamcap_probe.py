"""Streams opening at once in a fresh process start one stream-count refresher, not one each
(``StreamCap._ensure_refreshing``): each refresher renews the process's counts every 10 s for good.

Usage: python -m tests.streamcap_probe <redis_url> — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp.streamcap import StreamCap  # noqa: E402
from tests.probe_support import calls  # noqa: E402

OPENING = 20


def main() -> None:
    connection = redis.Redis.from_url(sys.argv[1])
    cap = StreamCap(connection, limit=OPENING)
    before = calls(connection, "zadd")
    opened = [g.value for g in gevent.joinall([gevent.spawn(cap.acquire, "user") for _ in range(OPENING)])]
    print(json.dumps({"opened": opened.count(True), "refreshes": calls(connection, "zadd") - before,
                      "total": cap.total("user"), "refusal": cap.acquire("user")}))


if __name__ == "__main__":
    main()
