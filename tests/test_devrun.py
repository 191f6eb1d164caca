"""`make run`'s program: a private Redis, web and worker from the Procfile, and printed lines that work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from jobapp.devredis import free_port
from tests.sse_client import read_stream
from tests.support import ROOT


def test_devrun_starts_a_service_that_its_printed_token_and_curl_lines_drive(artifacts):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "JWT_SECRET_KEY"}}
    env.update(PORT=str(port), JOB_STEP_SECONDS="0.05", PATH=os.environ.get("PATH", ""))
    log_path = artifacts / f"devrun-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "jobapp.devrun"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            try:
                if "export TOKEN=" in text and httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        text = log_path.read_text(errors="replace")
        token = re.search(r"export TOKEN=(\S+)", text).group(1)
        redis_url = re.search(r"private redis-server at (\S+)", text).group(1)
        assert f"curl -s -X POST http://localhost:{port}/api/v1/characters/queue" in text
        assert f"curl -N http://localhost:{port}/api/v1/sse/jobs/character/$JOB" in text
        queued = httpx.post(f"http://127.0.0.1:{port}/api/v1/characters/queue", json={"name": "Aria", "age": 27},
                            headers={"Authorization": f"Bearer {token}"})
        assert queued.status_code == 202
        job_id = queued.json()["data"]["jobId"]
        stream = read_stream(f"http://127.0.0.1:{port}/api/v1/sse/jobs/character/{job_id}",
                             {"Authorization": f"Bearer {token}"}, timeout=20)
        assert stream.events[-1][1]["status"] == "completed", "the worker from the Procfile ran it"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(20)
    import redis
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        raise AssertionError("the private redis-server outlived make run")
    except redis.ConnectionError:
        pass
