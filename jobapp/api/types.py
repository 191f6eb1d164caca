"""GET /api/v1/job-types: the registered job types and their request schemas (the live page's forms)."""

from flask import Blueprint, jsonify

from .. import auth, registry

bp = Blueprint("types", __name__)


def describe(job_type: registry.JobType) -> dict:
    return {"name": job_type.name, "route": job_type.route, "queueUrl": f"/api/v1/{job_type.route}/queue",
            "maxAttempts": job_type.max_attempts, "schema": job_type.schema.model_json_schema()}


@bp.get("/job-types")
def job_types():
    auth.current_caller()
    return jsonify({"data": [describe(t) for t in registry.REGISTRY.values()]})
