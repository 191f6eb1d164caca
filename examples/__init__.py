"""Example job packages for jobapp, each loaded only through JOBAPP_JOBS (see the README)."""
