"""Many jobs on one connection (GET /api/v1/sse/jobs) and the job list (GET /api/v1/jobs)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from tests.sse_client import queue_character, raw_stream, read_stream, read_until


def all_terminal(ids):
    def stop(events):
        latest = {e["jobId"]: e["status"] for _, e in events if e["type"] == "job_update"}
        return all(latest.get(i) in {"completed", "failed", "canceled"} for i in ids)
    return stop


def test_the_job_list_is_newest_first_paginated_filtered_and_private(idle):
    mine = [queue_character(idle.url, idle.headers("lister"), name=f"J{i}")["jobId"] for i in range(5)]
    theirs = queue_character(idle.url, idle.headers("someone-else"))["jobId"]
    httpx.post(f"{idle.url}/api/v1/jobs/character/{mine[1]}/cancel", headers=idle.headers("lister"))
    listed = httpx.get(f"{idle.url}/api/v1/jobs", headers=idle.headers("lister")).json()
    assert [e["jobId"] for e in listed["data"]] == mine[::-1]
    assert theirs not in {e["jobId"] for e in listed["data"]}
    assert all(e["type"] == "job_update" and "streamUrl" in e for e in listed["data"])
    assert listed["nextCursor"] is None and listed["streamUrl"].startswith("/api/v1/sse/jobs?token=")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{idle.url}/api/v1/jobs", params=params, headers=idle.headers("lister")).json()
        assert len(page["data"]) <= 2
        seen += [e["jobId"] for e in page["data"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == mine[::-1]
    canceled = httpx.get(f"{idle.url}/api/v1/jobs?status=canceled", headers=idle.headers("lister")).json()["data"]
    assert [e["jobId"] for e in canceled] == [mine[1]]
    for bad in ({"status": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "!!!"}):
        response = httpx.get(f"{idle.url}/api/v1/jobs", params=bad, headers=idle.headers("lister"))
        assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_ten_jobs_through_one_connection(live):
    jobs = [queue_character(live.url, live.headers("ten"), name=f"Ten{i}")["jobId"] for i in range(10)]
    ids = ",".join(jobs)
    stream = read_stream(f"{live.url}/api/v1/sse/jobs?ids={ids}", live.headers("ten"), timeout=30,
                         stop=all_terminal(jobs))
    assert stream.status == 200
    by_job: dict[str, list] = {}
    for _, event in stream.events:
        if event["type"] == "job_update":
            by_job.setdefault(event["jobId"], []).append(event)
    assert set(by_job) == set(jobs)
    for events in by_job.values():
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and events[-1]["status"] == "completed"
        assert events[-1]["progress"] == 100 and "characterId" in events[-1]["result"]
    ids_seen = [i for i, _ in stream.events]
    assert ids_seen == sorted(set(ids_seen)), "event ids strictly increase across jobs"
    # Every job has finished: the stream still stays open, its heartbeat comes after the last terminal event.
    sock = raw_stream(live.url, f"/api/v1/sse/jobs?ids={ids}", live.headers("ten"), timeout=30)
    try:
        received = b""
        while received.count(b'"status":"completed"') < len(jobs):
            received += read_until(sock, b"\n\n")
        read_until(sock, b": keep-alive")  # fails ("stream closed early") if the server ended it
    finally:
        sock.close()


def test_foreign_and_unknown_ids_are_left_out_silently(idle):
    mine = queue_character(idle.url, idle.headers("owner"))["jobId"]
    foreign = queue_character(idle.url, idle.headers("stranger"))["jobId"]
    ids = f"{mine},{foreign},00000000-0000-4000-8000-000000000000,../../x"
    stream = read_stream(f"{idle.url}/api/v1/sse/jobs?ids={ids}", idle.headers("owner"), timeout=3)
    assert stream.status == 200
    assert {e["jobId"] for _, e in stream.events} == {mine}
    too_many = ",".join(str(uuid.uuid4()) for _ in range(101))
    assert httpx.get(f"{idle.url}/api/v1/sse/jobs?ids={too_many}", headers=idle.headers("owner")).status_code == 400


def test_without_ids_it_follows_unfinished_jobs_and_new_ones_but_never_another_users(idle):
    before = queue_character(idle.url, idle.headers("follower"))["jobId"]
    done = queue_character(idle.url, idle.headers("follower"))["jobId"]
    httpx.post(f"{idle.url}/api/v1/jobs/character/{done}/cancel", headers=idle.headers("follower"))
    queued = {}
    started: list[threading.Thread] = []

    def queue_now():
        queued["other"] = queue_character(idle.url, idle.headers("intruder"))["jobId"]
        queued["mine"] = queue_character(idle.url, idle.headers("follower"))["jobId"]

    def stop(events):
        if not started:  # the stream is open and has sent its first state: queue while connected
            started.append(threading.Thread(target=queue_now))
            started[0].start()
        return any(e["jobId"] == queued.get("mine") for _, e in events)

    stream = read_stream(f"{idle.url}/api/v1/sse/jobs", idle.headers("follower"), timeout=30, stop=stop)
    started[0].join(30)
    seen = {e["jobId"] for _, e in stream.events}
    assert before in seen and queued["mine"] in seen, "a job queued while connected appears"
    assert done not in seen, "finished jobs are not part of the default set"
    assert queued["other"] not in seen


def test_reconnect_gets_every_watched_jobs_current_state(idle):
    jobs = [queue_character(idle.url, idle.headers("again"))["jobId"] for _ in range(3)]
    url = f"{idle.url}/api/v1/sse/jobs?ids={','.join(jobs)}"
    first = read_stream(url, idle.headers("again"), timeout=30,
                        stop=lambda events: {e["jobId"] for _, e in events} >= set(jobs))
    last_id = first.events[-1][0]
    httpx.post(f"{idle.url}/api/v1/jobs/character/{jobs[0]}/cancel", headers=idle.headers("again"))
    second = read_stream(url, {**idle.headers("again"), "Last-Event-ID": str(last_id)}, timeout=30,
                         stop=lambda events: {e["jobId"] for _, e in events} >= set(jobs))
    latest = {e["jobId"]: e["status"] for _, e in second.events}
    assert latest == {jobs[0]: "canceled", jobs[1]: "pending", jobs[2]: "pending"}
    assert second.events[0][0] > last_id


def test_the_list_stream_url_works_in_a_browser_style_request(idle):
    job = queue_character(idle.url, idle.headers("browser"))["jobId"]
    listed = httpx.get(f"{idle.url}/api/v1/jobs", headers=idle.headers("browser")).json()
    stream = read_stream(idle.url + listed["streamUrl"], timeout=30, stop=lambda events: bool(events))
    assert stream.status == 200 and {e["jobId"] for _, e in stream.events} == {job}
    single = httpx.get(f"{idle.url}/api/v1/jobs/character/{job}", headers=idle.headers("browser")).json()["data"]
    refused = httpx.get(idle.url + "/api/v1/sse/jobs?token=" + single["streamUrl"].split("token=")[1])
    assert refused.status_code == 401, "a one-job stream token does not open the user's stream"
