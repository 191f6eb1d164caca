"""What the gevent probe scripts (``python -m tests.<name>_probe REDIS_URL``) share."""

import time

import gevent


def until(check, seconds: float = 20.0) -> bool:
    """Wait (cooperatively) for ``check()`` to hold; whether it did within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        gevent.sleep(0.05)
    return False


def calls(conn, *names: str) -> int:
    """How many times Redis has run these commands so far (``INFO commandstats``, scripts' own included)."""
    stats = conn.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)
