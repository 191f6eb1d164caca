"""The reaper (``jobapp/reaper.py``) fails a job whose worker died, and nothing else: a job that
ended since it was found stale keeps its end, and a team's own RQ job is left to RQ."""

from __future__ import annotations

import json

import pytest
import redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from jobapp import keys, reaper
from jobapp.extensions import SERIALIZER


def started_job(conn: redis.Redis, **meta) -> Job:
    """A job a worker started and then stopped heartbeating: in RQ's started registry, status started."""
    job = Job.create(print, connection=conn, origin="character", result_ttl=600, failure_ttl=600, meta=meta,
                     serializer=SERIALIZER)
    job.set_status(JobStatus.STARTED, pipeline=None)
    job.save()
    conn.zadd(StartedJobRegistry("character", connection=conn).key, {job.id: 1})
    return job


@pytest.fixture
def conn(redis_server):
    return redis.Redis.from_url(redis_server.url)


def test_a_job_whose_worker_died_is_failed_and_its_streams_told(conn):
    job = started_job(conn, owner="u1", jobType="character")
    assert reaper.fail_dead(conn, job.id)
    assert job.get_status(refresh=True) == JobStatus.FAILED and job.get_meta()["failedReason"] == reaper.DIED
    event = json.loads(conn.get(keys.job_state(job.id)))["event"]
    assert event["status"] == "failed" and event["failedReason"] == reaper.DIED


def test_a_job_that_ended_since_it_was_found_stale_keeps_its_end(conn):
    job = started_job(conn, owner="u1", jobType="character")
    conn.hset(job.key, "status", JobStatus.FINISHED.value)  # its worker finished it after all
    assert not reaper.fail_dead(conn, job.id)
    assert job.get_status(refresh=True) == JobStatus.FINISHED and "failedReason" not in job.get_meta()


def test_a_team_s_own_rq_job_is_left_to_rq(conn):
    job = started_job(conn)  # queued by the team's own code: no owner, no job type
    assert not reaper.fail_dead(conn, job.id)
    assert job.get_status(refresh=True) == JobStatus.STARTED and job.get_meta() == {}
    assert not conn.exists(keys.job_state(job.id)), "jobapp writes no state for it"
