"""The SSE benchmark: the hub (default watcher) against the per-stream 0.5 s poller, in one run.

    .venv/bin/python -m bench.run            # full run (~12 min), results in bench/results/
    .venv/bin/python -m bench.run --quick    # smaller run (~5-7 min)
    .venv/bin/python -m bench.run --table-only   # rebuild the table from bench/results/results.json

Both servers are the same app started the same way (``gunicorn -c gunicorn.conf.py wsgi:app``, one
gevent worker process each), side by side for the whole run, each on its own private redis-server so
each one's Redis commands can be counted apart: ``hub`` (``WATCHER=hub``) and ``poll``
(``WATCHER=poll POLL_INTERVAL_SECONDS=0.5``, the straightforward design, the reference). Phases run
in turn, each on one server while the other sits idle with no streams, so the two never compete
for the machine's two cores; each stream phase starts from a fresh, warmed-up web process. The
servers run from a copy of the code taken at the start. The load generator (``bench/sseload.py``)
always runs in its own process; this process samples /proc and Redis, and plays the RQ worker in
the latency phase. Before each phase it waits (a while) for other processes to leave the cores alone,
and records how much CPU they used during each measurement.

Phases, for each server, in this order:
  e2e        a real RQ worker runs a few demo jobs (JOB_STEP_SECONDS pacing) while a stream watches
             each; checks the whole path and gives worker-to-client latency under real pacing.
  enqueue    POST /api/v1/characters/queue over keep-alive connections: req/s and latency; the
             jobs it queues (no worker: they stay pending forever) are the ones streams watch.
  latency    1,000 streams on 1,000 jobs; this process updates all 1,000 states "at once" the way
             a worker does (job.meta, save_meta(), statestore.record()), several rounds; each
             event's latency is the client's receive time minus the event's updatedAt.
  hold-N     N streams, one per pending job, opened and held 60 s: errors, web-process CPU and RSS
             over the idle process, Redis commands/s (INFO total_commands_processed, our own
             sampling subtracted). The first hold also measures enqueue while its streams are open.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import redis
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobapp import statestore  # noqa: E402
from jobapp.config import DEV_SECRET  # noqa: E402
from jobapp.devredis import RedisServer, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
WSGI_APP = "wsgi:app"  # what gunicorn serves (diagnostics may wrap it)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- /proc ---------------------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


#: Processes of this benchmark (servers, redis-servers, load generators, this one): the rest of the
#: machine's CPU use is someone else's, and is reported so a disturbed measurement can be told apart.
OURS: set[int] = {os.getpid()}


def ours_cpu() -> float:
    total = 0.0
    for pid in list(OURS):
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):
            OURS.discard(pid)  # gone: its CPU leaves the sum, so windows that span an exit are approximate
    return total


def others_pct(seconds: float = 1.0) -> float:
    """Share of one core the rest of the machine used over ``seconds``."""
    m0, o0 = machine_busy(), ours_cpu()
    time.sleep(seconds)
    return 100 * ((machine_busy() - m0) - (ours_cpu() - o0)) / seconds


def wait_quiet(args, label: str) -> float:
    """Wait (up to --quiet-timeout) until other processes leave the cores alone: under
    --quiet-threshold % of one core for 3 s running. Returns the seconds waited."""
    start = time.monotonic()
    calm = 0
    warned = False
    while time.monotonic() - start < args.quiet_timeout:
        busy = others_pct(1.0)
        calm = calm + 1 if busy < args.quiet_threshold else 0
        if calm >= 3:
            break
        if not warned and time.monotonic() - start > 5:
            log(f"{label}: other processes use {busy:.0f}% of a core; waiting for a quiet machine")
            warned = True
    waited = round(time.monotonic() - start, 1)
    if waited >= args.quiet_timeout:
        log(f"{label}: machine still busy after {waited} s; measuring anyway (see others_cpu_pct)")
    return waited


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def tcp_rows():
    """The rows of the kernel's TCP tables, split (local address, remote address, state, ..., inode)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    yield line.split()
        except OSError:
            pass


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def tcp_conns(port: int) -> int:
    """Server-side connections on ``port`` (ESTABLISHED or CLOSE_WAIT): streams not yet reaped."""
    return sum(1 for parts in tcp_rows() if parts[3] in ("01", "08") and port_of(parts[1]) == port)


# -- the servers ---------------------------------------------------------------------------------------

def service_env(redis_url: str, **settings: str) -> dict:
    """The environment of a web process or worker: this machine's, minus any jobapp settings, plus ours."""
    drop = ("JOBAPP_", "WATCHER", "SSE_", "JOB_", "RATE_", "MAX_", "REDIS_", "HUB_", "POLL_", "GUNICORN_",
            "WEB_CONCURRENCY", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"REDIS_URL": redis_url, "JWT_SECRET_KEY": DEV_SECRET, "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in settings.items()})
    return env


class Proc:
    """A child process (its own session) logging to a file."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def stop(self, timeout: float = 25) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


class WebServer(Proc):
    """``gunicorn -c gunicorn.conf.py wsgi:app`` with one worker process, as the Procfile runs it."""

    def __init__(self, app_dir: Path, env: dict, log_dir: Path, cmd: Optional[list[str]] = None) -> None:
        """``cmd`` (with ``{port}``) starts another server instead, e.g. a reference's uvicorn."""
        self.port = free_port()
        env = {**env, "PORT": str(self.port), "WEB_CONCURRENCY": "1"}
        cmd = [c.replace("{port}", str(self.port)) for c in cmd] if cmd else \
            [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", WSGI_APP]
        super().__init__(cmd, app_dir, env, log_dir / f"web-{self.port}.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"web server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"web server not ready:\n{self.log_path.read_text()[-3000:]}")


class WorkerProcess(Proc):
    """``python worker.py``, as the Procfile runs it."""

    def __init__(self, app_dir: Path, env: dict, log_dir: Path, name: str) -> None:
        super().__init__([PY, "worker.py"], app_dir, env, log_dir / f"worker-{name}.log")


class Target:
    """One gunicorn web server (one gevent worker) on its own private redis-server."""

    def __init__(self, name: str, watcher_env: dict, args, log_dir: Path) -> None:
        self.name = name
        self.log_dir = log_dir
        self.app_dir = Path(args.app_dir).resolve()
        self.redis_server = RedisServer().start()
        self.env = service_env(self.redis_server.url, **self.settings(args), **watcher_env)
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.own_commands = 0  # commands this process sends to this Redis between samples
        self.paths_file = log_dir / f"{name}-paths.txt"
        self.restarts = 0
        self.web = WebServer(self.app_dir, self.env, log_dir)
        self.pid = self.worker_pid()
        OURS.update({self.redis_server.process.pid, self.web.popen.pid, self.pid})

    @staticmethod
    def settings(args) -> dict:
        # The service's defaults, except: stream tokens outlive the run, and the per-user queue rate
        # limit is checked on every request (its Redis commands and CPU count) but never refuses one.
        return {"SSE_HEARTBEAT_SECONDS": str(args.heartbeat), "HUB_POLL_SECONDS": str(args.hub_poll),
                "JOB_STEP_SECONDS": str(args.job_step_seconds), "STREAM_TOKEN_TTL": "21600",
                "RATE_LIMIT_QUEUE": "1000000/minute", "GUNICORN_WORKER_CONNECTIONS": str(args.worker_connections)}

    def worker_pid(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = children(self.web.popen.pid)
            if found:
                return found[0]
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no gunicorn worker process")

    def alive(self) -> bool:
        if self.web.popen.poll() is not None:
            return False
        return self.pid in children(self.web.popen.pid)

    def ensure_alive(self) -> None:
        if self.alive():
            return
        log(f"{self.name}: web server or its worker died; restarting it")
        self.restarts += 1
        self.restart()

    def restart(self) -> None:
        """A fresh web process on the same Redis (the jobs stay): each stream phase starts from an idle process."""
        self.web.stop()
        self.web = WebServer(self.app_dir, self.env, self.log_dir)
        self.pid = self.worker_pid()
        OURS.update({self.web.popen.pid, self.pid})

    @property
    def port(self) -> int:
        return self.web.port

    def commands(self) -> int:
        value = self.redis.info("stats")["total_commands_processed"]
        self.own_commands += 1
        return value

    def redis_clients(self) -> int:
        self.own_commands += 1
        return self.redis.info("clients")["connected_clients"]

    def sample(self) -> dict:
        """CPU seconds of the worker, its RSS and fds, and Redis's command counter, all at once."""
        pid = self.pid
        own_before = self.own_commands
        value = {"t": time.time(), "cpu": cpu_seconds(pid), "rss_kb": rss_kb(pid), "fds": fd_count(pid),
                 "master_cpu": cpu_seconds(self.web.popen.pid), "redis_cpu": cpu_seconds(self.redis_server.process.pid),
                 "machine": machine_busy(), "ours": ours_cpu()}
        value["commands"] = self.commands()
        value["own"] = own_before  # own commands sent before this sample's INFO
        return value

    def wait_reaped(self, timeout: float) -> float:
        """Wait until the server has let go of every client connection (closed streams are noticed
        only when a heartbeat write fails); returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if tcp_conns(self.port) == 0:
                break
            time.sleep(0.5)
        return round(time.monotonic() - start, 1)

    def stop(self) -> None:
        self.web.stop()
        self.redis_server.stop()


def window(a: dict, b: dict) -> dict:
    """CPU share of one core and Redis commands per second between two samples."""
    seconds = b["t"] - a["t"]
    own = b["own"] - a["own"]  # a's INFO and anything else we sent after it
    return {"seconds": round(seconds, 2),
            "cpu_pct": round(100 * (b["cpu"] - a["cpu"]) / seconds, 2),
            "master_cpu_pct": round(100 * (b["master_cpu"] - a["master_cpu"]) / seconds, 3),
            "redis_cps": round((b["commands"] - a["commands"] - own) / seconds, 2),
            "redis_cpu_pct": round(100 * (b["redis_cpu"] - a["redis_cpu"]) / seconds, 2),
            "machine_cpu_pct": round(100 * (b["machine"] - a["machine"]) / seconds, 1),
            "others_cpu_pct": round(100 * ((b["machine"] - a["machine"]) - (b["ours"] - a["ours"])) / seconds, 1)}


# -- the load generator in its own process -------------------------------------------------------------

class Load:
    def __init__(self, args: list[str], out: Path, timeout: float) -> None:
        self.out = out
        if out.exists():
            out.unlink()
        self.timeout = timeout
        self.started = time.monotonic()
        self.proc = subprocess.Popen([PY, "-m", "bench.sseload", *args, "--out", str(out)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        OURS.add(self.proc.pid)
        self.lines: "queue.Queue[dict]" = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, kind: str, timeout: float) -> Optional[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    return None
                continue
            if line.get("type") == kind:
                return line
        return None

    def result(self, stop: bool = False) -> dict:
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        remaining = max(5.0, self.timeout - (time.monotonic() - self.started))
        try:
            self.proc.wait(remaining)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if not self.out.exists():
            raise RuntimeError(f"load generator failed:\n{''.join(self.stderr)[-3000:]}")
        return json.loads(self.out.read_text())


def job_ids(paths_file: Path, count: int) -> list[str]:
    paths = [line.strip() for line in paths_file.read_text().splitlines() if line.strip()]
    return [re.search(r"/character/([0-9a-f-]{36})", p).group(1) for p in paths[:count]]


# -- phases --------------------------------------------------------------------------------------------

def fresh(t: Target, args, label: str) -> dict:
    """Restart the web process, warm it (streams opened and closed, so the hub and every lazy import
    are up), wait for a quiet machine, and return the idle process's sample."""
    for _ in range(3):
        t.restart()
        warm = Load(["streams", "--port", str(t.port), "--paths-file", str(t.paths_file), "--count", "20",
                     "--offset", "0", "--hold", "1"], RESULTS / f"{t.name}-warmup.json", timeout=60)
        warm.result()
        t.wait_reaped(args.reap_timeout)
        quiet = wait_quiet(args, f"{t.name} {label}")
        time.sleep(1.0)
        if t.alive():
            base = t.sample()
            base["waited_quiet_s"] = quiet
            return base
        log(f"{t.name} {label}: the web process went away while idle (stopped from outside?); again")
        t.restarts += 1
    raise RuntimeError(f"{t.name}: the web process keeps dying")


def attempt(t: Target, label: str, phase, *args):
    """Run a phase; if it fails because a process went away (another session's cleanup on a shared
    machine has stopped our servers before), restart what is needed and run it once more."""
    try:
        return phase(t, *args)
    except (OSError, RuntimeError, redis.RedisError) as exc:
        log(f"{t.name} {label}: failed ({type(exc).__name__}: {str(exc)[:200]}); restarting and retrying once")
        t.restarts += 1
        if t.redis_server.process is None or t.redis_server.process.poll() is not None:
            raise  # the jobs are gone with it
        t.restart()
        result = phase(t, *args)
        result["retried_after"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return result


def phase_enqueue(t: Target, args, count: int, jobs_out: Optional[Path], label: str,
                  warmup: Optional[int] = None, quiet: bool = True) -> dict:
    t.ensure_alive()
    warmup = args.enqueue_warmup if warmup is None else warmup
    waited = wait_quiet(args, f"{t.name} {label}") if quiet else 0.0
    before = t.sample()
    cli = ["enqueue", "--port", str(t.port), "--count", str(count), "--conns", str(args.enqueue_conns),
           "--warmup", str(warmup), "--users", str(args.users)]
    if jobs_out:
        cli += ["--jobs-out", str(jobs_out)]
    result = Load(cli, RESULTS / f"{t.name}-{label}.json", timeout=300).result()
    after = t.sample()
    result["server"] = window(before, after)
    result["server"]["cpu_ms_per_request"] = round(1000 * (after["cpu"] - before["cpu"]) / max(1, count + warmup), 3)
    result["server"]["redis_commands_per_request"] = round(
        (after["commands"] - before["commands"] - (after["own"] - before["own"])) / max(1, count + warmup), 1)
    result["waited_quiet_s"] = waited
    log(f"{t.name} {label}: {result['rps']} req/s, p50 {result['latency_ms'].get('p50')} ms, "
        f"p99 {result['latency_ms'].get('p99')} ms, statuses {result['statuses']}, errors {result['errors']}, "
        f"web {result['server']['cpu_pct']}% cpu, others {result['server']['others_cpu_pct']}%")
    return result


def phase_hold(t: Target, args, count: int, enqueue_during: int = 0) -> dict:
    base = fresh(t, args, f"hold-{count}")
    pid = t.pid
    hold = args.hold
    extra = 90 if enqueue_during else 0
    load = Load(["streams", "--port", str(t.port), "--paths-file", str(t.paths_file), "--count", str(count),
                 "--concurrency", str(args.concurrency), "--ramp-timeout", str(args.ramp_timeout),
                 "--hold", str(hold + extra + 30), "--max-silence", str(args.heartbeat * 2 + 10)],
                RESULTS / f"{t.name}-hold-{count}.json", timeout=args.ramp_timeout + hold + extra + 90)
    ready = load.wait_for("ready", args.ramp_timeout + 30)
    if ready is None:
        raise RuntimeError(f"{t.name}: load generator never got ready:\n{''.join(load.stderr)[-3000:]}")
    ramp_window = window(base, t.sample())
    log(f"{t.name} hold-{count}: ramp {ready['ramp_seconds']} s, open {ready['open']}, failed {ready['failed']}")
    t_ready = ready["t_ready"]
    time.sleep(max(0.0, t_ready + args.settle - time.time()))
    samples = [t.sample()]
    while time.time() < t_ready + hold:
        time.sleep(min(args.sample_every, max(0.0, t_ready + hold - time.time())))
        samples.append(t.sample())
    redis_clients = t.redis_clients()
    measure = window(samples[0], samples[-1])
    series = [window(a, b) for a, b in zip(samples, samples[1:])]
    during = None
    if enqueue_during:
        during = phase_enqueue(t, args, enqueue_during, None, f"enqueue-with-{count}-streams", quiet=False)
    result = load.result(stop=True)
    end = samples[-1]
    worker_same = t.alive() and t.pid == pid
    held = (result["opened"] == count and result["error_count"] == 0 and worker_same
            and result["held_seconds"] >= hold - 1)
    out = {
        "streams": count, "held_zero_errors": held, "worker_restarted": not worker_same,
        "ramp_seconds": result["ramp_seconds"], "ramp": ramp_window, "opened": result["opened"],
        "open_at_end": result["open_at_end"], "errors": result["errors"], "error_count": result["error_count"],
        "held_seconds": result["held_seconds"], "heartbeats": result["heartbeats"],
        "streams_without_heartbeat": result["streams_without_heartbeat"],
        "max_silence_seconds": result["max_silence_seconds"],
        "idle": measure, "series": series,
        "rss_idle_kb": base["rss_kb"], "rss_kb": end["rss_kb"],
        "rss_per_stream_kb": round((end["rss_kb"] - base["rss_kb"]) / max(1, result["opened"]), 2),
        "fds_idle": base["fds"], "fds": end["fds"], "redis_connected_clients": redis_clients,
        "waited_quiet_s": base["waited_quiet_s"], "enqueue_during": during,
    }
    log(f"{t.name} hold-{count}: held={held} opened {result['opened']} errors {result['errors']} "
        f"cpu {measure['cpu_pct']}% redis {measure['redis_cps']} cmd/s "
        f"rss {out['rss_per_stream_kb']} KB/stream ({base['rss_kb']} -> {end['rss_kb']} KB), "
        f"others {measure['others_cpu_pct']}%")
    return out


def update_burst(connection: redis.Redis, jobs: list[Job], round_no: int) -> float:
    """Record a new state for every job, exactly as a worker's progress.report() does."""
    start = time.time()
    for job in jobs:
        job.meta.update(progress=min(99, 10 * round_no), stage=f"bench-{round_no}",
                        message=f"Benchmark round {round_no}")
        job.save_meta()
        statestore.record(connection, job)
    return time.time() - start


def phase_latency(t: Target, args) -> dict:
    n, rounds = args.latency_streams, args.latency_rounds
    ids = job_ids(t.paths_file, n)
    connection = redis.Redis.from_url(t.redis_server.url)
    jobs = [Job.fetch(i, connection=connection, serializer=JSONSerializer) for i in ids]
    fresh(t, args, "latency")
    load = Load(["streams", "--port", str(t.port), "--paths-file", str(t.paths_file), "--count", str(n),
                 "--concurrency", str(args.concurrency), "--expect-updates", str(rounds), "--keep-latencies",
                 "--hold", str(rounds * args.latency_gap + 60), "--max-silence", str(args.heartbeat * 2 + 10)],
                RESULTS / f"{t.name}-latency.json", timeout=rounds * args.latency_gap + 200)
    ready = load.wait_for("ready", 120)
    if ready is None:
        raise RuntimeError(f"{t.name}: latency streams did not open\n{''.join(load.stderr)[-3000:]}")
    if ready["open"] != n:
        log(f"{t.name} latency: only {ready['open']} of {n} streams opened ({ready['failed']} failed)")
    time.sleep(1.0)
    before = t.sample()
    bursts = []
    for round_no in range(1, rounds + 1):
        bursts.append(round(update_burst(connection, jobs, round_no), 3))
        time.sleep(args.latency_gap)
    result = load.result(stop=False)
    after = t.sample()
    lat = result["latency_ms"]
    expected = ready["open"] * rounds  # events the streams that opened should get
    out = {"streams": n, "opened": ready["open"], "rounds": rounds, "expected_events": expected,
           "events": result["update_events"], "errors": result["errors"], "latency_ms": lat,
           "burst_seconds": bursts, "ids_increasing": result["ids_increasing"], "server": window(before, after)}
    log(f"{t.name} latency: {result['update_events']}/{expected} events, p50 {lat.get('p50')} ms, "
        f"p99 {lat.get('p99')} ms, max {lat.get('max')} ms; bursts {bursts} s; "
        f"others {out['server']['others_cpu_pct']}%")
    return out


def phase_e2e(t: Target, args) -> dict:
    """A real worker runs ``--e2e-jobs`` demo jobs while one stream watches each, start to finish."""
    t.ensure_alive()
    paths = RESULTS / f"{t.name}-e2e-paths.txt"
    enq = phase_enqueue(t, args, args.e2e_jobs, paths, "e2e-enqueue", warmup=0)
    load = Load(["streams", "--port", str(t.port), "--paths-file", str(paths), "--count", str(args.e2e_jobs),
                 "--allow-end", "--keep-latencies", "--hold", "120"], RESULTS / f"{t.name}-e2e.json", timeout=200)
    ready = load.wait_for("ready", 60)
    if ready is None:
        raise RuntimeError(f"{t.name}: e2e streams did not open\n{''.join(load.stderr)[-3000:]}")
    worker = WorkerProcess(t.app_dir, t.env, t.log_dir, t.name)
    OURS.add(worker.popen.pid)
    try:
        result = load.result(stop=False)
    finally:
        worker.stop()
    out = {"jobs": args.e2e_jobs, "job_step_seconds": args.job_step_seconds, "streams_ended": result["ended_by_server"],
           "events": result["update_events"], "updates_per_stream": result["updates_per_stream"],
           "errors": result["errors"], "latency_ms": result["latency_ms"], "ids_increasing": result["ids_increasing"]}
    log(f"{t.name} e2e: {result['ended_by_server']}/{args.e2e_jobs} streams ended with their job, "
        f"{result['update_events']} events, latency p50 {result['latency_ms'].get('p50')} ms "
        f"p99 {result['latency_ms'].get('p99')} ms")
    return out


# -- report --------------------------------------------------------------------------------------------

def machine() -> dict:
    import resource
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    import gevent
    import gunicorn
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_mb": int(mem) // 1024, "kernel": platform.release(),
            "python": platform.python_version(), "gevent": gevent.__version__, "gunicorn": gunicorn.__version__,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
            "somaxconn": open("/proc/sys/net/core/somaxconn").read().strip(),
            "port_range": open("/proc/sys/net/ipv4/ip_local_port_range").read().split()}


def code_state(app_dir: Path) -> dict:
    """Which code the servers ran: the commit and whether the tree had uncommitted changes."""
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=app_dir, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"app_dir": str(app_dir), "commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": [line for line in git("status", "--short").splitlines()
                            if line.split(maxsplit=1)[-1].split("/")[0] != "bench"]}


def fmt(value, unit="", digits=1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def ratio(better, worse, higher_is_better: bool) -> str:
    """How many times better the hub is than the reference."""
    try:
        value = better / worse if higher_is_better else worse / better
    except (TypeError, ZeroDivisionError):
        return "n/a"
    return f"{value:,.1f}x" if value < 100 else f"{value:,.0f}x"


def largest_held(holds: list[dict]) -> Optional[int]:
    held = [h["streams"] for h in holds if h["held_zero_errors"]]
    return max(held) if held else None


def table(results: dict) -> str:
    """The README table: both servers' figures, the target, and how many times better the hub is."""
    hub, poll = results["servers"]["hub"], results["servers"]["poll"]
    counts = sorted({h["streams"] for h in hub["holds"]} & {h["streams"] for h in poll["holds"]})
    big, small = (counts[-1], counts[0]) if counts else (None, None)

    def hold(server, n):
        return next((h for h in server["holds"] if h["streams"] == n), None)

    def held_text(server):
        n = largest_held(server["holds"])
        parts = [(fmt(n) if n else "none") + f" (tried {', '.join(fmt(h['streams']) for h in server['holds'])})"]
        for h in server["holds"]:
            if not h["held_zero_errors"]:
                parts.append(f"— at {fmt(h['streams'])}: {h['opened']:,} opened, "
                             f"{h['error_count']:,} errors{', worker restarted' if h['worker_restarted'] else ''}")
        return " ".join(parts)

    def pair(a, b, unit="", digits=1):
        return fmt(a, unit, digits), fmt(b, unit, digits)

    rows = [("Metric", "Target", "hub", "poll (reference)", "hub advantage")]
    rows.append(("Streams held 60 s by one web process, zero errors", "≥ 10,000",
                 held_text(hub), held_text(poll), ratio(largest_held(hub["holds"]), largest_held(poll["holds"]), True)))
    at = []
    for server in (hub, poll):
        n = largest_held(server["holds"])
        h = hold(server, n) if n else None
        cps = h["idle"]["redis_cps"] if h else 0
        at.append(f"{fmt(h['idle']['cpu_pct'], ' %')} CPU, {fmt(cps, digits=0 if cps >= 100 else 1)} Redis cmd/s, "
                  f"ramp {fmt(h['ramp_seconds'], ' s')}" if h else "n/a")
    rows.append(("… at that count: web-process CPU, Redis commands/s, time to open them all", "", *at, ""))
    for n in ([big, small] if big != small else [big]) if big else []:
        h, p = hold(hub, n), hold(poll, n)
        ok = p["held_zero_errors"]

        def ref(text):  # the reference's figure is not comparable once its streams fail
            return text if ok else f"{text} *"

        def r(*a):
            return ratio(*a) if ok and h["held_zero_errors"] else "n/a *"

        rows.append((f"RSS per open stream over the idle process, {n:,} streams", "≤ 20 KB" if n == big else "",
                     fmt(h["rss_per_stream_kb"], " KB"), ref(fmt(p["rss_per_stream_kb"], " KB")),
                     r(h["rss_per_stream_kb"], p["rss_per_stream_kb"], False)))
        rows.append((f"Redis commands/s (all of them), {n:,} idle streams", "< 50" if n == big else "",
                     fmt(h["idle"]["redis_cps"]), ref(fmt(p["idle"]["redis_cps"], digits=0)),
                     r(max(h["idle"]["redis_cps"], 0.01), p["idle"]["redis_cps"], False)))
        rows.append((f"Web-process CPU, {n:,} idle streams (% of one core)", "< 10 %" if n == big else "",
                     fmt(h["idle"]["cpu_pct"], " %"), ref(fmt(p["idle"]["cpu_pct"], " %")),
                     r(max(h["idle"]["cpu_pct"], 0.01), p["idle"]["cpu_pct"], False)))
    hl, pl = hub["latency"]["latency_ms"], poll["latency"]["latency_ms"]
    n_lat = hub["latency"]["streams"]
    rows.append((f"Delivery latency p50, {n_lat:,} streams on {n_lat:,} jobs updated at once", "< 5 ms",
                 *pair(hl.get("p50"), pl.get("p50"), " ms"), ratio(hl.get("p50"), pl.get("p50"), False)))
    rows.append(("Delivery latency p99", "< 50 ms", *pair(hl.get("p99"), pl.get("p99"), " ms"),
                 ratio(hl.get("p99"), pl.get("p99"), False)))
    rows.append(("Update events delivered / expected", "all",
                 f"{hub['latency']['events']:,} / {hub['latency']['expected_events']:,}",
                 f"{poll['latency']['events']:,} / {poll['latency']['expected_events']:,}", ""))
    hd, pd = (hold(hub, small), hold(poll, small)) if small else (None, None)
    if hd and pd and hd.get("enqueue_during") and pd.get("enqueue_during"):
        hq, pq = hd["enqueue_during"], pd["enqueue_during"]
        rows.append((f"Enqueue req/s, with {small:,} streams open on the same process", "≥ 1.5x reference",
                     fmt(hq["rps"], digits=0), fmt(pq["rps"], digits=0), ratio(hq["rps"], pq["rps"], True)))
        rows.append((f"Enqueue p99, with {small:,} streams open", "", *pair(hq["latency_ms"].get("p99"),
                     pq["latency_ms"].get("p99"), " ms"), ratio(hq["latency_ms"].get("p99"), pq["latency_ms"].get("p99"), False)))
    he, pe = hub["enqueue"], poll["enqueue"]
    rows.append((f"Enqueue req/s, no streams open (identical code path in both)", "",
                 fmt(he["rps"], digits=0), fmt(pe["rps"], digits=0), ratio(he["rps"], pe["rps"], True)))
    rows.append(("Enqueue p99, no streams open", "", *pair(he["latency_ms"].get("p99"), pe["latency_ms"].get("p99"), " ms"),
                 ratio(he["latency_ms"].get("p99"), pe["latency_ms"].get("p99"), False)))
    if hub.get("e2e") and poll.get("e2e"):
        he2, pe2 = hub["e2e"], poll["e2e"]
        rows.append((f"Real RQ worker, {he2['jobs']} demo jobs (JOB_STEP_SECONDS={he2['job_step_seconds']}): "
                     f"events / latency p50 / p99", "",
                     f"{he2['events']} / {fmt(he2['latency_ms'].get('p50'), ' ms')} / {fmt(he2['latency_ms'].get('p99'), ' ms')}",
                     f"{pe2['events']} / {fmt(pe2['latency_ms'].get('p50'), ' ms')} / {fmt(pe2['latency_ms'].get('p99'), ' ms')}",
                     ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    others = []
    for name in ("hub", "poll"):
        server = results["servers"][name]
        windows = [h["idle"] for h in server["holds"]] + [server["latency"]["server"], server["enqueue"]["server"]]
        others.append(f"{name} {max(w['others_cpu_pct'] for w in windows):.0f}%")
    lines.append("")
    failed = [f"{h['streams']:,}" for h in poll["holds"] if not h["held_zero_errors"]]
    if failed:
        lines.append(f"\\* The reference did not hold {' or '.join(failed)} streams: its figures there describe "
                     "a process whose streams were failing (see the first row), so no ratio is given.")
        lines.append("")
    lines.append("Other processes on the machine used at most " + ", ".join(others) +
                 " of a core during these measurements (`others_cpu_pct` in results.json).")
    return "\n".join(lines)


def update_readme(text: str, results: dict) -> None:
    readme = ROOT / "bench" / "README.md"
    if not readme.exists():
        return
    content = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in content or end not in content:
        return
    m = results["machine"]
    code = results.get("code", {})
    changed = len(code.get("uncommitted", []))
    block = (f"{start}\nMeasured {results['finished']} with `{results['command']}`, code at commit "
             f"`{code.get('commit', '?')}`{f' plus {changed} uncommitted file(s)' if changed else ''} "
             f"({m['cpus']} cores, {m['cpu']}, Python {m['python']}, gevent {m['gevent']}, "
             f"gunicorn {m['gunicorn']}, redis-server {m.get('redis_server')}; the run took {results.get('seconds', 0) / 60:.0f} min; "
             f"every figure is in `bench/results/results.json`):\n\n{text}\n{end}")
    head, rest = content.split(start, 1)
    readme.write_text(head + block + rest.split(end, 1)[1])


# -- main ----------------------------------------------------------------------------------------------

def main(argv=None) -> None:  # noqa: C901
    parser = argparse.ArgumentParser(description="hub vs per-stream polling, side by side")
    parser.add_argument("--quick", action="store_true", help="a smaller run (~3 min)")
    parser.add_argument("--hub-streams", default=None, help="stream counts to hold on the hub (comma list)")
    parser.add_argument("--poll-streams", default=None, help="stream counts to hold on the reference")
    parser.add_argument("--hold", type=float, default=None, help="seconds to hold each stream count")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="SSE_HEARTBEAT_SECONDS (service default 15)")
    parser.add_argument("--hub-poll", type=float, default=5.0, help="HUB_POLL_SECONDS (service default 5)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="the reference's POLL_INTERVAL_SECONDS")
    parser.add_argument("--job-step-seconds", type=float, default=0.05, help="JOB_STEP_SECONDS for the e2e phase")
    parser.add_argument("--e2e-jobs", type=int, default=None, help="real jobs in the e2e phase (0: skip)")
    parser.add_argument("--enqueue-requests", type=int, default=None)
    parser.add_argument("--enqueue-during", type=int, default=None, help="queue requests while the first hold is open")
    parser.add_argument("--enqueue-conns", type=int, default=16)
    parser.add_argument("--enqueue-warmup", type=int, default=300)
    parser.add_argument("--latency-streams", type=int, default=None)
    parser.add_argument("--latency-rounds", type=int, default=None)
    parser.add_argument("--latency-gap", type=float, default=2.0, help="seconds between update bursts")
    parser.add_argument("--concurrency", type=int, default=200, help="stream connects in flight while ramping")
    parser.add_argument("--ramp-timeout", type=float, default=180.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the ramp before measuring")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--reap-timeout", type=float, default=45.0)
    parser.add_argument("--quiet-threshold", type=float, default=15.0,
                        help="before each phase, wait until other processes use less than this %% of one core")
    parser.add_argument("--quiet-timeout", type=float, default=60.0, help="...for at most this many seconds")
    parser.add_argument("--worker-connections", type=int, default=20000)
    parser.add_argument("--app-dir", default=str(ROOT), help="run the servers from this checkout (to measure a change)")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="run the servers from --app-dir itself, not from a copy taken at the start")
    parser.add_argument("--users", type=int, default=1000, help="users owning the jobs (MAX_STREAMS_PER_USER applies)")
    parser.add_argument("--only", choices=("hub", "poll"), help="run one server only (no ratios)")
    parser.add_argument("--results", default=str(RESULTS), help="directory for the results (default bench/results)")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: rebuild the table (and the README's) from results.json")
    parser.add_argument("--no-readme", action="store_true", help="do not write the table into bench/README.md")
    args = parser.parse_args(argv)
    if args.table_only:
        results = json.loads((Path(args.results) / "results.json").read_text())
        text = table(results)
        (Path(args.results) / "table.md").write_text(text + "\n")
        print(text)
        if not args.no_readme:
            update_readme(text, results)
        return
    quick = args.quick
    pick = (lambda full, small: small if quick else full)
    hub_streams = [int(x) for x in (args.hub_streams or pick("2000,10000", "1000,3000")).split(",")]
    poll_streams = [int(x) for x in (args.poll_streams or pick("2000,5000,10000", "1000,3000")).split(",")]
    args.hold = args.hold or pick(60.0, 20.0)
    args.e2e_jobs = pick(40, 10) if args.e2e_jobs is None else args.e2e_jobs
    args.latency_streams = args.latency_streams or pick(1000, 500)
    args.latency_rounds = args.latency_rounds or pick(5, 3)
    args.enqueue_during = pick(3000, 1000) if args.enqueue_during is None else args.enqueue_during
    needed = max(hub_streams + poll_streams + [args.latency_streams])
    args.enqueue_requests = max(args.enqueue_requests or pick(10000, 3000), needed)

    globals()["RESULTS"] = Path(args.results).resolve()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # gunicorn's on_starting raises it too

    results = {"command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]).strip(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "settings": {
                   **{k: v for k, v in vars(args).items()}, "hub_streams": hub_streams, "poll_streams": poll_streams},
               "servers": {}}
    results["machine"]["redis_server"] = None
    results["code"] = code_state(Path(args.app_dir).resolve())
    snapshot = None
    if not args.no_snapshot:
        # The servers run from a copy of the code taken now, so edits made to the tree during the run
        # (every stream phase restarts the web process) cannot mix two versions into one result.
        snapshot = Path(tempfile.mkdtemp(prefix="jobapp-bench-code-"))
        shutil.copytree(Path(args.app_dir).resolve(), snapshot / "app", symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", ".git", "bench", "node_modules", "test-artifacts", ".hypothesis", ".pytest_cache", "__pycache__",
            "tests"))
        args.app_dir = str(snapshot / "app")
        results["code"]["snapshot"] = args.app_dir
    plan = {"hub": ({"WATCHER": "hub"}, hub_streams),
            "poll": ({"WATCHER": "poll", "POLL_INTERVAL_SECONDS": str(args.poll_interval)}, poll_streams)}
    if args.only:
        plan = {args.only: plan[args.only]}
    targets: dict[str, Target] = {}
    t0 = time.monotonic()
    try:
        for name, (watcher_env, _) in plan.items():  # both servers up, side by side, for the whole run
            targets[name] = Target(name, watcher_env, args, log_dir)
            results["servers"][name] = {"env": {k: v for k, v in targets[name].env.items()
                                                if k in ("WATCHER", "POLL_INTERVAL_SECONDS", "HUB_POLL_SECONDS",
                                                         "SSE_HEARTBEAT_SECONDS", "JOB_STEP_SECONDS",
                                                         "GUNICORN_WORKER_CONNECTIONS")},
                                        "holds": []}
            log(f"{name}: gunicorn on :{targets[name].port}, worker pid {targets[name].pid}, "
                f"redis on :{targets[name].redis_server.port}")
        results["machine"]["redis_server"] = next(iter(targets.values())).redis.info("server")["redis_version"]
        for name in targets:
            results["servers"][name]["rss_fresh_kb"] = rss_kb(targets[name].pid)
        if args.e2e_jobs:
            for name, t in targets.items():
                results["servers"][name]["e2e"] = attempt(t, "e2e", phase_e2e, args)
        for name, t in targets.items():
            results["servers"][name]["enqueue"] = attempt(t, "enqueue", phase_enqueue, args, args.enqueue_requests,
                                                          t.paths_file, "enqueue")
        for name, t in targets.items():
            results["servers"][name]["latency"] = attempt(t, "latency", phase_latency, args)
        steps = max(len(plan[n][1]) for n in targets)
        for step in range(steps):
            for name, t in targets.items():
                counts = plan[name][1]
                if step < len(counts):
                    during = args.enqueue_during if step == 0 else 0
                    results["servers"][name]["holds"].append(
                        attempt(t, f"hold-{counts[step]}", phase_hold, args, counts[step], during))
        for name, t in targets.items():
            results["servers"][name]["restarts"] = t.restarts
    finally:
        for t in targets.values():
            t.stop()
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["seconds"] = round(time.monotonic() - t0, 1)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=1))
    log(f"done in {results['seconds']} s; results in {RESULTS / 'results.json'}")
    if len(targets) == 2:
        text = table(results)
        (RESULTS / "table.md").write_text(text + "\n")
        print(text)
        if not args.no_readme and not quick:
            update_readme(text, results)


if __name__ == "__main__":
    main()
