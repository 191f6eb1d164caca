"""POST /api/v1/<collection>/queue for every job type in the registry."""

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from .. import auth
from ..errors import ApiError
from .. import ratelimit
from ..jobs import REGISTRY, JobType
from ..jobs.queueing import enqueue
from .links import with_links

bp = Blueprint("queue", __name__)


def _json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "Send the body as JSON with 'Content-Type: application/json'")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "The body is not valid JSON", code="invalid_json")
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object", code="validation_error")
    return body


def _validate(job_type: JobType, body: dict) -> dict:
    try:
        return job_type.schema.model_validate(body).model_dump(exclude_none=True)
    except ValidationError as exc:
        fields = {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}
        first = next(iter(fields.items()))
        raise ApiError(400, f"{first[0]}: {first[1]}", code="validation_error", fields=fields) from None


def _queue_view(job_type: JobType):
    def view():
        caller = auth.current_caller()  # 401 before anything is counted
        headers = ratelimit.enforce(f"queue:{job_type.name}", caller.user_id)
        params = _validate(job_type, _json_body())
        event = enqueue(job_type, params, caller.user_id, current_app.config["JOBAPP"])
        data = with_links(event, caller.user_id)
        return jsonify({"data": {"jobId": data["jobId"], "type": job_type.name, "status": data["status"],
                                 "streamUrl": data["streamUrl"], "statusUrl": data["statusUrl"]}}), 202, headers
    view.__name__ = f"queue_{job_type.name}"
    return view


for _job_type in REGISTRY.values():
    bp.add_url_rule(f"/{_job_type.route}/queue", view_func=_queue_view(_job_type), methods=["POST"])
