"""The RQ worker jobapp runs: RQ's own, plus a hook at each step of a job's life.

Each hook records the job's new contract state (which announces it to streams), and a failure
gets a short ``failedReason`` for the client while the traceback goes to this worker's log only.
RQ jobs that jobapp did not queue (``statestore.tracked``) share the queues and run as RQ runs them.
"""

from __future__ import annotations

import logging
import time
from typing import Optional, Sequence

from rq import Queue, Worker
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus
from rq.suspension import WORKERS_SUSPENDED, is_suspended
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from . import registry, retries, scheduler, statestore
from .config import Config
from .exceptions import JobFailed
from .extensions import SERIALIZER, connect
from .logs import current_job_id
from .rqjob import JobappJob

log = logging.getLogger("jobapp.worker")

#: How often a suspended worker (``rq suspend``) renews its heartbeat; it lives ``worker_ttl + 60`` s (480).
SUSPENDED_HEARTBEAT_SECONDS = 15.0
#: A suspended worker looks for ``rq resume`` after 1 s, then 2 s, then 4 s, then every this many seconds.
SUSPENDED_LOOK_SECONDS = 5.0


def failed_reason(job: Job, exc_type: type, exc_value: BaseException) -> str:
    """A short, human-readable reason; never a traceback and never internals."""
    if isinstance(exc_value, JobTimeoutException):
        return f"Job timed out after {job.timeout} seconds"
    if isinstance(exc_value, JobFailed):
        return str(exc_value)[:300] or "Job failed"
    return f"Job failed with an unexpected error ({exc_type.__name__})"


class JobappWorker(Worker):
    def execute_job(self, job: Job, queue: Queue) -> None:
        token = current_job_id.set(job.id)  # every log line about this job carries its id
        try:
            super().execute_job(job, queue)
        finally:
            current_job_id.reset(token)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        token = current_job_id.set(job.id)  # the same inside the work horse
        try:
            return super().perform_job(job, queue)
        finally:
            current_job_id.reset(token)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's (2.12) with the heartbeat every ``SUSPENDED_HEARTBEAT_SECONDS`` while suspended, and
        looks at the key that thin out to one every ``SUSPENDED_LOOK_SECONDS``.

        RQ renews the worker's heartbeat with every one-second look at ``rq suspend``'s key: a
        transaction of five commands a second for as long as the workers stay suspended. Here a look
        is one ``EXISTS``, after 1, 2 and 4 s and then every 5 s: a short suspension (a deploy's
        ``rq suspend`` ... ``rq resume``) ends about as promptly as RQ's, a long one costs a command
        every 5 s, and ``rq resume`` is noticed within 5 s."""
        before_state, notified = None, False
        beat_at, pause = 0.0, 1.0
        while not self._stop_requested:
            if time.monotonic() >= beat_at:
                suspended = is_suspended(self.connection, self)  # RQ's: heartbeat and look, one transaction
                beat_at = time.monotonic() + SUSPENDED_HEARTBEAT_SECONDS
            else:
                suspended = self.connection.exists(WORKERS_SUSPENDED)
            if not suspended:
                break
            if burst:
                self.log.info("Worker %s: suspended in burst mode, exiting", self.name)
                self.log.info("Worker %s: note: there could still be unfinished jobs on the queue", self.name)
                raise StopRequested
            if not notified:
                self.log.info("Worker %s: suspended, run `rq resume` to resume", self.name)
                before_state, notified = self.get_state(), True
                self.set_state(WorkerStatus.SUSPENDED)
            time.sleep(pause)
            pause = min(2 * pause, SUSPENDED_LOOK_SECONDS)
        if before_state:
            self.set_state(before_state)

    def _start_scheduler(self, *args, **kwargs) -> None:
        """jobapp's scheduler for RQ's: it waits for a due job or a wake, renews its locks every 15 s."""
        scheduler.start_with(super()._start_scheduler, *args, **kwargs)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        if statestore.tracked(job):
            statestore.record(self.connection, job, pushed=True)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry) -> None:
        super().handle_job_success(job, queue, started_job_registry)
        if statestore.tracked(job):
            statestore.record(self.connection, job)

    def handle_exception(self, job: Job, *exc_info) -> None:
        exc_type, exc_value, _ = exc_info
        job.get_meta(refresh=True)
        if not statestore.tracked(job):  # another RQ job on our queues: RQ's handling alone
            super().handle_exception(job, *exc_info)
            return
        job.meta["failedReason"] = failed_reason(job, exc_type, exc_value)
        Job.save_meta(job)  # RQ's own save: not recorded yet, as RQ may still retry it (handle_job_failure records)
        super().handle_exception(job, *exc_info)  # logs the traceback here, in the worker

    def handle_work_horse_killed(self, job: Job, retpid, ret_val, rusage) -> None:
        job.get_meta(refresh=True)
        if statestore.tracked(job):
            job.meta["failedReason"] = "The worker running this job died"
            job.save_meta()
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry=None, exc_string: str = "") -> None:
        super().handle_job_failure(job, queue, started_job_registry, exc_string)
        job.get_meta(refresh=True)  # this may run in the parent, whose copy of meta is stale
        status = job.get_status(refresh=True)
        if getattr(status, "value", status) == JobStatus.SCHEDULED.value:  # a retry with an interval (any RQ job)
            scheduler.wake(self.connection, job.origin)
        if not statestore.tracked(job):
            return
        retries.prepare_next_attempt(self.connection, job)  # RQ queued it again: progress restarts
        statestore.record(self.connection, job)


def build_worker(config: Config, queue_names: Optional[Sequence[str]] = None) -> JobappWorker:
    """A worker on ``queue_names`` (default: every registered job type's queue) against ``REDIS_URL``.

    Loads ``JOBAPP_JOBS`` first, so a broken job module stops the worker at start (``RegistryError``).
    """
    registry.load(config.JOBAPP_JOBS)
    scheduler.LOOK_SECONDS = config.SCHEDULER_LOOK_SECONDS  # read by the scheduler process this worker forks
    connection = connect(config, patient=True)
    queues = [Queue(name, connection=connection, serializer=SERIALIZER, job_class=JobappJob)
              for name in (queue_names or registry.queue_names())]
    return JobappWorker(queues, connection=connection, serializer=SERIALIZER, job_class=JobappJob,
                        job_monitoring_interval=config.WORKER_HEARTBEAT_SECONDS)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``jobapp-worker [queue ...]`` (and ``python worker.py``): a worker on the named queues, else every type's."""
    import sys

    from . import logs
    from .config import ConfigError

    logs.configure()
    try:
        worker = build_worker(Config.from_env(), list(sys.argv[1:] if argv is None else argv) or None)
    except (ConfigError, registry.RegistryError) as exc:
        sys.exit(f"jobapp worker cannot start: {exc}")
    worker.work(with_scheduler=True)  # jobapp.scheduler: runAt, delaySeconds, retry intervals
