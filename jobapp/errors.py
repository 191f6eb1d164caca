"""The JSON error shape for every failure: ``{"error": {"code", "message", "fields"?}}``.

Nothing here ever renders a traceback, a Redis URL or a secret; unexpected exceptions are
logged server-side and answered with a generic 500.
"""

from __future__ import annotations

import logging
from typing import Optional

import redis
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise anywhere in a request to answer with a JSON error."""

    def __init__(self, status: int, message: str, code: Optional[str] = None,
                 fields: Optional[dict] = None, headers: Optional[dict] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.fields = fields
        self.headers = headers or {}


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, message)


def error_response(status: int, message: str, code: Optional[str] = None,
                   fields: Optional[dict] = None, headers: Optional[dict] = None):
    body: dict = {"code": code or _CODES.get(status, "error"), "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, exc.fields, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        message = {
            404: "Not found",
            405: "Method not allowed",
            413: "Request body is too large",
        }.get(exc.code, exc.description or exc.name)
        return error_response(exc.code or 500, message, headers=headers)

    @app.errorhandler(redis.exceptions.RedisError)
    def _redis_down(exc: redis.exceptions.RedisError):
        if type(exc).__name__ != "RedisUnavailable":  # the breaker logged the outage once already
            log.warning("redis unavailable: %s", type(exc).__name__)
        return error_response(503, "The job store is unavailable; nothing was queued or changed. Try again shortly.",
                              headers={"Retry-After": "2"})

    @app.errorhandler(redis.exceptions.OutOfMemoryError)
    def _redis_full(exc: redis.exceptions.OutOfMemoryError):
        # noeviction at maxmemory: Redis refused the whole transaction, so nothing was written.
        log.error("redis is full (maxmemory reached): refusing writes")
        return error_response(503, "The job store is full; nothing was queued or changed. Try again later.",
                              code="store_full", headers={"Retry-After": "30"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "Internal server error")
