"""The Server-Sent Events wire format: the only module that writes ``retry:``, ``id:``, ``data:`` lines.

Every frame is returned as one string so the caller yields it in a single write; naive clients
that split each network chunk on newlines (the frontend guide's hook) then see whole events.

Only a block with a ``data:`` line ends in a blank line. A blank line dispatches a message, and
some clients (``@microsoft/fetch-event-source``) call ``onmessage`` for every dispatch, even of a
block with no data, so ``retry:`` travels in the same block as the first event and a comment is a
lone line (the SSE spec needs no blank line after either).
"""

import json
from typing import Any, Optional


def retry(milliseconds: int) -> str:
    """Tell the client how long to wait before reconnecting: one field line, no blank line, so it
    joins the block of the event written after it (or stands alone before the connection closes)."""
    return f"retry: {int(milliseconds)}\n"


def encode(data: dict[str, Any]) -> str:
    """An event's ``data:`` value: compact JSON on one line."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class Shared(dict):
    """An event's data that many streams send: encoded once, on first use, and the same text
    written to every stream (with the frame itself kept for the id most of them send it under).

    Treat it as read-only: the encoding is not redone after a change."""

    __slots__ = ("_text", "_frame")

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._text: Optional[str] = None
        self._frame: tuple[int, str] = (-1, "")

    def text(self) -> str:
        if self._text is None:
            self._text = encode(self)
        return self._text


def event(event_id: int, data: dict[str, Any]) -> str:
    """One event: ``id:`` then a single ``data:`` line of compact JSON, then a blank line.

    No ``event:`` field, so the browser's ``EventSource.onmessage`` fires.
    """
    event_id = int(event_id)
    if type(data) is Shared:
        if data._frame[0] == event_id:
            return data._frame[1]
        frame = f"id: {event_id}\ndata: {data.text()}\n\n"
        data._frame = (event_id, frame)
        return frame
    return f"id: {event_id}\ndata: {encode(data)}\n\n"


def comment(text: str = "keep-alive") -> str:
    """A lone comment line; clients ignore it, proxies see traffic and keep the connection open.

    No blank line after it: a blank line would dispatch an empty message in some clients."""
    return f": {text}\n"
