"""A team's own job types: loaded by JOBAPP_JOBS, RQ's save_meta() idiom, a plain `rq worker`, enqueue()
from a script and the `flask queue` command, progress.track — real Redis, gunicorn and workers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from jobapp import keys

from .conftest import Live
from .sse_client import read_stream
from .support import ROOT, Process, WorkerProcess

MODULES = "jobapp.demo,examples.wordcount,tests.jobmods.metajob,tests.jobmods.tracker"
RQ = str(Path(sys.executable).parent / "rq")


@pytest.fixture(scope="module")
def own(artifacts):
    """Web with the example and test job types; jobapp's worker on their queues, except `metajob`, which
    only a plain `rq worker` (RQ's CLI, JSON serializer, no jobapp class or hook) serves."""
    svc = Live(artifacts, workers=0, JOBAPP_JOBS=MODULES, WORDCOUNT_STEP_SECONDS="0.3",
               HUB_RQ_POLL_SECONDS="0.25", WORKER_HEARTBEAT_SECONDS="1", DEAD_WORKER_SECONDS="3")
    svc.worker = WorkerProcess(svc.env, artifacts, queues=("character", "media", "wordcount", "track"))
    svc.plain = plain_worker(svc, artifacts)
    yield svc
    svc.plain.stop()
    svc.stop()


def plain_worker(svc: Live, artifacts: Path) -> Process:
    return Process([RQ, "worker", "--serializer", "rq.serializers.JSONSerializer", "--url", svc.redis_server.url,
                    "--job-monitoring-interval", "1", "metajob"], svc.env,
                   artifacts / f"rq-worker-{time.monotonic_ns()}.log")


def queue(svc: Live, route: str, body: dict, user: str = "alice") -> dict:
    response = httpx.post(f"{svc.url}/api/v1/{route}/queue", json=body, headers=svc.headers(user), timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def events_of(svc: Live, data: dict, timeout: float = 30) -> list[dict]:
    stream = read_stream(svc.url + data["streamUrl"], timeout=timeout)
    assert stream.status == 200 and stream.ended, stream
    return [event for _, event in stream.events]


def assert_contract(events: list[dict]) -> None:
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), "progress never decreases"
    content = [{k: v for k, v in e.items() if k != "updatedAt"} for e in events]
    assert all(a != b for a, b in zip(content, content[1:])), "one event per change, no repeats"


TEXT = "\n".join(["the quick brown fox", "jumps over the lazy dog", "the dog sleeps", "a fox runs",
                  "the end"] * 4)


def test_an_example_type_from_outside_jobapp_streams_every_save_meta_and_its_file(own):
    data = queue(own, "word-counts", {"text": TEXT, "top": 3})
    assert data["type"] == "wordcount" and data["status"] == "pending"
    events = events_of(own, data)
    assert_contract(events)
    progress = [e["progress"] for e in events if e["status"] == "active"]
    assert {18, 36, 54, 72, 90, 95} <= set(progress), f"every save_meta() is streamed: {progress}"
    final = events[-1]
    assert final["status"] == "completed" and final["progress"] == 100
    assert final["result"]["top"][0] == ["the", 16] and final["result"]["words"] == 68
    csv = httpx.get(own.url + final["result"]["url"], headers=own.headers())
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[:2] == ["word,count", "the,16"]
    assert "word-counts.csv" in csv.headers["content-disposition"]
    assert httpx.get(own.url + final["result"]["url"], headers=own.headers("mallory")).status_code == 404

    listed = httpx.get(f"{own.url}/api/v1/jobs", headers=own.headers()).json()["data"]
    assert any(j["jobId"] == data["jobId"] and j["jobType"] == "wordcount" for j in listed)
    document = httpx.get(f"{own.url}/api/v1/openapi.json").json()
    assert "/api/v1/word-counts/queue" in document["paths"]
    assert document["components"]["schemas"]["WordCountRequest"]["properties"]["text"]["type"] == "string"
    assert "wordcount" in document["components"]["schemas"]["JobUpdate"]["properties"]["jobType"]["enum"]
    types = httpx.get(f"{own.url}/api/v1/job-types", headers=own.headers()).json()["data"]
    assert [t["name"] for t in types] == ["character", "media", "wordcount", "metajob", "track"]


def test_invalid_params_are_400_with_the_fields(own):
    response = httpx.post(f"{own.url}/api/v1/word-counts/queue", json={"text": "", "top": 0},
                          headers=own.headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == {"text", "top"}


def test_a_plain_rq_worker_job_streams_its_save_meta_progress_and_final_state(own):
    data = queue(own, "meta-steps", {"steps": 3, "pause": 0.8})  # saves 0.8 s apart; the hub reads RQ every 0.25 s
    events = events_of(own, data)
    assert_contract(events)
    active = [(e["progress"], e["stage"]) for e in events if e["status"] == "active"]
    assert [(25, "step-1"), (50, "step-2"), (75, "step-3")] == [a for a in active if a[0]], active
    assert events[-1]["status"] == "completed" and events[-1]["result"] == {"steps": 3}
    assert "Started" in own.plain.log() or "metajob" in own.plain.log()


def test_an_unwatched_plain_rq_worker_job_reads_finished_in_its_snapshot_and_the_list(own):
    user = "unwatched-user"
    data = queue(own, "meta-steps", {"steps": 1, "pause": 0.1}, user=user)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # no stream is open: nothing but the snapshot itself reads RQ's hash
        snapshot = httpx.get(own.url + data["statusUrl"], headers=own.headers(user)).json()["data"]
        if snapshot["status"] == "completed":
            break
        time.sleep(0.3)
    assert snapshot["status"] == "completed" and snapshot["result"] == {"steps": 1}, snapshot
    listed = httpx.get(f"{own.url}/api/v1/jobs", headers=own.headers(user)).json()["data"]
    assert [(j["jobId"], j["status"]) for j in listed] == [(data["jobId"], "completed")]


def test_a_dead_plain_worker_is_caught_by_the_reaper(own, artifacts):
    data = queue(own, "meta-steps", {"steps": 10, "pause": 1.0})
    first = read_stream(own.url + data["streamUrl"], timeout=20,
                        stop=lambda evs: any(e["progress"] >= 20 for _, e in evs))
    assert first.events[-1][1]["status"] == "active"
    own.plain.kill_all()
    try:
        final = events_of(own, {"streamUrl": data["streamUrl"]}, timeout=30)[-1]
        assert final["status"] == "failed" and final["failedReason"] == "The worker running this job died"
    finally:
        own.plain = plain_worker(own, artifacts)


def test_track_over_100000_items_records_a_few_states_a_second(own):
    conn = redis.Redis.from_url(own.redis_server.url)
    pubsub = conn.pubsub()
    pubsub.subscribe(keys.CHANGES_CHANNEL)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    data = queue(own, "track", {"items": 100_000, "seconds": 1.5})
    events = events_of(own, data)
    assert events[-1]["status"] == "completed" and events[-1]["result"] == {"sum": sum(range(100_000))}
    assert_contract(events)
    stamps = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:  # every state recorded, each announced once
        if message["data"].partition(b" ")[0] == data["jobId"].encode():  # "<job id> <state>"
            stamps.append(message)
    pubsub.close()
    records = [e for e in events if e["status"] == "active"]
    assert len(records) >= 3, "the loop reports as it goes"
    running = (records[-1]["updatedAt"] - records[0]["updatedAt"]) / 1000
    # At most a few states a second (the helper's floor is 0.3 s apart), never one per item.
    assert len(records) <= len(stamps) <= 5 + 4 * max(running, 1.0), (len(stamps), running)
    assert records[-1]["message"] == "100,000 of 100,000" and records[-1]["stage"] == "loop"


def test_enqueue_from_a_plain_script_gives_a_stream_url_that_completes(own):
    script = ("import json, sys\n"
              "from jobapp import enqueue, InvalidParams\n"
              "print(json.dumps(enqueue('wordcount', {'text': 'one two two'}, owner='script-user')))\n"
              "try:\n"
              "    enqueue('wordcount', {'text': 5}, owner='script-user')\n"
              "except InvalidParams as exc:\n"
              "    print(json.dumps({'error': exc.message, 'fields': exc.fields}))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=own.env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    queued, refused = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert queued["type"] == "wordcount" and queued["status"] == "pending"
    assert queued["streamUrl"].startswith(f"/api/v1/sse/jobs/wordcount/{queued['jobId']}?token=")
    final = events_of(own, queued)[-1]
    assert final["status"] == "completed" and final["result"]["top"][0] == ["two", 2]
    assert set(refused["fields"]) == {"text"} and "text" in refused["error"]


def test_the_flask_queue_command_prints_the_queue_answer(own):
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "queue"]
    out = subprocess.run([*flask, "wordcount", "--user", "cli-user", '{"text": "a b b c c c"}'], cwd=ROOT,
                         env=own.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    queued = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(queued) == {"jobId", "type", "status", "streamUrl", "statusUrl"}
    final = events_of(own, queued)[-1]
    assert final["status"] == "completed" and final["result"]["top"][0] == ["c", 3]
    snapshot = httpx.get(own.url + queued["statusUrl"], headers=own.headers("cli-user"))
    assert snapshot.status_code == 200 and snapshot.json()["data"]["status"] == "completed"

    bad = subprocess.run([*flask, "wordcount", "--user", "cli-user", '{"text": "x", "top": "ten"}'], cwd=ROOT,
                         env=own.env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "top" in bad.stderr and "invalid params" in bad.stderr
    unknown = subprocess.run([*flask, "nope", "--user", "cli-user", "{}"], cwd=ROOT, env=own.env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "No job type 'nope'" in unknown.stderr


def test_the_live_page_offers_the_example_type_with_a_form_from_its_schema(own, browser):
    from .test_page import signed_in_page

    page, errors = signed_in_page(browser, own.url, "page-wordcount")
    form = "form.job-type[data-type='wordcount']"
    page.wait_for_selector(form)
    assert page.locator(f"{form} textarea[name='text']").count() == 1  # a long string: a text area
    assert page.input_value(f"{form} input[name='top']") == "10"  # the schema's default
    assert page.locator("form.job-type[data-type='metajob']").count() == 1
    assert page.is_visible("#create-character"), "the character form keeps its own touches"
    page.fill(f"{form} textarea[name='text']", "red green green blue blue blue")
    page.fill(f"{form} input[name='top']", "2")
    page.click(f"{form} button[type='submit']")
    done = ".job[data-status='completed'] pre.json"
    page.wait_for_selector(done, timeout=30000)
    shown = json.loads(page.text_content(done))
    assert shown["top"] == [["blue", 3], ["green", 2]]
    assert page.is_visible(".job[data-status='completed'] button.download")
    with page.expect_download() as download:
        page.click(".job[data-status='completed'] button.download")
    assert download.value.suggested_filename == "word-counts.csv"
    assert Path(download.value.path()).read_text().splitlines()[1] == "blue,3"
    assert not errors
