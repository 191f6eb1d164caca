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
    rq_status = job.get_status(refresh=False)
    rq_status = getattr(rq_status, "value", rq_status)
    status = status or contract_status(rq_status)
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
        **attempts(job),
        "position": None,
        "scheduledFor": _int(meta.get("scheduledFor")) if status == PENDING and rq_status == "scheduled" else None,
        "waitingFor": (list(meta.get("waitingFor") or []) or None) if status == PENDING and rq_status == "deferred" else None,
    }


def percent(value: Any) -> int:
    """A job's own ``meta["progress"]`` as the contract's integer 0..100 (RQ code may save 42.5 or "42")."""
    try:
        return min(100, max(0, int(float(value or 0))))
    except (TypeError, ValueError):
        return 0


def _int(value: Any) -> Optional[int]:
    return int(value) if value is not None else None


def attempts(job: Job) -> dict[str, int]:
    """``attempt`` (1-based) and ``maxAttempts`` from RQ's own counter: ``retries_left`` counts down.

    ``maxAttempts`` is put in meta at enqueue (1 + the type's retries). While a retry waits, RQ
    has already counted it, so the job shows the attempt it will make next.
    """
    most = max(1, int((job.meta or {}).get("maxAttempts") or 1))
    left = job.retries_left
    attempt = most - int(left) if left is not None and most > 1 else 1
    return {"attempt": min(most, max(1, attempt)), "maxAttempts": most}


def in_queue(event: dict[str, Any], now_ms: Optional[int] = None) -> bool:
    """Whether a recorded state may be a job waiting in its queue (so it has a place in line)."""
    if event["status"] != PENDING or event.get("waitingFor"):
        return False
    due = event.get("scheduledFor")
    return due is None or due <= (now_ms if now_ms is not None else epoch_ms())


def with_position(event: dict[str, Any], position: Optional[int]) -> dict[str, Any]:
    """``event`` with its place in line (only a pending job waiting in its queue has one)."""
    if position is None or not in_queue(event):
        return event
    return {**event, "position": position, "scheduledFor": None}
