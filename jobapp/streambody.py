"""The WSGI body of an SSE response, and the one place a stream waits while nothing happens.

``streaming.events`` never blocks while its stream is idle: it yields an ``Idle`` (its
subscription and how long it may wait) and is sent back what changed meanwhile. Iterated as a
plain WSGI body (any server, Werkzeug's test client), ``StreamBody`` does that wait itself in the
request's greenlet. jobapp's gunicorn worker (``jobapp.sseworker``) instead *parks* an idle stream
with no greenlet at all and steps it in gevent's hub when its subscription has news or the wait is
over (a fresh greenlet takes over only for a step that waits: ``Blocking``): a waiting greenlet's
saved C stack and the request's objects were most of what an open stream cost in memory, and a
greenlet per event most of what an event cost in CPU.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Optional, Union

from gevent import getcurrent
from gevent.hub import Hub


class Idle:
    """What ``events`` yields instead of waiting: resume it with ``subscription.wait(timeout)``'s answer.

    ``reads``: the stream's next step reads Redis even if nothing changes (it waits to retry a
    failed read). Otherwise a wait that runs out with no news leads only to a heartbeat, the
    stream's end, or another wait, which jobapp's worker may then take without a greenlet."""

    __slots__ = ("subscription", "timeout", "reads")

    def __init__(self, subscription: Any, timeout: float, reads: bool = False) -> None:
        self.subscription = subscription
        self.timeout = timeout
        self.reads = reads


class Blocking:
    """What ``events`` yields just before a step that waits (a Redis read, a pause to batch log lines)
    when it runs in gevent's hub, where nothing may wait: step it again from a greenlet, and it goes on
    from there. jobapp's worker steps a parked stream in the hub when news arrives (no greenlet per
    event); anywhere else a stream runs in a greenlet or thread and never yields this."""

    __slots__ = ()


BLOCKING = Blocking()


def in_hub() -> bool:
    """Whether this code runs in gevent's hub (a callback), where it must not wait."""
    return isinstance(getcurrent(), Hub)


Frames = Generator[Union[str, Idle, Blocking], Optional[dict], None]


def parkable(subscription: Any) -> bool:
    """Whether a stream of ``subscription`` can wait without a greenlet: it can call back on news
    (``ready``, ``rawlink``, ``unlink``, as the hub's subscriptions do; the poller's cannot)."""
    return hasattr(subscription, "rawlink")


class StreamBody:
    """The frames of ``events`` as bytes (one write each), closing the generator and running
    ``on_close`` (the stream cap's release) exactly once when the server closes the body."""

    __slots__ = ("_frames", "_reply", "_on_close")

    def __init__(self, frames: Frames, on_close: Optional[Callable[[], None]] = None) -> None:
        self._frames = frames
        self._reply: Optional[dict] = None  # sent into the generator at its next step
        self._on_close = on_close

    def step(self) -> Union[bytes, Idle, Blocking]:
        """The next frame, or the ``Idle`` the stream waits on (or ``BLOCKING``); StopIteration when it has ended."""
        reply, self._reply = self._reply, None
        item = self._frames.send(reply)
        return item.encode() if item.__class__ is str else item

    def woke(self, changed: dict) -> None:
        """What the wait on the last ``Idle`` returned (the stream's next step takes it)."""
        self._reply = changed

    def __iter__(self) -> "StreamBody":
        return self

    def __next__(self) -> bytes:
        while True:
            item = self.step()
            if item.__class__ is Idle:
                self._reply = item.subscription.wait(item.timeout)  # type: ignore[union-attr]
            elif item is not BLOCKING:
                return item  # type: ignore[return-value]

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        try:
            self._frames.close()
        finally:
            if on_close is not None:
                on_close()
