"""The per-process hub: wakes exactly the right streams, finds lost notifications, forgets closed streams."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx

from jobapp.devredis import RedisServer
from tests.sse_client import queue_character, raw_stream, read_until
from tests.support import ROOT


def run_probe(name: str, redis_url: str, timeout: float = 90) -> dict:
    """Run ``tests.<name>`` (a gevent script of its own) against ``redis_url``; its last JSON line."""
    out = subprocess.run([sys.executable, "-m", f"tests.{name}", redis_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hub_wakes_the_right_streams_and_returns_to_empty(redis_server):
    seen = run_probe("hub_probe", redis_server.url, 60)
    assert seen["watched_while_open"] == ["A", "B"]
    assert seen["a_woken"] == ["A"] and seen["ab_woken"] == ["A"]
    assert seen["b_woken"] == [], "a change to A must not wake a stream that watches only B"
    assert seen["b_after_lost_notice"] == {"B": 20}, "the safety-net poll delivers unannounced changes"
    assert seen["a_carried"] == {"A": 30}, "a state carried in the announcement is delivered as announced"
    assert seen["shared_between_streams"], "decoded once, the same event for every stream"
    assert seen["watched_after_close"] == [] and seen["cached_after_close"] == []


def metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_vanished_clients_leave_no_streams_or_registrations(idle):
    jobs = [queue_character(idle.url, idle.headers()) for _ in range(5)]
    sockets = [raw_stream(idle.url, f"/api/v1/sse/jobs/character/{jobs[i % len(jobs)]['jobId']}", idle.headers())
               for i in range(60)]
    for sock in sockets:
        read_until(sock, b"data: ")
    assert metric(idle.url, "jobapp_open_streams") == 60
    assert metric(idle.url, "jobapp_hub_watched_jobs") == 5
    for sock in sockets[:30]:
        sock.close()  # abruptly
    for sock in sockets[30:]:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and metric(idle.url, "jobapp_open_streams") > 0:
        time.sleep(0.3)  # gone clients are noticed at the next heartbeat write (1 s here)
    assert metric(idle.url, "jobapp_open_streams") == 0
    assert metric(idle.url, "jobapp_hub_watched_jobs") == 0


def test_streams_woken_by_one_append_share_one_log_read(redis_server):
    seen = run_probe("log_share_probe", redis_server.url, 60)
    assert seen["lines"] == [["one", "two"]] * 25, "every reader gets the lines"
    assert 1 <= seen["reads"] < 25, f"concurrent identical reads are shared, got {seen['reads']} reads for 25"
    assert seen["later"] == ["one", "two", "three"], "a reader that knows of a newer line reads it"


def test_rq_poll_skips_jobs_found_waiting_in_their_queue(redis_server):
    seen = run_probe("rqpoll_skip_probe", redis_server.url, 90)
    assert seen["placed"], "the place-in-line lookup found the job"
    assert seen["reads_while_waiting"] == 0, "a job still in its queue needs no read of RQ's hash"
    assert seen["read_after_leaving"], "a job that left its queue is read again"


def test_places_are_read_again_only_when_the_line_moves():
    server = RedisServer().start()  # its own: it counts every LLEN
    try:
        seen = run_probe("place_marks_probe", server.url, 90)
    finally:
        server.stop()
    assert seen["placed"], "the first lookup places every watched job"
    assert seen["scans_while_still"] == 0, "a line that does not move is not scanned again"
    assert seen["passes_while_still"] == 0, "nor are the places of its jobs gone over again"
    assert seen["moved"], "a job leaving the front moves everyone up"
    assert seen["corrected_by_full_read"], "the periodic full read catches a change the marks cannot see"
    assert seen["looks_while_still"] <= 12, f"{seen['looks_while_still']} looks at a still line in 6.5 s"
    assert seen["moved_after_news"], "an announced state brings the next look forward"


def test_a_state_goes_out_between_batches_of_new_places_not_after_them():
    seen = run_probe("place_pacing_probe", "", 60)
    assert seen["places"] == 5 * seen["batch"] and seen["positions"] == seen["places"], "every new place goes out"
    assert seen["state_at"] <= seen["batch"], f"the state waited behind {seen['state_at']} place wake-ups"
    assert seen["woken_again"] == 0, "an unchanged place wakes nobody"


def test_streams_opening_at_once_start_one_stream_count_refresher():
    server = RedisServer().start()  # its own: the shared service's refresher writes the same key
    try:
        seen = run_probe("streamcap_probe", server.url, 60)
    finally:
        server.stop()
    assert seen["opened"] == 20 and seen["total"] == 20 and seen["refusal"] is False, seen
    assert seen["refreshes"] == 1, f"{seen['refreshes']} refreshers renew this process's stream counts"


def test_a_hub_loop_that_dies_is_started_again_alone(redis_server):
    seen = run_probe("hub_restart_probe", redis_server.url, 60)
    assert seen["unchanged_while_alive"], seen
    assert seen["replaced"] == ["_place"], f"only the dead loop starts again: {seen}"
    assert seen["kept"] == sorted(set(seen["loops"]) - {"_place"}) and seen["live"] == len(seen["loops"]), seen


def test_a_job_forgotten_during_an_rq_poll_stays_forgotten(redis_server):
    seen = run_probe("rqpoll_forget_probe", redis_server.url, 60)
    assert seen["waiting_when_forgotten"] and seen["error"] == "None", seen
    assert not seen["closing_kept"], "a job no stream watches any more is kept in the poll's memory"
    assert seen["staying_kept"], seen
