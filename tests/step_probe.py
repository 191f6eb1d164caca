"""Drives one parked stream of jobapp's gunicorn worker (``jobapp.sseworker._Stream``) under gevent in a
process of its own: news steps it in gevent's hub, with no greenlet, unless a step has to wait.

Usage: python -m tests.step_probe — prints one JSON line of observations.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
from datetime import datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gevent  # noqa: E402

from jobapp.sseworker import StreamPool, _Stream  # noqa: E402
from jobapp.streambody import BLOCKING, Idle, StreamBody, in_hub  # noqa: E402
from jobapp.watch.hub import HubSubscription  # noqa: E402


class Resp:
    """What the stream needs of gunicorn's response once the headers are out: chunked, no length."""

    headers_sent, chunked, response_length, sent = True, True, None, 0

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(b"%X\r\n%s\r\n" % (len(data), data))

    def close(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")


def main() -> None:
    hub = SimpleNamespace(current=lambda job_id: {"job": job_id})  # what ``wait`` hands the stream per job
    subscription = HubSubscription(hub)  # type: ignore[arg-type]
    where: list[str] = []

    def frames():
        changed = yield Idle(subscription, 30)
        where.append("hub" if in_hub() else "greenlet")
        yield f"news {sorted(changed)}\n"
        changed = yield Idle(subscription, 30)
        if in_hub():
            yield BLOCKING  # what ``events`` yields before a Redis read
        gevent.sleep(0.01)  # a wait: it would raise in the hub
        where.append("hub" if in_hub() else "greenlet")
        yield f"after a wait {sorted(changed)}\n"
        yield Idle(subscription, 30)
        where.append("hub" if in_hub() else "greenlet")

    ours, peer = socket.socketpair()
    peer.settimeout(5)
    pool = StreamPool(10)
    def access(*_) -> None:  # the access line, written as the stream closes
        where.append("closed in the hub" if in_hub() else "closed in a greenlet")

    worker = SimpleNamespace(alive=True, log=SimpleNamespace(exception=print, access=access),
                             cfg=SimpleNamespace(post_request=lambda *a: None))
    stream = _Stream(worker, pool, StreamBody(frames()), ours, None, {}, Resp(ours), datetime.now())  # type: ignore[arg-type]
    out = {"parked_at_first": stream.serve() and pool.parked == 1 and len(pool) == 0}

    subscription.notify("A")
    out["first"] = peer.recv(1000).decode()
    gevent.sleep(0.05)
    out["after_news"] = {"parked": pool.parked, "greenlets": len(pool), "timer": stream.timer is not None}

    subscription.notify("B")
    out["second"] = peer.recv(1000).decode()
    gevent.sleep(0.05)
    out["after_blocking"] = {"parked": pool.parked, "greenlets": len(pool), "timer": stream.timer is not None}

    subscription.notify("C")  # the stream's end: the greenlet that ends it closes the socket
    received = b""
    while True:
        data = peer.recv(1000)
        if not data:
            break
        received += data
    out["end"] = received.decode()
    out["where"] = where
    out["after_end"] = {"parked": pool.parked, "greenlets": len(pool)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
