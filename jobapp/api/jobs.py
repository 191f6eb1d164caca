"""A job's snapshot (the fallback for clients without SSE) and cancel."""

from flask import Blueprint, jsonify

from .. import auth
from ..errors import not_found
from ..jobs import REGISTRY
from ..jobs.queueing import cancel, load
from .links import with_links

bp = Blueprint("jobs", __name__)


def known_type(job_type: str) -> str:
    if job_type not in REGISTRY:
        raise not_found("Job not found")
    return job_type


@bp.get("/jobs/<job_type>/<job_id>")
def snapshot(job_type: str, job_id: str):
    caller = auth.current_caller()
    stored = load(known_type(job_type), job_id, caller.user_id)
    return jsonify({"data": with_links(stored.event, caller.user_id)})


@bp.post("/jobs/<job_type>/<job_id>/cancel")
def cancel_job(job_type: str, job_id: str):
    caller = auth.current_caller()
    event = cancel(known_type(job_type), job_id, caller.user_id)
    return jsonify({"data": with_links(event, caller.user_id)})
