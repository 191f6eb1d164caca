"""``flask --app wsgi watch``: follows a job's stream over HTTP from the running service, with the
token it mints from the app's own secret, and exits by the job's end."""

from __future__ import annotations

import subprocess
import sys

import httpx
from rich.console import Console

from jobapp.watchcli import Display

from .sse_client import queue_character
from .support import ROOT


def watch(live, job_type: str, job_id: str, user: str = "alice", *extra: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "watch", job_type, job_id, "--user", user, *extra],
                          cwd=ROOT, env=env or {**live.env, "JOBAPP_URL": live.url}, capture_output=True, text=True,
                          timeout=120)


def test_a_completed_job_exits_0_with_its_stages_across_reconnects(slow):
    """1 s job steps and streams that end after 3 s: the watch sees the stages live and reconnects
    (with Last-Event-ID) until the job is done."""
    job = queue_character(slow.url, slow.headers("alice"), name="Watched")
    proc = watch(slow, "character", job["jobId"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith('completed {"characterId"') and "100%" in proc.stdout, proc.stdout
    active = [line for line in lines if line.startswith("active")]
    assert len(active) >= 2, f"a line per stage when piped:\n{proc.stdout}"


def test_a_failed_job_exits_1_with_its_reason_and_url_flag_wins(live):
    queued = httpx.post(f"{live.url}/api/v1/media/queue", json={"characterId": "0" * 32, "kind": "image"},
                        headers=live.headers("alice"), timeout=10).json()["data"]
    env = {**live.env, "JOBAPP_URL": "http://127.0.0.1:9"}  # nothing listens there: --url must be used
    proc = watch(live, "media", queued["jobId"], "alice", "--url", live.url, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("failed: ")


def test_another_user_s_job_is_an_http_error(live):
    job = queue_character(live.url, live.headers("alice"))
    proc = watch(live, "character", job["jobId"], "mallory")
    assert proc.returncode == 2 and "HTTP 404" in proc.stdout, proc.stdout + proc.stderr


def test_log_lines_are_printed_above_the_bar():
    console = Console(record=True, width=100, force_terminal=False)
    display = Display(console, "job")
    display.log({"type": "job_log", "jobId": "job", "seq": 12, "lines": ["fetched 3 sources", "wrote draft"], "dropped": 10})
    text = console.export_text()
    assert "10 earlier log lines were dropped" in text and "fetched 3 sources" in text and "wrote draft" in text


def test_on_a_terminal_the_bar_shows_stage_and_message():
    console = Console(record=True, width=120, force_terminal=True)
    with Display(console, "job") as display:
        display.update({"type": "job_update", "status": "active", "progress": 60, "stage": "backstory",
                        "message": "Writing backstory"})
        display.log({"type": "job_log", "jobId": "job", "seq": 1, "lines": ["drafted"], "dropped": 0})
    text = console.export_text()
    assert "backstory" in text and "Writing backstory" in text and "60%" in text and "drafted" in text
