"""Exceptions a team's own code sees: failing a job cleanly, and a queue request that was refused."""

from __future__ import annotations

from typing import Optional

from .errors import ApiError


class JobFailed(Exception):
    """Raise in a job to fail it; the message becomes the job's ``failedReason`` as it is."""


class InvalidParams(ApiError):
    """``enqueue`` refused the params: ``.message`` says why, ``.fields`` maps each bad field to its error.

    The HTTP queue route answers it as ``400 validation_error`` with the same fields.
    """

    def __init__(self, message: str, fields: Optional[dict] = None) -> None:
        super().__init__(400, message, code="validation_error", fields=fields or {})
        self.fields = fields or {}


class UnknownJobType(LookupError):
    """``enqueue`` was given a job type that no module in ``JOBAPP_JOBS`` registers."""
