"""Place in line: every way of looking it up gives the same places (jobapp/positions.py)."""

from __future__ import annotations

from jobapp import positions


def test_lpos_short_queue_and_full_read_agree(redis_conn):
    key = positions.queue_key("positions-test")
    queue = [f"job-{i}" for i in range(300)]
    redis_conn.rpush(key, *queue)
    watched = {"positions-test": ["job-0", "job-7", "job-299", "not-in-line"]}
    expected = {"job-0": 1, "job-7": 8, "job-299": 300}
    one_by_one = positions.find(redis_conn, watched)  # no length known: LPOS per job
    short = positions.find(redis_conn, watched, {"positions-test": 300})  # short queue: one LRANGE
    many = positions.find(redis_conn, {"positions-test": queue[:250]})  # many watched: one LRANGE
    assert one_by_one == expected and short == expected
    assert many == {job_id: i + 1 for i, job_id in enumerate(queue[:250])}
    assert positions.marks(redis_conn, ["positions-test", "empty"]) == {"positions-test": (300, b"job-0"),
                                                                       "empty": (0, None)}
