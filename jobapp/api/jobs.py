"""A job's snapshot (the fallback for clients without SSE) and cancel."""

from flask import Blueprint, jsonify, request

from .. import auth, joblog, positions, registry, state, userjobs
from ..errors import ApiError, not_found
from ..extensions import redis_client
from ..links import user_stream_url, with_links
from ..queueing import cancel, load

STATUSES = (state.PENDING, state.ACTIVE, state.COMPLETED, state.FAILED, state.CANCELED)

bp = Blueprint("jobs", __name__)


@bp.get("/jobs")
def list_jobs():
    """The caller's recent jobs, newest first (``?status=``, ``?limit=`` 1..100, ``?cursor=``)."""
    caller = auth.current_caller()
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}", code="validation_error",
                       fields={"status": "unknown status"})
    raw_limit = request.args.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise ApiError(400, "limit must be an integer from 1 to 100", code="validation_error",
                       fields={"limit": "integer 1..100"})
    try:
        events, next_cursor = userjobs.page(redis_client.connection, caller.user_id, int(raw_limit), status,
                                            request.args.get("cursor") or None)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "cursor is not valid; use nextCursor from a previous page", code="validation_error",
                       fields={"cursor": "invalid"}) from None
    return jsonify({"data": [with_links(e, caller.user_id) for e in events], "nextCursor": next_cursor,
                    "streamUrl": user_stream_url(caller.user_id)})


def known_type(job_type: str) -> str:
    if registry.get(job_type) is None:
        raise not_found("Job not found")
    return job_type


@bp.get("/jobs/<job_type>/<job_id>")
def snapshot(job_type: str, job_id: str):
    caller = auth.current_caller()
    stored = load(known_type(job_type), job_id, caller.user_id)
    data = with_links(positions.add_to(redis_client.connection, {job_id: stored})[job_id], caller.user_id)
    if request.args.get("log") in {"1", "true"}:
        data["log"] = joblog.snapshot(redis_client.connection, job_id)
    return jsonify({"data": data})


@bp.post("/jobs/<job_type>/<job_id>/cancel")
def cancel_job(job_type: str, job_id: str):
    caller = auth.current_caller()
    event = cancel(known_type(job_type), job_id, caller.user_id)
    return jsonify({"data": with_links(event, caller.user_id)})
