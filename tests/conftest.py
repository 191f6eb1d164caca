"""Fixtures that start the real parts: private redis-server processes, gunicorn, RQ workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from jobapp import create_app
from jobapp.config import Config
from jobapp.devredis import RedisServer

from .support import SECRET, WebServer, WorkerProcess, base_env, make_token

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_conn(redis_server):
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def config(redis_server) -> Config:
    return Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET, JOB_STEP_SECONDS=0.05,
                           RATE_LIMIT_QUEUE="100000/minute")


@pytest.fixture
def app(config):
    app = create_app(config)
    app.testing = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth():
    """Headers with a Bearer access token for a user."""
    def headers(user: str = "alice", **claims) -> dict:
        return {"Authorization": f"Bearer {make_token(user, **claims)}"}
    return headers


class Live:
    """A running service: one gunicorn gevent web process and one RQ worker on a private Redis."""

    def __init__(self, redis_server: RedisServer, web: WebServer, worker: WorkerProcess, env: dict, log_dir: Path):
        self.redis_server, self.web, self.worker, self.env, self.log_dir = redis_server, web, worker, env, log_dir
        self.url = web.url

    def headers(self, user: str = "alice") -> dict:
        return {"Authorization": f"Bearer {make_token(user)}"}


@pytest.fixture(scope="session")
def live(redis_server, artifacts):
    """The whole service, started once for the session (streaming is tested over real HTTP)."""
    env = base_env(redis_server.url, RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="dashboard-pass")
    web = WebServer(env, artifacts)
    worker = WorkerProcess(env, artifacts)
    yield Live(redis_server, web, worker, env, artifacts)
    web.stop()
    worker.stop()


@pytest.fixture(scope="session")
def idle(artifacts):
    """A web process on its own Redis with no worker: queued jobs stay pending until a test moves them."""
    server = RedisServer().start()
    env = base_env(server.url)
    web = WebServer(env, artifacts)
    yield Live(server, web, None, env, artifacts)
    web.stop()
    server.stop()


@pytest.fixture(scope="module")
def slow(artifacts):
    """Slow jobs (1 s a step) and short-lived streams (3 s), for mid-job cancel and reconnect."""
    server = RedisServer().start()
    env = base_env(server.url, JOB_STEP_SECONDS="1", SSE_MAX_STREAM_SECONDS="3")
    web = WebServer(env, artifacts)
    worker = WorkerProcess(env, artifacts)
    yield Live(server, web, worker, env, artifacts)
    web.stop()
    worker.stop()
    server.stop()


@pytest.fixture
def service(artifacts):
    """Start a whole service with its own settings: ``with service(JOB_TIMEOUT="1") as s: ...``."""
    started = []

    class Service(Live):
        def __init__(self, workers: int = 1, persistent: bool = False, **settings: str):
            server = RedisServer(persistent=persistent).start()
            env = base_env(server.url, **settings)
            web = WebServer(env, artifacts)
            worker = WorkerProcess(env, artifacts) if workers else None
            super().__init__(server, web, worker, env, artifacts)
            started.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    yield Service
    for svc in started:
        svc.web.stop()
        if svc.worker:
            svc.worker.stop()
        svc.redis_server.stop()
