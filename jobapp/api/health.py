"""Liveness and readiness, for the platform's health checks; no token needed."""

import redis
from flask import Blueprint, jsonify

from ..extensions import redis_client

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready to take work: Redis answers."""
    try:
        redis_client.connection.ping()
    except redis.RedisError:
        return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
    return jsonify({"status": "ready", "redis": "ok"})
