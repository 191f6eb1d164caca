"""jobapp behind the reverse proxies people put in front of it: Debian's nginx with a stock
``proxy_pass`` (buffering on, HTTP/1.0 to the upstream: nginx's defaults) and Caddy's
``reverse_proxy``, each run as this user with its own prefix, temp dirs and a free port.

- events arrive as they happen, not when the response ends (``X-Accel-Buffering: no`` is what
  turns nginx's buffering off for the stream);
- the stream ends after the terminal event;
- heartbeats keep nginx's ``proxy_read_timeout`` from cutting an idle stream (3 s here instead of
  the default 60 s, with ``SSE_HEARTBEAT_SECONDS=1``), and without them it would be cut.

The packages come from the Makefile's ``proxies`` target (``make test`` depends on it).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

from jobapp.devredis import free_port

from .sse_client import queue_character

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"


class Proxy:
    """A reverse proxy process on 127.0.0.1:<free port> in front of ``upstream`` (a base URL)."""

    def __init__(self, kind: str, upstream: str, read_timeout: Optional[int] = None) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"jobapp-{kind}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        target = upstream.removeprefix("http://")
        self.log = self.dir / "proxy.log"
        env = dict(os.environ)
        if kind == "nginx":
            assert Path(NGINX).is_file(), "nginx is not installed: run `make proxies`"
            config = self.dir / "nginx.conf"
            config.write_text(self._nginx_config(target, read_timeout))
            args = [NGINX, "-p", str(self.dir), "-c", str(config), "-e", str(self.dir / "error.log")]
        else:
            assert Path(CADDY).is_file(), "caddy is not installed: run `make proxies`"
            config = self.dir / "Caddyfile"
            config.write_text(
                "{\n\tadmin off\n\tauto_https off\n}\n"
                f"http://127.0.0.1:{self.port} {{\n\treverse_proxy {target}\n}}\n")
            env.update(HOME=str(self.dir), XDG_DATA_HOME=str(self.dir / "data"), XDG_CONFIG_HOME=str(self.dir / "config"))
            args = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
        self._out = open(self.log, "wb")
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            assert self.popen.poll() is None, f"{self.kind} exited:\n{self.log.read_text()}{self.error_log()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{self.kind} not ready:\n{self.log.read_text()}{self.error_log()}"
            time.sleep(0.1)

    def _nginx_config(self, target: str, read_timeout: Optional[int]) -> str:
        """A stock reverse-proxy config: nothing about SSE, buffering or HTTP versions is set."""
        user = pwd.getpwuid(os.geteuid()).pw_name
        temp = "\n".join(f"    {name}_temp_path {self.dir / name};"
                         for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        timeout = f"\n            proxy_read_timeout {read_timeout}s;" if read_timeout else ""
        return f"""daemon off;
{'user ' + user + ';' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {self.dir / 'nginx.pid'};
error_log {self.dir / 'error.log'} info;
events {{ worker_connections 256; }}
http {{
    access_log {self.dir / 'access.log'};
{temp}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://{target};{timeout}
        }}
    }}
}}
"""

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Reading:
    events: list = field(default_factory=list)  # (arrival monotonic time, payload)
    heartbeats: list = field(default_factory=list)  # arrival monotonic times
    ended: bool = False  # the response ended cleanly
    cut: Optional[str] = None  # the connection broke mid-response (the error)
    opened: float = 0.0
    closed_at: float = 0.0


def read_through(url: str, headers: dict, timeout: float, on_event: Optional[Callable] = None) -> Reading:
    """Read an SSE response line by line with arrival times, until it ends, breaks or ``timeout``."""
    reading = Reading(opened=time.monotonic())
    deadline = reading.opened + timeout
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout, read=timeout)) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                now = time.monotonic()
                if line.startswith("data: "):
                    reading.events.append((now, json.loads(line[6:])))
                    if on_event:
                        on_event(reading)
                elif line.startswith(":"):
                    reading.heartbeats.append(now)
                if now > deadline:
                    break
            else:
                reading.ended = True
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        reading.cut = repr(exc)
    reading.closed_at = time.monotonic()
    return reading


@pytest.fixture(params=["nginx", "caddy"])
def proxied(request, idle):
    proxy = Proxy(request.param, idle.url)
    yield proxy
    proxy.stop()


def test_events_arrive_as_they_happen_and_the_stream_ends_after_the_terminal_event(proxied, idle):
    """A pending job's event arrives while the response is still open; the cancel made after it has
    arrived is delivered, and then the response ends."""
    job = queue_character(proxied.url, idle.headers())
    canceled_at = []

    def cancel_once_pending_arrived(reading: Reading) -> None:
        if len(reading.events) == 1:
            assert reading.events[0][1]["status"] == "pending"
            canceled_at.append(time.monotonic())
            answer = httpx.post(f"{proxied.url}/api/v1/jobs/character/{job['jobId']}/cancel", headers=idle.headers())
            assert answer.status_code == 200, answer.text

    reading = read_through(f"{proxied.url}/api/v1/sse/jobs/character/{job['jobId']}", idle.headers(), timeout=20,
                           on_event=cancel_once_pending_arrived)
    assert canceled_at, "the first event never arrived through the proxy before the response ended"
    assert [event["status"] for _, event in reading.events] == ["pending", "canceled"]
    assert reading.events[1][0] >= canceled_at[0], "the canceled event came after the cancel, as it happened"
    assert reading.ended and reading.cut is None, f"the stream ends cleanly after the terminal event ({reading.cut})"


def test_a_full_job_streams_through_nginx_and_ends(live):
    proxy = Proxy("nginx", live.url)
    try:
        job = queue_character(proxy.url, live.headers())
        reading = read_through(f"{proxy.url}/api/v1/sse/jobs/character/{job['jobId']}", live.headers(), timeout=20)
    finally:
        proxy.stop()
    statuses = [event["status"] for _, event in reading.events if event["type"] == "job_update"]
    assert statuses[-1] == "completed" and len(statuses) >= 3, statuses
    assert reading.ended and reading.cut is None


def test_heartbeats_keep_nginx_read_timeout_from_cutting_an_idle_stream(idle):
    """proxy_read_timeout 3 s (the default is 60 s; 2 s of margin for a loaded machine) and a
    heartbeat every second: the idle stream is still open after three timeouts' worth."""
    proxy = Proxy("nginx", idle.url, read_timeout=3)
    try:
        job = queue_character(proxy.url, idle.headers())
        url = f"{proxy.url}/api/v1/sse/jobs/character/{job['jobId']}"
        reading = read_through(url, idle.headers(), timeout=9)
        assert reading.cut is None, f"nginx cut the stream: {reading.cut}\n{proxy.error_log()}"
        assert not reading.ended and reading.closed_at - reading.opened >= 9, "still open after 3 × proxy_read_timeout"
        assert len(reading.heartbeats) >= 4, reading.heartbeats
        assert [event["status"] for _, event in reading.events] == ["pending"]
    finally:
        proxy.stop()


def test_without_heartbeats_nginx_cuts_an_idle_stream(service):
    """The control: heartbeats every 60 s against a 2 s proxy_read_timeout, and nginx ends the stream."""
    quiet = service(workers=0, SSE_HEARTBEAT_SECONDS="60")
    proxy = Proxy("nginx", quiet.url, read_timeout=2)
    try:
        job = queue_character(proxy.url, quiet.headers())
        reading = read_through(f"{proxy.url}/api/v1/sse/jobs/character/{job['jobId']}", quiet.headers(), timeout=15)
        assert reading.heartbeats == [] and [e["status"] for _, e in reading.events] == ["pending"]
        assert reading.cut or reading.ended, "the stream should have been cut"
        assert reading.closed_at - reading.opened < 12, "cut at about proxy_read_timeout, not at the read deadline"
        assert "upstream timed out" in proxy.error_log()
    finally:
        proxy.stop()
