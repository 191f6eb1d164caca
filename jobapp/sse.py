"""The Server-Sent Events wire format: the only module that writes ``retry:``, ``id:``, ``data:`` lines.

Every frame is returned as one string so the caller yields it in a single write; naive clients
that split each network chunk on newlines (the frontend guide's hook) then see whole events.
"""

import json
from typing import Any


def retry(milliseconds: int) -> str:
    """Tell the client how long to wait before reconnecting."""
    return f"retry: {int(milliseconds)}\n\n"


def event(event_id: int, data: dict[str, Any]) -> str:
    """One event: ``id:`` then a single ``data:`` line of compact JSON, then a blank line.

    No ``event:`` field, so the browser's ``EventSource.onmessage`` fires.
    """
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {int(event_id)}\ndata: {payload}\n\n"


def comment(text: str = "keep-alive") -> str:
    """A comment line; clients ignore it, proxies see traffic and keep the connection open."""
    return f": {text}\n\n"
