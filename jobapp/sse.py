"""The Server-Sent Events wire format: the only module that writes ``retry:``, ``id:``, ``data:`` lines.

Every frame is returned as one string so the caller yields it in a single write; naive clients
that split each network chunk on newlines (the frontend guide's hook) then see whole events.

Only a block with a ``data:`` line ends in a blank line. A blank line dispatches a message, and
some clients (``@microsoft/fetch-event-source``) call ``onmessage`` for every dispatch, even of a
block with no data, so ``retry:`` travels in the same block as the first event and a comment is a
lone line (the SSE spec needs no blank line after either).
"""

import json
from typing import Any


def retry(milliseconds: int) -> str:
    """Tell the client how long to wait before reconnecting: one field line, no blank line, so it
    joins the block of the event written after it (or stands alone before the connection closes)."""
    return f"retry: {int(milliseconds)}\n"


def encode(data: dict[str, Any]) -> str:
    """An event's ``data:`` value: compact JSON on one line."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def event(event_id: int, data: dict[str, Any]) -> str:
    """One event: ``id:`` then a single ``data:`` line of compact JSON, then a blank line.

    No ``event:`` field, so the browser's ``EventSource.onmessage`` fires.
    """
    return f"id: {int(event_id)}\ndata: {encode(data)}\n\n"


def comment(text: str = "keep-alive") -> str:
    """A lone comment line; clients ignore it, proxies see traffic and keep the connection open.

    No blank line after it: a blank line would dispatch an empty message in some clients."""
    return f": {text}\n"
