"""The SSE contract over real HTTP: gunicorn's gevent worker, a real RQ worker, a private Redis."""

from __future__ import annotations

import json
import time

import httpx
import redis

from jobapp import keys
from tests.sse_client import queue_character, raw_chunks, read_stream
from tests.support import WebServer, job_log, make_token, wait_until

FIELDS = {"type", "jobId", "jobType", "status", "progress", "stage", "message", "updatedAt", "result", "failedReason",
          "attempt", "maxAttempts", "position", "scheduledFor", "waitingFor"}  # the last five from contract 1.1


def stream_path(job: dict) -> str:
    return f"/api/v1/sse/jobs/{job['type']}/{job['jobId']}"


def test_a_character_job_streams_to_completion(live):
    job = queue_character(live.url, live.headers())
    stream = read_stream(live.url + stream_path(job), live.headers())
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache" and stream.headers["x-accel-buffering"] == "no"
    assert stream.retry == 3000 and stream.ended
    events = [e for _, e in stream.events if e["type"] == "job_update"]
    assert any(e["type"] == "job_log" for _, e in stream.events), "the demo character job logs a few lines"
    assert all(set(e) == FIELDS and e["type"] == "job_update" and e["jobId"] == job["jobId"] for e in events)
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 100
    assert len(events) >= 4, "one event per stage"
    assert events[-1]["status"] == "completed" and set(events[-1]["result"]) == {"characterId"}
    assert all(e["status"] == "active" for e in events[:-1] if e["status"] != "pending")
    ids = [i for i, _ in stream.events]
    assert ids == sorted(set(ids)), "ids strictly increase"
    assert [e["updatedAt"] for e in events] == sorted(e["updatedAt"] for e in events)
    for a, b in zip(events, events[1:]):
        assert {k: a[k] for k in FIELDS - {"updatedAt"}} != {k: b[k] for k in FIELDS - {"updatedAt"}}, "no repeats"
    character = httpx.get(f"{live.url}/api/v1/characters/{events[-1]['result']['characterId']}", headers=live.headers())
    assert character.status_code == 200 and character.json()["data"]["name"] == "Aria"


def test_each_event_is_one_write_with_id_and_one_data_line(live):
    job = queue_character(live.url, live.headers())
    head, chunks = raw_chunks(live.url + stream_path(job), live.headers(), until=b'"completed"')
    assert b"200 OK" in head.split(b"\r\n")[0]
    assert chunks[0].startswith(b"retry: ") and b"\ndata: " in chunks[0], "retry: in the first event's block"
    assert chunks[0].split(b"\n")[1].startswith(b"id: "), "no blank line between retry: and the first event"
    events = [c for c in chunks if b"data: " in c]
    assert events and any(b'"completed"' in c for c in events)
    assert all(c.endswith(b"\n\n") == (b"data: " in c) for c in chunks), "only blocks with data: end in a blank line"
    for chunk in events:
        lines = chunk.decode().split("\n")
        if lines[0].startswith("retry: "):
            lines = lines[1:]
        assert lines[0].startswith("id: ") and lines[0][4:].isdigit()
        assert lines[1].startswith("data: ") and json.loads(lines[1][6:])["type"] in {"job_update", "job_log"}
        assert lines[2:] == ["", ""], "id, one data line, blank line, in a single write"
        assert "event:" not in chunk.decode()


def test_a_finished_job_gets_its_final_event_and_204_once_the_client_has_it(live):
    job = queue_character(live.url, live.headers())
    first = read_stream(live.url + stream_path(job), live.headers())
    final_id, final = first.events[-1]
    assert final["status"] == "completed"
    again = read_stream(live.url + stream_path(job), live.headers())
    assert again.ended and [e for _, e in again.events if e["type"] == "job_update"] == [final]
    assert again.events[-1][0] == final_id, "every log line, then the final event under its own id"
    older = read_stream(live.url + stream_path(job), {**live.headers(), "Last-Event-ID": str(first.events[0][0])})
    assert [e["status"] for _, e in older.events if e["type"] == "job_update"] == ["completed"]
    done = httpx.get(live.url + stream_path(job), headers={**live.headers(), "Last-Event-ID": str(final_id)})
    assert done.status_code == 204 and done.content == b""


def test_stream_url_works_without_a_header(live):
    job = queue_character(live.url, live.headers())
    stream = read_stream(live.url + job["streamUrl"])
    assert stream.status == 200 and stream.events[-1][1]["status"] == "completed"


def test_a_failing_job_ends_failed_with_a_short_reason(live):
    response = httpx.post(f"{live.url}/api/v1/media/queue", json={"characterId": "f" * 32, "kind": "image"},
                          headers=live.headers())
    job = response.json()["data"]
    stream = read_stream(live.url + stream_path(job), live.headers())
    final = stream.events[-1][1]
    assert final["status"] == "failed" and final["failedReason"] == "Character not found"
    assert final["result"] is None and stream.ended
    wait_until(lambda: "Traceback" in job_log(live.worker.log(), job["jobId"]), 30,
               "this job's traceback in the worker's log")


def test_media_job_renders_a_png_for_a_character(live):
    done = read_stream(live.url + stream_path(queue_character(live.url, live.headers())), live.headers())
    character_id = done.events[-1][1]["result"]["characterId"]
    job = httpx.post(f"{live.url}/api/v1/media/queue", json={"characterId": character_id, "kind": "image"},
                     headers=live.headers()).json()["data"]
    final = read_stream(live.url + stream_path(job), live.headers()).events[-1][1]
    assert final["status"] == "completed" and final["result"]["contentType"] == "image/png"
    image = httpx.get(live.url + final["result"]["url"], headers=live.headers())
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert httpx.get(live.url + final["result"]["url"], headers=live.headers("mallory")).status_code == 404


def test_a_job_queued_on_one_web_process_streams_from_another(live):
    other = WebServer(live.env, live.log_dir)
    try:
        job = queue_character(live.url, live.headers())
        stream = read_stream(other.url + stream_path(job), live.headers())
        assert stream.events[-1][1]["status"] == "completed"
    finally:
        other.stop()


# -- a web process with no worker: jobs stay pending until the test changes them ----------------------

def test_heartbeat_comments_keep_an_idle_stream_open(idle):
    job = queue_character(idle.url, idle.headers())
    _, chunks = raw_chunks(idle.url + stream_path(job), idle.headers(), until=b": keep-alive", timeout=5)
    assert chunks[-1] == b": keep-alive\n", "a lone comment line (no blank line) after SSE_HEARTBEAT_SECONDS (1 s here) of silence"
    assert sum(b"data: " in c for c in chunks) == 1, "the pending state once, no repeats"


def test_cancel_a_pending_job_ends_its_stream_with_canceled(idle):
    job = queue_character(idle.url, idle.headers())

    def cancel_when_open(events):
        if len(events) == 1:
            assert events[0][1]["status"] == "pending"
            httpx.post(f"{idle.url}/api/v1/jobs/character/{job['jobId']}/cancel", headers=idle.headers())
        return False

    stream = read_stream(idle.url + stream_path(job), idle.headers(), timeout=10, stop=cancel_when_open)
    assert [e["status"] for _, e in stream.events] == ["pending", "canceled"] and stream.ended


def test_a_state_whose_notification_was_lost_still_arrives(idle):
    """The hub's safety-net poll (HUB_POLL_SECONDS=1 here) finds changes nobody announced."""
    job = queue_character(idle.url, idle.headers())
    conn = redis.Redis.from_url(idle.redis_server.url)

    def change_silently(events):
        if len(events) == 1:
            stored = json.loads(conn.get(keys.job_state(job["jobId"])))
            stored["event"].update(status="failed", failedReason="lost in the post", updatedAt=stored["event"]["updatedAt"] + 5)
            conn.set(keys.job_state(job["jobId"]), json.dumps(stored))  # no PUBLISH
        return False

    # Nothing announces the change: only the hub's safety-net re-read (HUB_POLL_SECONDS=1) can find it.
    stream = read_stream(idle.url + stream_path(job), idle.headers(), timeout=30, stop=change_silently)
    assert [e["status"] for _, e in stream.events] == ["pending", "failed"] and stream.ended


def test_a_stream_ends_when_its_token_expires(idle):
    job = queue_character(idle.url, idle.headers())
    short = {"Authorization": f"Bearer {make_token('alice', ttl=2)}"}
    started = time.monotonic()
    stream = read_stream(idle.url + stream_path(job), short, timeout=60)
    assert stream.ended and time.monotonic() - started > 1, "ended by the token's expiry (the job never runs here)"
    assert [e["status"] for _, e in stream.events] == ["pending"]


# -- slow jobs: 1 s a step, streams live at most 3 s ---------------------------------------------------

def test_cancel_a_running_job(slow):
    job = queue_character(slow.url, slow.headers())

    def cancel_when_active(events):
        if events[-1][1]["status"] == "active" and events[-1][1]["progress"] >= 5 and not getattr(cancel_when_active, "done", False):
            cancel_when_active.done = True
            response = httpx.post(f"{slow.url}/api/v1/jobs/character/{job['jobId']}/cancel", headers=slow.headers())
            assert response.status_code == 200
        return False

    stream = read_stream(slow.url + stream_path(job), slow.headers(), timeout=10, stop=cancel_when_active)
    statuses = [e["status"] for _, e in stream.events if e["type"] == "job_update"]
    assert statuses[-1] == "canceled" and "completed" not in statuses and stream.ended
    conn = redis.Redis.from_url(slow.redis_server.url)
    wait_until(lambda: conn.hget(f"rq:job:{job['jobId']}", "status") == b"stopped", 30,
               "the worker to stop the running job")
    snapshot = httpx.get(f"{slow.url}/api/v1/jobs/character/{job['jobId']}", headers=slow.headers()).json()["data"]
    assert snapshot["status"] == "canceled"


def test_streams_end_at_the_maximum_lifetime_and_reconnects_resume(slow):
    job = queue_character(slow.url, slow.headers())
    started = time.monotonic()
    first = read_stream(slow.url + stream_path(job), slow.headers(), timeout=30)
    assert first.ended and time.monotonic() - started > 2.5, "ended by SSE_MAX_STREAM_SECONDS=3"
    first_updates = [e for _, e in first.events if e["type"] == "job_update"]
    assert first_updates[-1]["status"] in {"pending", "active"}
    last_id = first.events[-1][0]
    second = read_stream(slow.url + stream_path(job), {**slow.headers(), "Last-Event-ID": str(last_id)}, timeout=10)
    assert second.events[0][0] > last_id, "ids only increase across reconnects"
    second_updates = [e for _, e in second.events if e["type"] == "job_update"]
    assert second_updates[0]["progress"] >= first_updates[-1]["progress"]
    assert second_updates[-1]["status"] == "completed"
    first_lines = [line for _, e in first.events if e["type"] == "job_log" for line in e["lines"]]
    second_lines = [line for _, e in second.events if e["type"] == "job_log" for line in e["lines"]]
    assert len(first_lines + second_lines) == 4, "each log line once across the reconnect"


def test_a_replayed_state_never_hides_the_terminal_event(idle):
    """A reconnect replays the current state under a fresh id; a later terminal state still outranks it."""
    job = queue_character(idle.url, idle.headers())
    first = read_stream(idle.url + stream_path(job), idle.headers(), timeout=1.5)
    pending_id = first.events[0][0]
    replay = read_stream(idle.url + stream_path(job), {**idle.headers(), "Last-Event-ID": str(pending_id)}, timeout=1.5)
    replay_id = replay.events[0][0]
    assert replay.events[0][1] == first.events[0][1] and replay_id == pending_id + 1
    httpx.post(f"{idle.url}/api/v1/jobs/character/{job['jobId']}/cancel", headers=idle.headers())
    after = read_stream(idle.url + stream_path(job), {**idle.headers(), "Last-Event-ID": str(replay_id)})
    assert [e["status"] for _, e in after.events] == ["canceled"] and after.events[0][0] > replay_id
    done = httpx.get(idle.url + stream_path(job), headers={**idle.headers(), "Last-Event-ID": str(after.events[0][0])})
    assert done.status_code == 204 and "content-type" not in done.headers
