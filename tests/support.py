"""Real processes for tests and benchmarks: gunicorn (gevent) web servers and RQ workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx
import jwt as pyjwt

from jobapp.config import DEV_SECRET
from jobapp.devredis import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = DEV_SECRET


def make_token(user: str, ttl: int = 3600, **claims) -> str:
    """An HS256 access token as any issuer would mint it: just ``sub`` and ``exp`` (plus extras)."""
    payload = {"sub": user, "exp": int(time.time()) + ttl, **claims}
    return pyjwt.encode(payload, SECRET, algorithm="HS256")


def job_log(log: str, job_id: str) -> str:
    """The lines of a JSON process log about one job (its ``job_id`` field), joined."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("job_id") == job_id:
                found.append(json.dumps(record))
    return "\n".join(found)


def wait_until(condition, timeout: float = 30, what: str = "a condition"):
    """Poll ``condition`` until it returns something truthy (returned), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def base_env(redis_url: str, **overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBAPP_", "WATCHER", "SSE_", "JOB_", "RATE_", "MAX_", "REDIS_"))}
    env.update({
        "REDIS_URL": redis_url, "JWT_SECRET_KEY": SECRET, "JOB_STEP_SECONDS": "0.05",
        "SSE_HEARTBEAT_SECONDS": "1", "HUB_POLL_SECONDS": "1", "PYTHONUNBUFFERED": "1",
        "RATE_LIMIT_QUEUE": "100000/minute", "MAX_STREAMS_PER_USER": "1000", "LOG_FORMAT": "json",
    })
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Process:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, args: list[str], env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def descendants(self) -> list[int]:
        """Pids of every process below this one (an RQ work horse runs in a process group of its own)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = open(f"/proc/{entry}/stat").read()
                except OSError:
                    continue
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
        found, todo = [], [self.popen.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def kill_all(self) -> None:
        """SIGKILL this process and everything below it at once, as a dyno or machine dying would."""
        for pid in [self.popen.pid, *self.descendants()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        self.send(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.popen.wait(5)
        self._log.close()


class WebServer(Process):
    """``gunicorn -c gunicorn.conf.py wsgi:app`` on a free port, as the Procfile runs it."""

    def __init__(self, env: dict, log_dir: Path, workers: int = 1, port: Optional[int] = None) -> None:
        self.port = port or free_port()
        env = {**env, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        super().__init__([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env,
                         log_dir / f"web-{os.getpid()}-{self.port}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_ready()

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"web server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"web server not ready:\n{self.log()}")


class WorkerProcess(Process):
    """``python worker.py``, as the Procfile runs it."""

    count = 0

    def __init__(self, env: dict, log_dir: Path, queues: tuple[str, ...] = ()) -> None:
        WorkerProcess.count += 1
        super().__init__([sys.executable, "worker.py", *queues], env,
                         log_dir / f"worker-{os.getpid()}-{WorkerProcess.count}.log")
