"""Run an RQ worker on every registered job type's queue (or those named): ``python worker.py [queue ...]``."""

from jobapp.worker import main

if __name__ == "__main__":
    main()
