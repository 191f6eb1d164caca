"""Run an RQ worker on the job queues (or those named on the command line): ``python worker.py [queue ...]``."""

import sys

from jobapp import logs
from jobapp.config import Config
from jobapp.worker import build_worker

if __name__ == "__main__":
    logs.configure()
    build_worker(Config.from_env(), sys.argv[1:] or None).work(with_scheduler=True)
