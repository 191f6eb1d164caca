"""Job types only the tests register (``JOBAPP_JOBS=jobapp.demo,tests.jobs_for_tests``).

``flaky`` fails its first ``fail_times`` attempts (counted in Redis, per job) and has retries;
``log_burst`` writes many log lines as fast as it can.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field
from rq import Retry, get_current_job

from jobapp import job_type, progress
from jobapp.exceptions import JobFailed


class Flaky(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    fail_times: int = Field(ge=0, le=10)
    pause: float = Field(default=0.2, ge=0, le=5)


class Burst(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    count: int = Field(ge=1, le=10000)
    pause: float = Field(default=0, ge=0, le=5)


@job_type("flaky", schema=Flaky, retry=Retry(max=2, interval=1), describe=lambda p: "flaky job")
def flaky(owner: str, params: dict) -> dict:
    """Report 30 % then 60 %, then fail unless it has already failed ``fail_times`` times."""
    job = get_current_job()
    progress.report(30, "first", "First half")
    time.sleep(params["pause"])
    progress.report(60, "second", "Second half")
    time.sleep(params["pause"])
    failures = job.connection.incr(f"tests:flaky:{job.id}")
    job.connection.expire(f"tests:flaky:{job.id}", 600)
    if failures <= params["fail_times"]:
        raise JobFailed(f"Failure number {failures}")
    return {"failures": failures - 1}


@job_type("burst", schema=Burst, describe=lambda p: f"{p['count']} log lines")
def log_burst(owner: str, params: dict) -> dict:
    """Write ``count`` numbered lines, one call each, as fast as it can, then finish."""
    progress.report(10, "logging", "Writing lines")
    time.sleep(params["pause"])
    for number in range(1, params["count"] + 1):
        progress.log(f"line {number}")
    time.sleep(params["pause"])
    return {"lines": params["count"]}
