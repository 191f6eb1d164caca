"""Run an RQ worker on the job queues (or those named on the command line): ``python worker.py [queue ...]``."""

import logging
import sys

from jobapp.config import Config
from jobapp.worker import build_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_worker(Config.from_env(), sys.argv[1:] or None).work(with_scheduler=False)
