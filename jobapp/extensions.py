"""Shared clients, made once and bound to the app in ``init_app`` (the Flask extension pattern)."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from rq import Queue
from rq.serializers import JSONSerializer

from . import redisconn
from .config import Config

jwt = JWTManager()
cors = CORS()
#: Every queue, job, worker and dashboard uses RQ's JSON serializer: nothing read from Redis is unpickled.
SERIALIZER = JSONSerializer


def connect(config: Config, patient: bool = False, role: str | None = None) -> redis.Redis:
    """A Redis client for ``REDIS_URL`` (or the primary ``REDIS_SENTINELS`` name); see ``redisconn``.

    The web's client (default) answers within about ``REDIS_SOCKET_TIMEOUT`` whatever Redis does, and
    fails at once while its breaker is open; a ``patient`` client (the worker's) rides out a restart
    or failover of up to about half a minute instead of failing the running job.
    """
    return redisconn.connect(config, role or ("patient" if patient else "web"))


class RedisClient:
    """The app's Redis connection pool and its RQ queues."""

    def __init__(self) -> None:
        self._app_key = "jobapp.redis"

    def init_app(self, app: Flask, config: Config) -> None:
        app.extensions[self._app_key] = connect(config)

    @property
    def connection(self) -> redis.Redis:
        return current_app.extensions[self._app_key]

    def queue(self, name: str) -> Queue:
        """The app's queue ``name``, made once: a fresh ``Queue`` asks Redis for its version on every enqueue."""
        queues = current_app.extensions.setdefault("jobapp.queues", {})
        if name not in queues:
            from .rqjob import JobappJob  # its save_meta() streams RQ's own progress idiom
            queues[name] = Queue(name, connection=self.connection, serializer=SERIALIZER, job_class=JobappJob)
        return queues[name]


redis_client = RedisClient()
