"""Maps RQ job states to the contract's statuses and builds the event payload.

The one place that knows RQ's statuses (``queued``, ``started``, ...) and the contract's
(``pending``, ``active``, ``completed``, ``failed``, ``canceled``).
"""

from datetime import datetime, timezone
from typing import Any, Optional

from rq.job import Job, JobStatus

PENDING, ACTIVE, COMPLETED, FAILED, CANCELED = "pending", "active", "completed", "failed", "canceled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED})

_STATUS_MAP = {
    JobStatus.QUEUED.value: PENDING,
    JobStatus.DEFERRED.value: PENDING,
    JobStatus.SCHEDULED.value: PENDING,
    JobStatus.CREATED.value: PENDING,
    JobStatus.STARTED.value: ACTIVE,
    JobStatus.FINISHED.value: COMPLETED,
    JobStatus.FAILED.value: FAILED,
    JobStatus.STOPPED.value: CANCELED,
    JobStatus.CANCELED.value: CANCELED,
}

#: Fields of the event payload that describe the job; ``updatedAt`` is stamped when recorded.
CONTENT_FIELDS = ("status", "progress", "stage", "message", "result", "failedReason")


def contract_status(rq_status: Optional[str]) -> str:
    """RQ status -> contract status; an unknown or missing status reads as pending."""
    if rq_status is None:
        return PENDING
    return _STATUS_MAP.get(getattr(rq_status, "value", rq_status), PENDING)


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def epoch_ms(moment: Optional[datetime] = None) -> int:
    """Epoch milliseconds of ``moment`` (naive datetimes are UTC, as RQ stores them), or now."""
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def payload(job: Job, *, job_type: str, status: Optional[str] = None) -> dict[str, Any]:
    """The contract's event payload for ``job``, without re-reading anything from Redis.

    ``status`` overrides what the job object says (a worker hook knows the outcome before
    the job object does). ``updatedAt`` is left to the statestore, which keeps it increasing.
    """
    meta = job.meta or {}
    status = status or contract_status(job.get_status(refresh=False))
    progress = percent(meta.get("progress"))
    result = None
    if status == COMPLETED:
        progress = 100
        # In the worker the result is still on the job object; elsewhere read RQ's result.
        result = job._result if job._result is not None else job.return_value()
    return {
        "type": "job_update",
        "jobId": job.id,
        "jobType": job_type,
        "status": status,
        "progress": progress,
        "stage": meta.get("stage"),
        "message": meta.get("message"),
        "updatedAt": None,
        "result": result,
        "failedReason": (meta.get("failedReason") or "Job failed") if status == FAILED else None,
    }


def percent(value: Any) -> int:
    """A job's own ``meta["progress"]`` as the contract's integer 0..100 (RQ code may save 42.5 or "42")."""
    try:
        return min(100, max(0, int(float(value or 0))))
    except (TypeError, ValueError):
        return 0


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two payloads describe the same state (``updatedAt`` aside)."""
    return all(a.get(f) == b.get(f) for f in CONTENT_FIELDS)
