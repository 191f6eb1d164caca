"""Run an RQ worker on every registered job type's queue (or those named): ``python worker.py [queue ...]``."""

import sys

from jobapp import logs
from jobapp.config import Config, ConfigError
from jobapp.registry import RegistryError
from jobapp.worker import build_worker

if __name__ == "__main__":
    logs.configure()
    try:
        worker = build_worker(Config.from_env(), sys.argv[1:] or None)
    except (ConfigError, RegistryError) as exc:
        sys.exit(f"jobapp worker cannot start: {exc}")
    worker.work(with_scheduler=True)  # RQ's scheduler: runAt/delaySeconds and retry intervals, no extra process
