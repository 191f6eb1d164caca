"""The RQ job class jobapp's queues and workers use: RQ's own, whose ``save_meta`` also streams.

RQ's documented progress idiom is ``job = get_current_job(); job.meta["progress"] = 40;
job.save_meta()``. With this class (jobapp's worker runs jobs as it), each such save also records
the job's contract state, which announces the change to every watching stream at once.
rq-dashboard still reads the same meta from RQ's job hash. Jobs run by a plain ``rq worker``
(RQ's ``Job`` class) are seen by the hub's poll of RQ's hashes instead.
"""

from __future__ import annotations

from rq.job import Job

from . import statestore


class JobappJob(Job):
    def save_meta(self) -> None:
        super().save_meta()
        if statestore.tracked(self):
            statestore.record(self.connection, self)
