"""Liveness and readiness, for the platform's health checks; no token needed."""

import logging

import redis
from flask import Blueprint, jsonify

from .. import redisconn
from ..errors import error_response
from ..extensions import redis_client

bp = Blueprint("health", __name__)
log = logging.getLogger("jobapp.health")


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready to take work: Redis answers (within ``REDIS_SOCKET_TIMEOUT``, or at once while the breaker
    is open). The answer also says whether Redis is full and whether its memory policy can evict jobs."""
    try:
        report = redisconn.memory_report(redis_client.connection)
    except redis.RedisError:
        return error_response(503, "Not ready: the job store (Redis) is not answering", code="not_ready",
                              headers={"Retry-After": "2"})
    warnings = []
    if report["evicts"]:
        warnings.append(redisconn.EVICTION_WARNING.format(policy=report["maxmemoryPolicy"]))
    if report["full"]:
        warnings.append("Redis is full (maxmemory reached): new jobs are refused until memory frees")
    return jsonify({"status": "ready", "redis": "ok", **report, "warnings": warnings})


def warn_if_evicting(client: redis.Redis) -> None:
    """At start: say loudly if Redis may delete jobs to make room (never fails the start)."""
    try:
        report = redisconn.memory_report(client)
    except redis.RedisError as exc:
        log.warning("redis memory policy not checked at start (%s)", type(exc).__name__)
        return
    if report["evicts"]:
        log.error(redisconn.EVICTION_WARNING.format(policy=report["maxmemoryPolicy"]))
