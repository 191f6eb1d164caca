"""The one helper a job calls to say how far it has got.

It writes progress, stage and message into the RQ job's meta, then records the new contract
state (which announces it to every watching stream).
"""

from __future__ import annotations

import time
from typing import Optional

from rq import get_current_job

from .. import statestore
from ..joblog import log  # noqa: F401 - progress.log(...) is part of this helper
from . import settings


def report(progress: int, stage: Optional[str] = None, message: Optional[str] = None) -> None:
    """Record that the running job is ``progress`` % done, at ``stage``, saying ``message``."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("progress.report() must be called inside an RQ job")
    previous = int(job.meta.get("progress") or 0)
    job.meta.update(progress=max(previous, min(100, max(0, int(progress)))), stage=stage, message=message)
    job.save_meta()
    statestore.record(job.connection, job)


def pause(steps: float = 1.0) -> None:
    """Wait ``steps`` steps of ``JOB_STEP_SECONDS`` (the demo jobs' pacing)."""
    seconds = settings().JOB_STEP_SECONDS * steps
    if seconds > 0:
        time.sleep(seconds)
