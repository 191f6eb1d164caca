"""Every setting jobapp reads from the environment, with its default and validation (12-factor)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Mapping, Optional

#: The secret ``make run`` and the tests use; refused when ``JOBAPP_ENV=production``.
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class ConfigError(ValueError):
    """A setting is missing or invalid; the process must not start."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass
class Config:
    """Settings, one attribute per environment variable of the same name."""

    JOBAPP_ENV: str = "development"  # "production" turns on the secret check
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_TLS_VERIFY: bool = True  # false: accept a managed Redis's self-signed certificate
    REDIS_MAX_CONNECTIONS: int = 10  # per process (the hub's subscription has one more); a burst waits for a free one
    REDIS_SOCKET_TIMEOUT: float = 0.5  # web: seconds a Redis command may take before the breaker opens
    REDIS_POOL_TIMEOUT: float = 30.0  # web: a burst waits this long for a pooled connection; a stall ends the wait at its first timeout
    REDIS_SENTINELS: list[str] = field(default_factory=list)  # host:port,...: find the primary through Sentinel
    REDIS_SENTINEL_MASTER: str = "mymaster"  # the primary's name in Sentinel
    REDIS_SENTINEL_PASSWORD: Optional[str] = None  # the sentinels' own password, if they have one
    REDIS_WAIT_REPLICAS: int = 0  # >0: a queue request waits for this many replicas (WAIT) before its 202
    REDIS_WAIT_TIMEOUT_MS: int = 200  # how long that WAIT may take
    JWT_SECRET_KEY: str = DEV_SECRET
    PORT: int = 8088
    CORS_ORIGINS: list[str] = field(default_factory=lambda: ["http://localhost:3000"])
    STREAM_TOKEN_TTL: int = 3600  # seconds a streamUrl's token is valid
    SSE_HEARTBEAT_SECONDS: float = 15.0  # a keep-alive comment after this much silence
    SSE_RETRY_MS: int = 3000  # the retry: hint sent to clients
    SSE_MAX_STREAM_SECONDS: float = 3600.0  # a stream ends (client reconnects) after this
    WATCHER: str = "hub"  # "hub" (one watcher per process) or "poll" (one loop per stream)
    POLL_INTERVAL_SECONDS: float = 0.5  # the "poll" watcher's tick
    HUB_POLL_SECONDS: float = 30.0  # the hub's safety-net re-read of every watched job
    HUB_RQ_POLL_SECONDS: float = 1.0  # the hub reads RQ's hashes of watched jobs no jobapp worker runs; 0: off
    JOB_TIMEOUT: int = 600  # seconds before a running job is failed as timed out
    JOB_RESULT_TTL: int = 86400  # seconds a finished job's state and result stay readable
    ARTIFACT_TTL: int = 7 * 86400  # seconds made characters and media files are kept
    JOB_STEP_SECONDS: float = 0.5  # demo jobs' pacing: seconds per step
    WORKER_HEARTBEAT_SECONDS: int = 10  # a worker running a job heartbeats this often
    DEAD_WORKER_SECONDS: float = 40.0  # a running job with no heartbeat this long is failed as "worker died"
    JOB_LOG_MAX_LINES: int = 1000  # a job's user-facing log keeps its newest lines; older ones are dropped
    JOB_LOG_MAX_LINE_CHARS: int = 2000  # longer log lines are cut to this many characters
    POSITION_INTERVAL_SECONDS: float = 1.0  # how often streams' places in line are recomputed (per process)
    MAX_SCHEDULE_SECONDS: int = 7 * 86400  # runAt / delaySeconds may lie at most this far ahead
    SCHEDULER_LOOK_SECONDS: float = 5.0  # jobapp's scheduler looks for jobs scheduled by other code at least this often
    MAX_CONTENT_LENGTH: int = 64 * 1024  # request bodies larger than this answer 413
    RATE_LIMIT_QUEUE: str = "60/minute;600/hour"  # per user, on each queue route (Flask-Limiter's syntax)
    MAX_STREAMS_PER_USER: int = 50  # concurrent open SSE streams per user, across all web processes
    JOBAPP_JOBS: list[str] = field(default_factory=lambda: ["jobapp.demo"])  # modules that register job types
    LOG_FORMAT: str = ""  # "json" or "human"; empty: json in production, human elsewhere (jobapp/logs.py)
    RQ_DASHBOARD_USERNAME: Optional[str] = None
    RQ_DASHBOARD_PASSWORD: Optional[str] = None

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides) -> "Config":
        """Read every field from ``environ`` (default ``os.environ``), converting by type."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _convert(f.type, raw)
            except ValueError as exc:
                raise ConfigError(f"{f.name}: {exc}") from None
        values.update(overrides)
        config = cls(**values)
        config.validate()
        return config

    @property
    def production(self) -> bool:
        return self.JOBAPP_ENV == "production"

    def validate(self) -> None:
        if self.production and (self.JWT_SECRET_KEY == DEV_SECRET or len(self.JWT_SECRET_KEY) < 32):
            raise ConfigError("JWT_SECRET_KEY must be set to a random secret of 32+ characters in production")
        if self.DEAD_WORKER_SECONDS < 2 * self.WORKER_HEARTBEAT_SECONDS:
            raise ConfigError("DEAD_WORKER_SECONDS must be at least twice WORKER_HEARTBEAT_SECONDS")
        if self.HUB_RQ_POLL_SECONDS < 0:
            raise ConfigError("HUB_RQ_POLL_SECONDS must be 0 (off) or positive")
        if not self.JOBAPP_JOBS:
            raise ConfigError("JOBAPP_JOBS must name at least one module (the default is jobapp.demo)")
        if self.LOG_FORMAT.strip().lower() not in {"", "human", "json"}:
            raise ConfigError("LOG_FORMAT must be 'human' or 'json'")
        if self.WATCHER not in {"hub", "poll"}:
            raise ConfigError("WATCHER must be 'hub' or 'poll'")
        if not self.REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        for address in self.REDIS_SENTINELS:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"REDIS_SENTINELS: {address!r} is not host:port")
        if self.REDIS_WAIT_REPLICAS < 0:
            raise ConfigError("REDIS_WAIT_REPLICAS must be 0 or more")
        if self.REDIS_WAIT_REPLICAS and not 0 < self.REDIS_WAIT_TIMEOUT_MS < self.REDIS_SOCKET_TIMEOUT * 1000:
            raise ConfigError("REDIS_WAIT_TIMEOUT_MS must be positive and shorter than REDIS_SOCKET_TIMEOUT")
        for name in ("SSE_HEARTBEAT_SECONDS", "SSE_MAX_STREAM_SECONDS", "POLL_INTERVAL_SECONDS",
                     "HUB_POLL_SECONDS", "JOB_TIMEOUT", "WORKER_HEARTBEAT_SECONDS", "DEAD_WORKER_SECONDS",
                     "JOB_RESULT_TTL", "STREAM_TOKEN_TTL", "JOB_LOG_MAX_LINES", "JOB_LOG_MAX_LINE_CHARS",
                     "POSITION_INTERVAL_SECONDS", "MAX_SCHEDULE_SECONDS", "REDIS_SOCKET_TIMEOUT", "REDIS_POOL_TIMEOUT",
                     "SCHEDULER_LOOK_SECONDS"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    def flask_settings(self) -> dict:
        """The subset Flask and its extensions read from ``app.config``."""
        return {
            "JWT_SECRET_KEY": self.JWT_SECRET_KEY,
            "JWT_ALGORITHM": "HS256",
            "JWT_DECODE_ALGORITHMS": ["HS256"],
            "JWT_TOKEN_LOCATION": ["headers"],
            "MAX_CONTENT_LENGTH": self.MAX_CONTENT_LENGTH,
        }


def _convert(kind, raw: str):
    kind = str(kind)
    if "bool" in kind:
        return _bool(raw)
    if "list" in kind:
        return _list(raw)
    if "int" in kind:
        return int(raw)
    if "float" in kind:
        return float(raw)
    return raw


@lru_cache(maxsize=1)
def settings() -> Config:
    """Settings read once from the environment, where there is no Flask app (workers, scripts)."""
    return Config.from_env()
