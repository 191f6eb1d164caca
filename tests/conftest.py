"""Fixtures that start the real parts: private redis-server processes, gunicorn, RQ workers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import pytest
import redis
from playwright.sync_api import sync_playwright

from jobapp import create_app
from jobapp.config import Config
from jobapp.devredis import RedisServer

from .support import SECRET, WebServer, WorkerProcess, base_env, make_token

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Debian's Chromium (the Makefile installs it); Playwright never downloads a browser of its own.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
    """A running service: a gunicorn gevent web process and (unless ``workers=0``) an RQ worker.

    With ``redis_server`` it shares that Redis; otherwise it starts a private one of its own."""

    def __init__(self, log_dir: Path, redis_server: Optional[RedisServer] = None, workers: int = 1,
                 persistent: bool = False, **settings: str) -> None:
        self.owns_redis = redis_server is None
        self.redis_server = redis_server or RedisServer(persistent=persistent).start()
        self.env = base_env(self.redis_server.url, **settings)
        self.log_dir = log_dir
        self.web = WebServer(self.env, log_dir)
        self.worker = WorkerProcess(self.env, log_dir) if workers else None
        self.url = self.web.url

    def headers(self, user: str = "alice") -> dict:
        return {"Authorization": f"Bearer {make_token(user)}"}

    def stop(self) -> None:
        self.web.stop()
        if self.worker:
            self.worker.stop()
        if self.owns_redis:
            self.redis_server.stop()


@pytest.fixture(scope="session")
def live(redis_server, artifacts):
    """The whole service, started once for the session (streaming is tested over real HTTP)."""
    service = Live(artifacts, redis_server, RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="dashboard-pass")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def idle(artifacts):
    """A web process on its own Redis with no worker: queued jobs stay pending until a test moves them."""
    service = Live(artifacts, workers=0)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def slow(artifacts):
    """Slow jobs (1 s a step) and short-lived streams (3 s), for mid-job cancel and reconnect."""
    service = Live(artifacts, JOB_STEP_SECONDS="1", SSE_MAX_STREAM_SECONDS="3")
    yield service
    service.stop()


@pytest.fixture
def service(artifacts):
    """Start whole services with settings of their own, stopped after the test:
    ``svc = service(workers=0, JOB_TIMEOUT="1")``."""
    started: list[Live] = []

    def start(**options) -> Live:
        started.append(Live(artifacts, **options))
        return started[-1]

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the page and browser tests of one module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
