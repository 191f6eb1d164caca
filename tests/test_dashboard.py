"""rq-dashboard at /rq: behind basic auth, reading jobs with RQ's JSON serializer."""

import json

import httpx

from tests.sse_client import queue_character, read_stream

OPS = ("ops", "dashboard-pass")


def test_dashboard_needs_basic_auth(live):
    assert httpx.get(f"{live.url}/rq/").status_code == 401
    assert httpx.get(f"{live.url}/rq/", auth=("ops", "wrong")).status_code == 401
    assert httpx.get(f"{live.url}/rq/0/data/queues.json").status_code == 401
    page = httpx.get(f"{live.url}/rq/", auth=OPS)
    assert page.status_code == 200 and "RQ" in page.text


def test_dashboard_shows_jobs_with_meaningful_descriptions(live):
    job = queue_character(live.url, live.headers(), name="Dashboarded")
    stream = read_stream(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers(), timeout=60)
    assert stream.events[-1][1]["status"] == "completed"  # the shared worker may first clear other tests' jobs
    queues = httpx.get(f"{live.url}/rq/0/data/queues.json", auth=OPS).json()
    assert "character" in {q["name"] for q in queues["queues"]}
    detail = httpx.get(f"{live.url}/rq/0/data/job/{job['jobId']}.json", auth=OPS)
    assert detail.status_code == 200, detail.text
    assert "Create character 'Dashboarded'" in detail.json()["description"]
    meta = json.loads(detail.json()["metadata"])  # the same progress the stream carried, in RQ's meta
    assert meta["progress"] == 85 and meta["stage"] == "save" and meta["owner"] == "alice"
    finished = httpx.get(f"{live.url}/rq/0/data/jobs/character/finished/100/desc/1.json", auth=OPS)
    assert finished.status_code == 200
    assert job["jobId"] in {j["id"] for j in finished.json()["jobs"]}
    workers = httpx.get(f"{live.url}/rq/0/data/workers.json", auth=OPS).json()
    assert len(workers["workers"]) >= 1


def metric_value(text: str, name: str, **labels) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (in any order)."""
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        metric, _, label_block = series.partition("{")
        if metric == name and all(f'{k}="{v}"' in label_block for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_metrics_count_finished_jobs_their_durations_and_queue_depth(live):
    before = httpx.get(f"{live.url}/metrics").text
    done_before = metric_value(before, "jobapp_jobs_finished_total", type="character", status="completed")
    runs_before = metric_value(before, "jobapp_job_duration_seconds_count", type="character")
    job = queue_character(live.url, live.headers(), name="Measured")
    read_stream(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers())
    after = httpx.get(f"{live.url}/metrics").text
    assert metric_value(after, "jobapp_jobs_finished_total", type="character", status="completed") == done_before + 1
    assert metric_value(after, "jobapp_job_duration_seconds_count", type="character") == runs_before + 1
    assert metric_value(after, "jobapp_job_duration_seconds_bucket", type="character", le="+Inf") == runs_before + 1
    assert metric_value(after, "jobapp_queue_depth", queue="character") >= 0
    assert metric_value(after, "jobapp_events_sent_total") > 0
    assert "jobapp_stream_duration_seconds_count" in after and "jobapp_open_streams" in after
