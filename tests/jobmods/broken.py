"""A job module with a bug: importing it fails."""

from jobapp import job_type  # noqa: F401

import a_module_that_does_not_exist  # noqa: F401,E402
