"""Job types from outside jobapp/: a broken JOBAPP_JOBS stops the web process and the worker at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobapp import create_app, registry
from jobapp.config import Config
from jobapp.devredis import free_port
from jobapp.registry import RegistryError

from .support import ROOT, SECRET, base_env

BROKEN = {
    "tests.jobmods.broken": ["tests.jobmods.broken", "cannot be imported", "a_module_that_does_not_exist"],
    "jobapp.demo,tests.jobmods.clash": ["tests.jobmods.clash", "'character' clashes", "jobapp.demo"],
    "jobapp.demo,tests.jobmods.route_clash": ["tests.jobmods.route_clash", "route 'media' clashes"],
    "tests.jobmods.nested": ["tests.jobmods.nested", "nested function"],
    "no_such_module_anywhere": ["no_such_module_anywhere", "cannot be imported"],
    "jobapp.demo,tests.jobmods.empty": ["tests.jobmods.empty", "registers no job type"],
}


@pytest.fixture(autouse=True)
def default_registry():
    yield
    registry.load(["jobapp.demo"])  # leave the process's registry as the other tests expect it


def run_until_exit(args: list[str], env: dict, timeout: float = 60) -> tuple[int, str]:
    """Run a process that should refuse to start; its exit code and output."""
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        output, _ = process.communicate()
        pytest.fail(f"{args} did not stop:\n{output.decode(errors='replace')}")
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("modules", list(BROKEN))
def test_load_names_the_module_and_the_problem(modules):
    with pytest.raises(RegistryError) as caught:
        registry.load(modules.split(","))
    for words in BROKEN[modules]:
        assert words in str(caught.value)


@pytest.mark.parametrize("modules", ["tests.jobmods.broken", "jobapp.demo,tests.jobmods.clash",
                                     "tests.jobmods.nested"])
def test_a_bad_job_module_stops_gunicorn_and_the_worker(redis_server, modules):
    env = base_env(redis_server.url, JOBAPP_JOBS=modules, PORT=str(free_port()))
    code, output = run_until_exit([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env)
    assert code != 0
    for words in BROKEN[modules]:
        assert words in output, output[-3000:]
    code, output = run_until_exit([sys.executable, "worker.py"], env)
    assert code != 0
    assert "jobapp worker cannot start" in output
    for words in BROKEN[modules]:
        assert words in output, output[-3000:]


def test_a_function_rq_cannot_import_is_refused():
    with pytest.raises(RegistryError, match="nested function"):
        registry.load(["tests.jobmods.nested"])
    from pydantic import BaseModel

    class Body(BaseModel):
        x: int

    def script_job(owner, params):
        return {}
    script_job.__module__ = "__main__"
    registry.job_type("from-a-script", schema=Body)(script_job)
    with pytest.raises(RegistryError, match="__main__"):
        registry.load(["__main__"])


def test_retry_is_normalised():
    from rq import Retry
    assert registry.normalise_retry(None) == (None, 1)
    retry, attempts = registry.normalise_retry(3)
    assert isinstance(retry, Retry) and retry.max == 3 and attempts == 4
    own = Retry(max=2, interval=[1, 2])
    assert registry.normalise_retry(own) == (own, 3)
    with pytest.raises(TypeError):
        registry.normalise_retry("twice")


def test_without_the_demo_its_routes_answer_404(redis_server, auth):
    config = Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET,
                             JOBAPP_JOBS=["tests.jobmods.metajob"])
    client = create_app(config).test_client()
    job_id = "3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c"
    for method, path in [("POST", "/api/v1/characters/queue"), ("POST", "/api/v1/media/queue"),
                         ("GET", f"/api/v1/jobs/character/{job_id}"), ("GET", f"/api/v1/sse/jobs/media/{job_id}"),
                         ("POST", f"/api/v1/jobs/character/{job_id}/cancel"), ("GET", f"/api/v1/characters/{'a' * 32}")]:
        response = client.open(path, method=method, headers=auth(), json={"name": "Aria", "age": 3})
        assert response.status_code == 404, (method, path, response.get_data(as_text=True))
        assert response.get_json()["error"]["code"] == "not_found"
    queued = client.post("/api/v1/meta-steps/queue", headers=auth(), json={"steps": 2})
    assert queued.status_code == 202 and queued.get_json()["data"]["type"] == "metajob"
    types = client.get("/api/v1/job-types", headers=auth()).get_json()["data"]
    assert [t["name"] for t in types] == ["metajob"]
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/meta-steps/queue" in paths and "/api/v1/characters/queue" not in paths
    assert "/api/v1/characters/{character_id}" not in paths
