"""``flask --app wsgi watch <type> <jobId> --user <id>``: follow a job's stream from a shell.

It talks to the running service over HTTP like any client (``--url``, else ``JOBAPP_URL``, else
``http://localhost:$PORT``), with an access token it mints for ``--user`` from the app's own
``JWT_SECRET_KEY``. httpx-sse parses the stream; rich draws the progress bar (stage, message) with
the job's log lines (``job_log`` events) printed above it. On a terminal the bar is live; piped,
each change is one line, for scripts and CI logs.

Exit status: 0 completed, 1 failed, 2 an HTTP or connection error, 3 canceled.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

import click
import httpx
from flask import current_app
from flask.cli import with_appcontext
from httpx_sse import connect_sse
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from . import auth

EXIT = {"completed": 0, "failed": 1, "canceled": 3}
HTTP_ERROR = 2
#: Reconnects (with Last-Event-ID) when a stream ends before its job does: token expiry, the
#: server's maximum stream lifetime, a deploy.
MAX_RECONNECTS = 20


class Display:
    """The progress bar and log lines on a terminal; one plain line per change otherwise."""

    def __init__(self, console: Console, job_id: str) -> None:
        self.console = console
        self.live = console.is_terminal
        self.last_line: Optional[str] = None
        self.progress = Progress(TextColumn("[bold]{task.fields[status]:<9}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[stage]}"), TextColumn("[dim]{task.fields[message]}"),
                                 TimeElapsedColumn(), console=console, disable=not self.live)
        self.task = self.progress.add_task(job_id, total=100, status="connecting", stage="", message="")

    def __enter__(self) -> "Display":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, event: dict) -> None:
        stage, message = event.get("stage") or "", event.get("message") or ""
        self.progress.update(self.task, completed=event.get("progress") or 0, status=event["status"],
                             stage=stage, message=message)
        if not self.live:
            line = f"{event['status']:<9} {event.get('progress') or 0:>3}%  {stage}  {message}".rstrip()
            if line != self.last_line:
                self.console.print(line, highlight=False, markup=False)
                self.last_line = line

    def log(self, event: dict) -> None:
        if event.get("dropped"):
            self.console.print(f"[dim]… {event['dropped']} earlier log lines were dropped[/dim]")
        for line in event.get("lines") or []:
            self.console.print(f"[dim]│[/dim] {line}", highlight=False)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)


def error_message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "error"


def follow(base: str, job_type: str, job_id: str, token: str, display: Display) -> int:
    """Follow the stream to the job's terminal event; the exit status."""
    url = f"{base}/api/v1/sse/jobs/{job_type}/{job_id}"
    last_event_id: Optional[str] = None
    final: Optional[dict] = None
    timeout = httpx.Timeout(10.0, read=120.0)  # heartbeats arrive every SSE_HEARTBEAT_SECONDS (15 s)
    with httpx.Client(timeout=timeout) as client:
        for attempt in range(MAX_RECONNECTS + 1):
            headers = {"Authorization": f"Bearer {token}"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with connect_sse(client, "GET", url, headers=headers) as source:
                    response = source.response
                    if response.status_code == 204 and final is not None:
                        break  # the server confirms we have the terminal event
                    if response.status_code != 200:
                        response.read()
                        display.say(f"[red]HTTP {response.status_code}: {error_message(response)}[/red]")
                        return HTTP_ERROR
                    for sse in source.iter_sse():
                        if not sse.data:
                            continue
                        if sse.id:
                            last_event_id = sse.id
                        event = json.loads(sse.data)
                        if event.get("type") == "job_log":
                            display.log(event)
                        elif event.get("type") == "job_update":
                            display.update(event)
                            if event["status"] in EXIT:
                                final = event
                    if final is not None:
                        break
            except httpx.HTTPError as exc:
                if attempt == MAX_RECONNECTS:
                    display.say(f"[red]connection failed: {exc}[/red]")
                    return HTTP_ERROR
            time.sleep(min(5.0, 0.5 * (attempt + 1)))  # the stream ended early: reconnect
        else:
            display.say("[red]gave up reconnecting[/red]")
            return HTTP_ERROR
    if final is None:
        return HTTP_ERROR
    status = final["status"]
    if status == "completed":
        display.say(f"[green]completed[/green] {json.dumps(final.get('result'))}")
    elif status == "failed":
        display.say(f"[red]failed[/red]: {final.get('failedReason') or 'no reason given'}")
    else:
        display.say("[yellow]canceled[/yellow]")
    return EXIT[status]


@click.command("watch")
@click.argument("job_type")
@click.argument("job_id")
@click.option("--user", required=True, help="The job's owner: the token is minted for this user id.")
@click.option("--url", default=None, help="The service's base URL [default: $JOBAPP_URL, else http://localhost:$PORT].")
@with_appcontext
def watch(job_type: str, job_id: str, user: str, url: Optional[str]) -> None:
    """Follow JOB_TYPE job JOB_ID's progress live; exit 0 completed, 1 failed, 3 canceled, 2 error."""
    base = (url or os.environ.get("JOBAPP_URL") or f"http://localhost:{current_app.config['JOBAPP'].PORT}").rstrip("/")
    token = auth.mint_access_token(user, 3600)
    console = Console(stderr=False)
    with Display(console, job_id) as display:
        code = follow(base, job_type, job_id, token, display)
    raise SystemExit(code)
