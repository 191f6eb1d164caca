"""The demo jobs' pacing: ``JOB_STEP_SECONDS`` per step (benchmarks and tests set it small)."""

import time

from ..config import settings


def pause(steps: float = 1.0) -> None:
    seconds = settings().JOB_STEP_SECONDS * steps
    if seconds > 0:
        time.sleep(seconds)
