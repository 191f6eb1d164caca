"""URLs the API hands out: a job's stream (with its stream token) and its snapshot."""

from flask import current_app

from .. import auth


def stream_url(job_type: str, job_id: str, user_id: str) -> str:
    token = auth.mint_stream_token(user_id, auth.job_scope(job_type, job_id),
                                   current_app.config["JOBAPP"].STREAM_TOKEN_TTL)
    return f"/api/v1/sse/jobs/{job_type}/{job_id}?token={token}"


def status_url(job_type: str, job_id: str) -> str:
    return f"/api/v1/jobs/{job_type}/{job_id}"


def with_links(event: dict, user_id: str) -> dict:
    """The event payload plus a fresh ``streamUrl`` and the ``statusUrl``."""
    return {**event, "streamUrl": stream_url(event["jobType"], event["jobId"], user_id),
            "statusUrl": status_url(event["jobType"], event["jobId"])}


def user_stream_url(user_id: str) -> str:
    """The caller's many-jobs stream, with a stream token scoped to their jobs (read-only)."""
    token = auth.mint_stream_token(user_id, auth.USER_SCOPE, current_app.config["JOBAPP"].STREAM_TOKEN_TTL)
    return f"/api/v1/sse/jobs?token={token}"
