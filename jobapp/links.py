"""URLs jobapp hands out: a job's stream (with its stream token) and its snapshot."""

from __future__ import annotations

from typing import Optional

from flask import current_app

from . import auth
from .config import Config


def stream_url(job_type: str, job_id: str, user_id: str, config: Optional[Config] = None) -> str:
    """The job's stream with a fresh stream token; ``config`` outside a Flask app (scripts, the worker)."""
    config = config or current_app.config["JOBAPP"]
    token = auth.mint_stream_token(user_id, auth.job_scope(job_type, job_id), config.STREAM_TOKEN_TTL,
                                   secret=config.JWT_SECRET_KEY)
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
