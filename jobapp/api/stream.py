"""GET /api/v1/sse/jobs/<type>/<jobId>: a job's updates as Server-Sent Events."""

from __future__ import annotations

import time
from typing import Optional

from flask import Blueprint, Response, current_app, request

from .. import auth, state, streaming, userjobs
from ..errors import ApiError
from ..extensions import redis_client
from .jobs import known_type
from ..queueing import load, valid_job_id
from ..streambody import StreamBody

bp = Blueprint("stream", __name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def last_event_id() -> Optional[int]:
    raw = request.headers.get("Last-Event-ID", "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 20 else None


def stream_settings(caller: auth.Caller, close_on_terminal: bool) -> streaming.StreamSettings:
    """The stream ends at the maximum lifetime or when the caller's token expires, whichever is first."""
    config = current_app.config["JOBAPP"]
    lifetime = config.SSE_MAX_STREAM_SECONDS
    if caller.expires_at is not None:
        lifetime = min(lifetime, caller.expires_at - time.time())
    return streaming.StreamSettings(
        heartbeat_seconds=config.SSE_HEARTBEAT_SECONDS, retry_ms=config.SSE_RETRY_MS,
        deadline=time.monotonic() + max(0.0, lifetime), close_on_terminal=close_on_terminal,
    )


def sse_response(body, caller: auth.Caller) -> Response:
    """The streaming response, counted against the caller's cap on open streams until it closes."""
    cap = current_app.extensions["jobapp.streamcap"]
    counted = cap.acquire(caller.user_id)
    if counted is False:
        raise ApiError(429, f"Too many open streams (at most {cap.limit} per user); close some first",
                       headers={"Retry-After": "5"})
    user_id = caller.user_id
    release = (lambda: cap.release(user_id)) if counted else None
    # The body goes to the server as it is (no Werkzeug wrappers kept for the stream's life); it
    # closes itself, and releases the cap, when the server closes it (HEAD: when Werkzeug does).
    return Response(StreamBody(body, release), status=200, mimetype="text/event-stream", headers=SSE_HEADERS,
                    direct_passthrough=True)


@bp.get("/sse/jobs/<job_type>/<job_id>")
def job_stream(job_type: str, job_id: str):
    caller = auth.stream_caller(auth.job_scope(job_type, job_id))
    stored = load(known_type(job_type), job_id, caller.user_id)
    seen = last_event_id()
    event = stored.event
    if state.is_terminal(event["status"]) and streaming.client_has(event, seen):
        finished = Response(status=204)  # this client has the terminal event: stop reconnecting
        del finished.headers["Content-Type"]
        return finished
    body = streaming.events(current_app.extensions["jobapp.watcher"], redis_client.connection, [job_id],
                            seen, stream_settings(caller, close_on_terminal=True))
    return sse_response(body, caller)


MAX_IDS = 100


@bp.get("/sse/jobs")
def jobs_stream():
    """Many of the caller's jobs on one connection: ``?ids=`` (up to 100), else every unfinished job
    plus every job queued while the stream is open. Stays open after jobs finish."""
    caller = auth.stream_caller(auth.USER_SCOPE)
    connection = redis_client.connection
    raw = request.args.get("ids")
    if raw is not None:
        ids = list(dict.fromkeys(i for i in raw.split(",") if i))
        if len(ids) > MAX_IDS:
            raise ApiError(400, f"ids takes at most {MAX_IDS} job ids", code="validation_error",
                           fields={"ids": f"at most {MAX_IDS}"})
        ids = list(userjobs.owned(connection, caller.user_id, [i for i in ids if valid_job_id(i)]))
        follow = None
    else:
        ids = userjobs.unfinished(connection, caller.user_id)
        follow = caller.user_id
    body = streaming.events(current_app.extensions["jobapp.watcher"], connection, ids, last_event_id(),
                            stream_settings(caller, close_on_terminal=False), follow_user=follow)
    return sse_response(body, caller)
