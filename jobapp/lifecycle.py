"""Process shutdown, as open streams need to hear of it.

gunicorn's SIGTERM handler (see gunicorn.conf.py) calls ``begin_shutdown()``; every open stream
is woken, sends a ``retry:`` hint and ends, so clients reconnect to a process that is staying.
"""

from __future__ import annotations

from typing import Callable

_stopping = False
_listeners: list[Callable[[], None]] = []


def stopping() -> bool:
    return _stopping


def on_shutdown(callback: Callable[[], None]) -> None:
    _listeners.append(callback)


def begin_shutdown() -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    for callback in list(_listeners):
        callback()
