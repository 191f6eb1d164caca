"""A job module that registers nothing (a typo of the real one, say)."""

from jobapp import job_type  # noqa: F401
