"""Job types only the tests register (``JOBAPP_JOBS=jobapp.demo,tests.jobs_for_tests``)."""

from __future__ import annotations

import time

from jobapp.jobs import progress


def log_burst(owner: str, params: dict) -> dict:
    """Write ``count`` numbered lines as fast as it can, one call each, then finish."""
    progress.report(10, "logging", "Writing lines")
    for number in range(1, params.get("count", 1000) + 1):
        progress.log(f"line {number}")
    time.sleep(params.get("linger", 0))
    return {"lines": params.get("count", 1000)}
