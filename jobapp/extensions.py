"""Shared clients, made once and bound to the app in ``init_app`` (the Flask extension pattern)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from flask import Flask, current_app
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from rq import Queue
from rq.serializers import JSONSerializer

from .config import Config

jwt = JWTManager()
cors = CORS()
#: Every queue, job, worker and dashboard uses RQ's JSON serializer: nothing read from Redis is unpickled.
SERIALIZER = JSONSerializer


#: How long a request may wait for a free pooled connection: 10,000 streams opening at once on a
#: saturated machine waited more than 5 s for one of 10 (greenlets hold theirs while descheduled).
POOL_WAIT_SECONDS = 30


def tls_options(config: Config) -> dict:
    """Client options for ``rediss://`` with ``REDIS_TLS_VERIFY=false`` (a self-signed certificate)."""
    if config.REDIS_URL.startswith("rediss://") and not config.REDIS_TLS_VERIFY:
        return {"ssl_cert_reqs": "none"}
    return {}


def connect(config: Config, patient: bool = False) -> redis.Redis:
    """A Redis client for ``REDIS_URL`` (bytes in and out, as RQ needs).

    ``rediss://`` URLs use TLS; ``REDIS_TLS_VERIFY=false`` accepts a self-signed certificate,
    as managed Redis services (Heroku's among them) present. A ``patient`` client (the worker's)
    rides out a Redis restart of up to about half a minute instead of failing the running job;
    the web's answers 503 at once instead. The pool is bounded (``REDIS_MAX_CONNECTIONS``): a burst
    of requests waits for a connection rather than opening one each, for as long as a loaded
    process may take to hand one back (``POOL_WAIT_SECONDS``), never failing for want of one.
    """
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.1), 20 if patient else 1)
    options: dict = {"health_check_interval": 30, "socket_keepalive": True, "socket_connect_timeout": 2,
                     "retry": retry, "retry_on_error": [redis.ConnectionError, redis.TimeoutError]}
    pool = redis.BlockingConnectionPool.from_url(
        config.REDIS_URL, max_connections=config.REDIS_MAX_CONNECTIONS, timeout=POOL_WAIT_SECONDS, **options, **tls_options(config))
    return redis.Redis(connection_pool=pool)


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
            queues[name] = Queue(name, connection=self.connection, serializer=SERIALIZER)
        return queues[name]


redis_client = RedisClient()
