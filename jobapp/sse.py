"""The Server-Sent Events wire format: the only module that writes ``retry:``, ``id:``, ``data:`` lines.

Every frame is returned as one string so the caller yields it in a single write; naive clients
that split each network chunk on newlines (the frontend guide's hook) then see whole events.
"""

import json
from typing import Any, Optional


def retry(milliseconds: int) -> str:
    """Tell the client how long to wait before reconnecting."""
    return f"retry: {int(milliseconds)}\n\n"


def encode(data: dict[str, Any]) -> str:
    """An event's ``data:`` value: compact JSON on one line. Encode a state once, send it to every stream."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def event(event_id: int, data: dict[str, Any], encoded: Optional[str] = None) -> str:
    """One event: ``id:`` then a single ``data:`` line of compact JSON, then a blank line.

    No ``event:`` field, so the browser's ``EventSource.onmessage`` fires. ``encoded`` is
    ``encode(data)`` when the caller already has it.
    """
    payload = encoded if encoded is not None else encode(data)
    return f"id: {int(event_id)}\ndata: {payload}\n\n"


def comment(text: str = "keep-alive") -> str:
    """A comment line; clients ignore it, proxies see traffic and keep the connection open."""
    return f": {text}\n\n"
