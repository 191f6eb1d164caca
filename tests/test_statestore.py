"""statestore.record's rules, against a real Redis: one script writes, refuses and announces."""

from __future__ import annotations

import json
import time

import pytest
import redis
from rq.job import Job, JobStatus

from jobapp import jobstats, joblog, keys, statestore


def make_job(conn: redis.Redis, status: JobStatus = JobStatus.STARTED, **meta) -> Job:
    job = Job.create(print, connection=conn, origin="character", result_ttl=600, failure_ttl=600,
                     meta={"owner": "u1", "jobType": "character", **meta})
    job._status = status
    return job


@pytest.fixture
def conn(redis_server):
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def changes(conn):
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.CHANGES_CHANNEL)
    while pubsub.get_message(timeout=1.0) is not None or not pubsub.subscribed:
        pass

    def drain(job_id: str) -> list[bytes]:
        out = []
        while (message := pubsub.get_message(timeout=0.3)) is not None:
            head, _, raw = message["data"].partition(b" ")
            if head == job_id.encode():
                out.append(raw)
        return out

    yield drain
    pubsub.close()


def stored(conn, job_id: str) -> bytes:
    return conn.get(keys.job_state(job_id))


def test_each_change_is_written_once_and_announced_with_its_bytes(conn, changes):
    job = make_job(conn, progress=10)
    first = statestore.record(conn, job)
    assert first["status"] == "active" and first["progress"] == 10
    assert changes(job.id) == [stored(conn, job.id)], "the announcement carries the state as stored"
    assert statestore.read(conn, job.id).event == first
    again = statestore.record(conn, job)
    assert again == first and changes(job.id) == [], "an unchanged state is neither written nor announced"
    job.meta["progress"] = 20
    second = statestore.record(conn, job)
    assert second["progress"] == 20 and second["updatedAt"] > first["updatedAt"]
    assert changes(job.id) == [stored(conn, job.id)]


def test_progress_never_goes_back_within_an_attempt(conn, changes):
    job = make_job(conn, progress=60, stage="a")
    statestore.record(conn, job)
    job.meta.update(progress=30, stage="b")
    event = statestore.record(conn, job)
    assert event["progress"] == 60 and event["stage"] == "b"
    assert json.loads(changes(job.id)[-1])["event"]["progress"] == 60


def test_a_finished_state_is_final_and_keeps_its_expiry(conn, changes):
    job = make_job(conn, progress=50)
    statestore.record(conn, job)
    job._status = JobStatus.FINISHED
    job._result = {"ok": 1}
    done = statestore.record(conn, job)
    assert done["status"] == "completed" and done["result"] == {"ok": 1}
    ttl = conn.ttl(keys.job_state(job.id))
    assert 0 < ttl <= 600
    raw = stored(conn, job.id)
    changes(job.id)
    job._status = JobStatus.STARTED
    job.meta["progress"] = 70
    assert statestore.record(conn, job) == done
    assert stored(conn, job.id) == raw and changes(job.id) == []
    assert ttl - 1 <= conn.ttl(keys.job_state(job.id)) <= ttl, "its expiry untouched"


def test_the_push_mark_stays_with_its_status_and_alone_is_not_announced(conn, changes):
    job = make_job(conn, progress=5)
    statestore.record(conn, job)
    assert not statestore.read(conn, job.id).pushed
    statestore.record(conn, job, pushed=True)  # same content, only the mark: written, not announced
    assert statestore.read(conn, job.id).pushed
    assert len(changes(job.id)) == 1
    job.meta["progress"] = 40
    statestore.record(conn, job)
    assert statestore.read(conn, job.id).pushed, "later states of the same status keep the mark"
    job._status = JobStatus.QUEUED
    job.retries_left = 1
    job.meta["maxAttempts"] = 3
    statestore.record(conn, job)
    assert not statestore.read(conn, job.id).pushed, "another status drops it"


def test_forward_only_never_takes_an_active_job_back_to_pending(conn):
    job = make_job(conn, progress=20)
    active = statestore.record(conn, job)
    job._status = JobStatus.QUEUED
    assert statestore.record(conn, job, forward_only=True) == active
    assert statestore.read(conn, job.id).event == active
    assert statestore.record(conn, job)["status"] == "pending"


def test_updated_at_strictly_increases_and_stays_above_the_last_log_line(conn):
    job = make_job(conn, progress=1)
    stamps = []
    for step in range(2, 30):
        job.meta["progress"] = step
        stamps.append(statestore.record(conn, job)["updatedAt"])
    assert stamps == sorted(set(stamps)), "strictly increasing, even within one millisecond"
    ahead = (int(time.time() * 1000) + 60_000) * 1000  # a line stamped a minute ahead (another machine's clock)
    conn.hset(keys.job_log_head(job.id), mapping={"u": ahead, "seq": 1, "dropped": 0})
    job.meta["progress"] = 50
    event = statestore.record(conn, job)
    assert event["updatedAt"] * 1000 > ahead
    assert joblog.last_line_id(conn, job.id) == ahead


def test_a_finished_job_is_counted_once(conn):
    job = make_job(conn, progress=1)
    job.started_at = job.created_at
    statestore.record(conn, job)
    before = {k.decode(): v for k, v in conn.hgetall(keys.job_stats("character")).items()}
    job._status = JobStatus.FAILED
    job.meta["failedReason"] = "Job timed out after 5 seconds"
    statestore.record(conn, job)
    statestore.record(conn, job)
    after = {k.decode(): v for k, v in conn.hgetall(keys.job_stats("character")).items()}
    grew = {k: float(after[k]) - float(before.get(k, 0)) for k in after if after[k] != before.get(k)}
    assert grew.pop("status:failed") == 1 and grew.pop("reason:timeout") == 1
    assert grew.pop("sum") >= 0
    assert list(grew.values()) == [1] and next(iter(grew)).startswith("b:"), grew
    families = {f.name: f for f in jobstats.collect(conn, ("character",))}
    samples = {(s.name, s.labels.get("le")): s.value for s in families["jobapp_job_duration_seconds"].samples}
    count = samples[("jobapp_job_duration_seconds_count", None)]
    assert samples[("jobapp_job_duration_seconds_bucket", "+Inf")] == count >= 1
    buckets = [samples[("jobapp_job_duration_seconds_bucket", str(b))] for b in jobstats.BUCKETS]
    assert buckets == sorted(buckets) and buckets[-1] <= count, "cumulative, as Prometheus reads them"
