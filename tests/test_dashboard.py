"""rq-dashboard at /rq: behind basic auth, reading jobs with RQ's JSON serializer."""

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
    read_stream(f"{live.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers())
    queues = httpx.get(f"{live.url}/rq/0/data/queues.json", auth=OPS).json()
    assert "character" in {q["name"] for q in queues["queues"]}
    detail = httpx.get(f"{live.url}/rq/0/data/job/{job['jobId']}.json", auth=OPS)
    assert detail.status_code == 200, detail.text
    assert "Create character 'Dashboarded'" in detail.json()["description"]
    finished = httpx.get(f"{live.url}/rq/0/data/jobs/character/finished/100/desc/1.json", auth=OPS)
    assert finished.status_code == 200
    assert job["jobId"] in {j["id"] for j in finished.json()["jobs"]}
    workers = httpx.get(f"{live.url}/rq/0/data/workers.json", auth=OPS).json()
    assert len(workers["workers"]) >= 1
