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


def test_a_stream_never_shows_an_older_place_than_it_has_shown(redis_conn):
    """A stream opens with a place read at that moment; the hub's place may be a moment older (and so
    larger). That older place is not sent; a newer (smaller) one is."""
    import json
    import time

    from jobapp import keys
    from jobapp.streambody import Idle
    from jobapp.streaming import StreamSettings, events
    from jobapp.statestore import StoredState

    event = {"type": "job_update", "jobId": "job-c", "jobType": "character", "status": "pending", "progress": 0,
             "stage": None, "message": None, "updatedAt": 1764000000123, "result": None, "failedReason": None}
    redis_conn.set(keys.job_state("job-c"), json.dumps({"owner": "u", "queue": "order-test", "event": event}))
    redis_conn.rpush(positions.queue_key("order-test"), "job-a", "job-b", "job-c")

    class Subscription:
        job_ids = {"job-c"}

        def log_head(self, _job_id: str) -> int:
            return 0

        def wait(self, _timeout: float) -> dict:
            return {}

        def close(self) -> None:
            pass

    class Watcher:
        def subscribe(self, _ids):
            return Subscription()

    def at(place: int) -> dict:
        return {"job-c": StoredState(owner="u", queue="order-test", event={**event, "position": place})}

    settings = StreamSettings(heartbeat_seconds=60, retry_ms=1000, deadline=time.monotonic() + 60,
                              close_on_terminal=True)
    stream = events(Watcher(), redis_conn, ["job-c"], None, settings)
    assert '"position":3' in next(stream), "the place read as the stream opens"
    assert isinstance(next(stream), Idle)
    assert isinstance(stream.send(at(5)), Idle), "an older look at the line (a larger place) is not sent"
    assert '"position":2' in stream.send(at(2)), "a newer place is"
    stream.close()
