"""A hub greenlet that dies is started again alone (``Hub._ensure_running``): the others keep running,
so no second listener or fetcher ever runs beside a live one.

Usage: python -m tests.hub_restart_probe <redis_url> — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from jobapp.watch.hub import Hub  # noqa: E402


def main() -> None:
    hub = Hub(redis.Redis.from_url(sys.argv[1]), poll_seconds=30, dead_worker_seconds=60)
    hub._ensure_running()
    gevent.sleep(0.2)
    first = dict(hub._greenlets)
    hub._ensure_running()  # all alive: nothing new
    unchanged = all(hub._greenlets[name] is g for name, g in first.items())
    first["_place"].kill(ValueError("a bug in the place loop"))  # one loop dies of an unexpected error
    hub._ensure_running()
    kept = sorted(name for name, g in hub._greenlets.items() if g is first[name])
    replaced = sorted(name for name, g in hub._greenlets.items() if g is not first[name])
    print(json.dumps({"loops": sorted(first), "unchanged_while_alive": unchanged, "kept": kept,
                      "replaced": replaced, "live": sum(1 for g in hub._greenlets.values() if not g.dead)}))


if __name__ == "__main__":
    main()
