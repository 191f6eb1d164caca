"""POST /api/v1/<route>/queue for every registered job type, built when the app is created."""

from __future__ import annotations

from typing import Callable

from flask import Blueprint, current_app, jsonify, request

from .. import auth, queueopts, ratelimit, registry
from ..errors import ApiError
from ..queueing import enqueue


def _json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "Send the body as JSON with 'Content-Type: application/json'")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "The body is not valid JSON", code="invalid_json")
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object", code="validation_error")
    return body


def _queue_view(name: str) -> Callable:
    """The view for type ``name``: the same ``enqueue`` a team's own code calls (one code path)."""
    def view():
        caller = auth.current_caller()  # 401, 415 and 400 before anything is counted
        params, options = queueopts.split(_json_body(), current_app.config["JOBAPP"].MAX_SCHEDULE_SECONDS)
        gate = ratelimit.Gate(f"queue:{name}", caller.user_id)  # counted with the job's writes, or 429
        data = enqueue(name, params, caller.user_id, options=options, gate=gate)
        return jsonify({"data": data}), 202, gate.headers
    view.__name__ = f"queue_{name.replace('-', '_')}"
    return view


def make_blueprint() -> Blueprint:
    """The queue routes of the types registered now (``create_app`` loads ``JOBAPP_JOBS`` first)."""
    bp = Blueprint("queue", __name__)
    for job_type in registry.REGISTRY.values():
        bp.add_url_rule(f"/{job_type.route}/queue", endpoint=f"queue_{job_type.name}",
                        view_func=_queue_view(job_type.name), methods=["POST"])
    return bp
