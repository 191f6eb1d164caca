"""jobapp against its peers, side by side in one run: the FastAPI + sse-starlette reference and
per-stream polling (jobapp with ``WATCHER=poll``). ``make bench`` runs this.

    .venv/bin/python -m bench.peers              # full run (10,000 streams, 10 s burst, 200-job drain)
    .venv/bin/python -m bench.peers --quick      # small counts, about a minute (tests/test_bench_quick.py)
    .venv/bin/python -m bench.peers --table-only # rebuild the table from bench/results/peers.json

Every server is one web process (gunicorn with one gevent worker for jobapp, one uvicorn worker for
the reference, each started as its Procfile does) on its own private redis-server, plus RQ workers
from its own code. The reference runs from ``../shared/references/fastapi-sse`` (or
``$BENCH_FASTAPI_REF``) in its own virtualenv, ``bench/.venv-fastapi`` (git-ignored), which this
creates from the reference's ``requirements.txt`` on first use.

Phases, for each server in turn (the others sit idle):
  queue   ``--fill`` POST /api/v1/characters/queue over 16 keep-alive connections, users' Bearer
          tokens, its one worker suspended (``rq suspend``), no streams: req/s, latency, web CPU
          and Redis commands per request. Its jobs stay pending: the hold watches them.
  burst   ``--burst`` seconds of queue requests at full speed with the worker running:
          Redis ``connected_clients`` peak, req/s.
  hold    N streams on pending jobs, held: web CPU, Redis commands/s, RSS per stream over the
          idle process, ``connected_clients`` peak (worker suspended but connected).
  drain   ``--drain-jobs`` new jobs, N streams spread over them, then ``--workers`` workers run
          them all: web CPU and Redis commands per event delivered, delivery lag (receive time
          minus the event's updatedAt, on events that carry a newly recorded state),
          ``connected_clients`` peak.

Both servers run the same jobs: the reference's ten-step walk (its ``tasks.py``), which jobapp runs
as ``bench/samejob.py`` (``JOBAPP_JOBS=bench.samejob``), reporting progress the plain RQ way.

Redis connections are sampled twice a second: ``INFO clients`` for the total, and /proc (which
process owns which socket to Redis's port) to split it into the web process, each worker (with its
work horse and scheduler) and this benchmark's own sampling client, which is left out.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

from bench.run import (OURS, PY, ROOT, Load, Proc, Target, WebServer, children, code_state, fmt, log, machine,
                       port_of, rss_kb, tcp_rows, wait_quiet, window)
from jobapp.devredis import RedisServer

import redis

RESULTS = ROOT / "bench" / "results"
REF_VENV = ROOT / "bench" / ".venv-fastapi"
NAMES = ("poll", "fastapi", "jobapp")
SUSPENDED = "rq:suspended"  # RQ's own suspension flag (rq suspend): workers stay connected, take no job


def reference_dir() -> Optional[Path]:
    """Where the FastAPI reference lives: $BENCH_FASTAPI_REF, or ../shared/references/fastapi-sse
    next to this checkout (or next to the worktrees' folder)."""
    candidates = [os.environ.get("BENCH_FASTAPI_REF")] + [
        str(base / "shared" / "references" / "fastapi-sse") for base in (ROOT.parent, ROOT.parent.parent)]
    for candidate in candidates:
        if candidate and (Path(candidate) / "app" / "main.py").exists():
            return Path(candidate).resolve()
    return None


def reference_venv(ref: Path) -> Path:
    """The reference's own virtualenv (its pins, not ours), made once per requirements file."""
    requirements = ref / "requirements.txt"
    stamp = REF_VENV / f".installed-{hashlib.sha1(requirements.read_bytes()).hexdigest()[:12]}"
    python = REF_VENV / "bin" / "python"
    if not stamp.exists():
        log(f"creating the reference's virtualenv in {REF_VENV}")
        shutil.rmtree(REF_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
        stamp.touch()
    return python


# -- who holds which connection to Redis ------------------------------------------------------------

def _socket_inodes(redis_port: int) -> set[str]:
    """Inodes of the client ends of established TCP connections to ``redis_port``."""
    return {parts[9] for parts in tcp_rows() if parts[3] == "01" and port_of(parts[2]) == redis_port}


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def _sockets(pid: int) -> list[str]:
    """Inodes of the sockets ``pid`` holds open (none if it is gone)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    inodes = []
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.append(link[8:-1])
    return inodes


def _owned(pids: list[int], inodes: set[str]) -> int:
    return sum(1 for pid in pids for inode in _sockets(pid) if inode in inodes)


class ConnWatch(threading.Thread):
    """Samples Redis's ``connected_clients`` and who holds them until stopped; keeps the peaks."""

    def __init__(self, peer: "Peer", every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.peer, self.every = peer, every
        self.halt = threading.Event()
        self.peak = {"clients": 0, "web": 0, "web_plus_one_worker": 0, "worker_max": 0, "samples": 0}

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.sample()
            except (OSError, redis.RedisError):
                pass
            self.halt.wait(self.every)

    def sample(self) -> None:
        p = self.peer
        total = p.redis_clients()
        inodes = _socket_inodes(p.redis_server.port)
        ours = _owned([os.getpid()], inodes)
        workers = [_owned(_tree(w.popen.pid), inodes) for w in p.workers if w.popen.poll() is None]
        clients = total - ours
        web = clients - sum(workers)
        most = max(workers, default=0)
        for key, value in (("clients", clients), ("web", web), ("web_plus_one_worker", web + most),
                           ("worker_max", most)):
            self.peak[key] = max(self.peak[key], value)
        self.peak["samples"] += 1

    def stop(self) -> dict:
        self.halt.set()
        self.join(5)
        self.sample()
        return dict(self.peak)


class Monitor(threading.Thread):
    """Redis ``MONITOR`` through a window: every command counted by who sent it (``web``, ``worker-<n>``,
    ``bench`` for our own sampling; a script's commands go to whoever sent the script), so an idle
    floor can be taken apart. It runs in the hold only (``--no-monitor``: not at all), where it costs
    Redis next to nothing, as idle processes send few commands."""

    def __init__(self, peer: "Peer") -> None:
        super().__init__(daemon=True)
        self.peer = peer
        self.halt = threading.Event()
        self.calls: dict[int, dict[str, int]] = {}  # client port -> command -> calls
        self.monitor = redis.Redis(port=peer.redis_server.port).monitor()
        self.monitor.__enter__()
        self.started = time.monotonic()

    def run(self) -> None:
        caller = 0  # the port that sent the last script: MONITOR shows a script's commands right after it
        try:
            while not self.halt.is_set():
                entry = self.monitor.next_command()
                command = entry["command"].split(" ", 1)[0].lower()
                if entry.get("client_type") == "lua":
                    sender = caller
                else:
                    sender = int(entry.get("client_port") or 0)
                    if command in ("eval", "evalsha", "fcall"):
                        caller = sender
                per = self.calls.setdefault(sender, {})
                per[command] = per.get(command, 0) + 1
        except (redis.RedisError, OSError, ValueError):
            pass

    def owners(self) -> dict[int, str]:
        """Client port -> who holds that connection now (connections closed meanwhile are not found)."""
        p = self.peer
        inode_port = {parts[9]: port_of(parts[1]) for parts in tcp_rows()
                      if parts[3] == "01" and port_of(parts[2]) == p.redis_server.port}
        trees = [("web", _tree(p.web.popen.pid)), ("bench", [os.getpid()])]
        trees += [(f"worker-{i}", _tree(w.popen.pid)) for i, w in enumerate(p.workers) if w.popen.poll() is None]
        return {inode_port[inode]: name for name, pids in trees for pid in pids for inode in _sockets(pid)
                if inode in inode_port}

    def stop(self) -> dict:
        """``{sender: {command: calls per second}}``, the busiest sender first, and ``total``: each
        sender's commands per second (``workers`` for all of them)."""
        owners = self.owners()
        self.halt.set()
        seconds = time.monotonic() - self.started
        try:
            self.monitor.connection.disconnect()
        except (redis.RedisError, OSError):
            pass
        self.join(5)
        out: dict[str, dict[str, int]] = {}
        for port, calls in list(self.calls.items()):
            name = owners.get(port, f"closed-{port}")
            per = out.setdefault(name, {})
            for command, count in calls.items():
                per[command] = per.get(command, 0) + count
        rated = {name: dict(sorted(((c, round(n / seconds, 2)) for c, n in calls.items()), key=lambda kv: -kv[1]))
                 for name, calls in out.items()}
        total = {name: round(sum(calls.values()) / seconds, 2) for name, calls in out.items()}
        total["workers"] = round(sum(v for k, v in total.items() if k.startswith("worker-")), 2)
        return {"total": total, **dict(sorted(rated.items(), key=lambda kv: -sum(kv[1].values())))}


# -- one server under test ----------------------------------------------------------------------------

class Peer(Target):
    """A web process (jobapp's gunicorn or the reference's uvicorn) with its RQ workers and Redis."""

    def __init__(self, name: str, args, log_dir: Path) -> None:  # noqa: super().__init__ is not called
        self.name, self.log_dir, self.args = name, log_dir, args
        self.redis_server = RedisServer().start()
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.own_commands = 0
        self.restarts = 0
        self.workers: list[Proc] = []
        self.paths_file = log_dir / f"{name}-hold-paths.txt"
        url = self.redis_server.url
        if name == "fastapi":
            ref = reference_dir()
            python = reference_venv(ref)
            self.app_dir = ref
            self.cmd = [str(python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "{port}",
                        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--backlog", "2048",
                        "--timeout-graceful-shutdown", "3"]  # its Procfile's web line
            self.worker_cmd = [str(python), "worker.py"]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "PORT", "VIRTUAL_ENV"))}
            self.env = {**env, "REDIS_URL": url, "JWT_SECRET_KEY": args.secret, "PYTHONUNBUFFERED": "1",
                        "BASE_STEP_S": str(args.job_step_seconds), "PATH": f"{python.parent}:{env.get('PATH', '')}"}
        else:
            from bench.run import service_env
            self.app_dir = Path(args.app_dir)
            self.cmd = None
            self.worker_cmd = [PY, "worker.py"]
            watcher = {"WATCHER": "poll", "POLL_INTERVAL_SECONDS": "0.5"} if name == "poll" else {}
            # The service's defaults, but: tokens outlive the run, rq-dashboard is mounted, the per-user
            # open-stream cap is raised so 10,000 streams on 200 jobs (50 per owner) fit in it, and the
            # jobs are the reference's shape (bench/samejob.py), so both drains do the same work.
            self.env = service_env(url, JOB_STEP_SECONDS=str(args.job_step_seconds), STREAM_TOKEN_TTL="21600",
                                   JOBAPP_JOBS="bench.samejob",
                                   MAX_STREAMS_PER_USER="1000", RQ_DASHBOARD_USERNAME="bench",
                                   RQ_DASHBOARD_PASSWORD="bench", **watcher)
        self.suspend(True)
        self.web = WebServer(self.app_dir, self.env, log_dir, cmd=self.cmd)
        self.pid = self.worker_pid()
        OURS.update({self.redis_server.process.pid, self.web.popen.pid, self.pid})

    def worker_pid(self) -> int:
        return self.web.popen.pid if self.cmd else super().worker_pid()

    def alive(self) -> bool:
        if self.cmd:
            return self.web.popen.poll() is None
        return super().alive()

    def restart(self) -> None:
        self.web.stop()
        self.web = WebServer(self.app_dir, self.env, self.log_dir, cmd=self.cmd)
        self.pid = self.worker_pid()
        OURS.update({self.web.popen.pid, self.pid})

    def suspend(self, on: bool) -> None:
        self.own_commands += 1
        self.redis.set(SUSPENDED, 1) if on else self.redis.delete(SUSPENDED)

    def commandstats(self) -> dict[str, int]:
        """Calls per command so far (``INFO commandstats``; commands run by scripts included)."""
        self.own_commands += 1
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in self.redis.info("commandstats").items()}

    def commands_since(self, before: dict[str, int]) -> dict[str, int]:
        """Calls per command since ``commandstats()`` gave ``before``, the most called first."""
        calls = {k: v - before.get(k, 0) for k, v in self.commandstats().items() if v - before.get(k, 0)}
        return dict(sorted(calls.items(), key=lambda kv: -kv[1]))

    def scale_workers(self, count: int) -> None:
        """Run exactly ``count`` RQ workers (new ones start suspended if the flag is set) and wait
        until they have registered."""
        while len(self.workers) > count:
            self.workers.pop().stop()
        while len(self.workers) < count:
            worker = Proc(self.worker_cmd, self.app_dir, self.env, self.log_dir / f"{self.name}-worker-{len(self.workers)}.log")
            OURS.add(worker.popen.pid)
            self.workers.append(worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.own_commands += 1
            if self.redis.scard("rq:workers") >= count:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name}: {count} workers did not register")

    def touch_dashboard(self) -> None:
        """Load rq-dashboard's queue list once, as an operator would, so its own client connects."""
        if self.cmd:
            return
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/rq/",
                                         headers={"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()})
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except OSError as exc:
            log(f"{self.name}: rq-dashboard did not answer ({exc})")

    def stop(self) -> None:
        self.scale_workers(0)
        super().stop()


# -- phases -------------------------------------------------------------------------------------------

def queue_requests(p: Peer, args, label: str, paths: Path, *, count: int = 0, duration: float = 0.0,
                   warmup: int = 0, users: int = 0, prefix: str = "bench-user-") -> dict:
    """Queue requests from sseload over keep-alive connections; the server's CPU and Redis commands meanwhile."""
    p.ensure_alive()
    cli = ["enqueue", "--port", str(p.port), "--conns", str(args.conns), "--warmup", str(warmup),
           "--users", str(users or args.users), "--user-prefix", prefix, "--jobs-out", str(paths),
           "--count", str(count or 1), "--timeout", "600"]
    if duration:
        cli += ["--duration", str(duration)]
    stats_before = p.commandstats()
    before = p.sample()
    profiler = profile(p, args, label) if label == "queue" else None
    result = Load(cli, RESULTS / f"{p.name}-{label}.json", timeout=900).result()
    after = p.sample()
    stop_profile(profiler)
    stats = p.commands_since(stats_before)
    result["redis_commands_by_name"] = stats
    requests = result["completed"] + warmup
    result["requests"], result["warmup"] = requests, warmup
    result["server"] = window(before, after)
    result["server"]["cpu_ms_per_request"] = round(1000 * (after["cpu"] - before["cpu"]) / max(1, requests), 3)
    result["server"]["redis_commands_per_request"] = round(
        (after["commands"] - before["commands"] - (after["own"] - before["own"])) / max(1, requests), 2)
    log(f"{p.name} {label}: {result['rps']} req/s, p50 {result['latency_ms'].get('p50')} ms, "
        f"p99 {result['latency_ms'].get('p99')} ms, statuses {result['statuses']}, errors {result['errors']}, "
        f"{result['server']['cpu_ms_per_request']} ms CPU and {result['server']['redis_commands_per_request']} "
        f"Redis commands per request")
    return result


def phase_queue(p: Peer, args, turn: int = 0) -> dict:
    """One of the queue phase's ``--queue-rounds`` turns: its share of ``--fill`` (the warm-up in the first)."""
    wait_quiet(args, f"{p.name} queue")
    p.suspend(True)
    count = args.fill // args.queue_rounds + (args.fill % args.queue_rounds if turn == 0 else 0)
    paths = p.paths_file.with_name(f"{p.paths_file.stem}-{turn}.txt")
    result = queue_requests(p, args, "queue", paths, count=count, warmup=args.warmup if turn == 0 else 0)
    with p.paths_file.open("a" if turn else "w") as handle:  # every turn's jobs, for the hold
        handle.write(paths.read_text())
    paths.unlink()
    return result


def median_turn(turns: list[dict]) -> dict:
    """The queue phase's figures over its turns: the median turn's rate and latencies (servers take
    turns, so a noisy minute on a shared machine falls on one turn of one server, not on its whole
    phase), CPU and Redis commands per request over all turns, every turn's own figures kept."""
    done = [t for t in turns if "rps" in t]
    if not done:
        return turns[-1]
    middle = sorted(done, key=lambda t: t["rps"])[(len(done) - 1) // 2]
    merged = {**middle, "turns": turns, "completed": sum(t["completed"] for t in done),
              "latency_ms": median_latencies(done, middle["latency_ms"])}
    for field in ("statuses", "errors", "redis_commands_by_name"):
        merged[field] = summed(done, field)
    merged["server"] = {**middle["server"], "others_cpu_pct": max(t["server"]["others_cpu_pct"] for t in done)}
    for figure in ("cpu_ms_per_request", "redis_commands_per_request"):  # weighted by each turn's requests
        merged["server"][figure] = round(sum(t["server"][figure] * t["requests"] for t in done)
                                         / max(1, sum(t["requests"] for t in done)), 3)
    return merged


def median_latencies(done: list[dict], keys: dict) -> dict:
    """Each latency percentile in ``keys``: its median over the turns ``done``."""
    return {k: statistics.median(t["latency_ms"][k] for t in done if k in t["latency_ms"]) for k in keys}


def summed(done: list[dict], field: str) -> dict:
    """The turns' counts under ``field`` (statuses, errors, commands by name), added up."""
    total: dict = {}
    for t in done:
        for k, v in t.get(field, {}).items():
            total[k] = total.get(k, 0) + v
    return total


def phase_burst(p: Peer, args) -> dict:
    wait_quiet(args, f"{p.name} burst")
    p.touch_dashboard()
    watch = ConnWatch(p)
    watch.start()
    p.suspend(False)
    try:
        result = queue_requests(p, args, "burst", RESULTS / "logs" / f"{p.name}-burst-paths.txt",
                                duration=args.burst, warmup=0)
    finally:
        p.suspend(True)
        result_conns = watch.stop()
    result["redis_clients_peak"] = result_conns
    log(f"{p.name} burst: Redis clients peak {result_conns}")
    return result


def phase_hold(p: Peer, args) -> dict:
    from bench.run import fresh
    p.suspend(True)
    base = fresh(p, args, "hold")
    p.touch_dashboard()
    watch = ConnWatch(p)
    watch.start()
    n, hold = args.streams, args.hold
    total = len(p.paths_file.read_text().split())
    load = Load(["streams", "--port", str(p.port), "--paths-file", str(p.paths_file), "--count", str(n),
                 "--offset", str(max(0, total - n)),  # the newest jobs: the worker never reached them
                 "--concurrency", str(args.concurrency), "--ramp-timeout", "180", "--hold", str(hold + 60),
                 "--max-silence", "40"], RESULTS / f"{p.name}-hold.json", timeout=hold + 400)
    ready = load.wait_for("ready", 240)
    if ready is None:
        watch.stop()
        raise RuntimeError(f"{p.name}: the streams never got ready:\n{''.join(load.stderr)[-3000:]}")
    t_ready = ready["t_ready"]
    time.sleep(max(0.0, t_ready + args.settle - time.time()))
    first = p.sample()
    stats_before = p.commandstats()
    profiler = profile(p, args, "hold")
    monitor = None if args.no_monitor else Monitor(p)
    if monitor:
        monitor.start()
    while time.time() < t_ready + args.settle + hold:
        time.sleep(1.0)
    last = p.sample()
    stop_profile(profiler)
    senders = monitor.stop() if monitor else None
    stats = p.commands_since(stats_before)
    result = load.result(stop=True)
    conns = watch.stop()
    idle = window(first, last)
    out = {"streams": n, "opened": result["opened"], "errors": result["errors"], "error_count": result["error_count"],
           "ramp_seconds": result["ramp_seconds"], "idle": idle, "rss_idle_kb": base["rss_kb"], "rss_kb": last["rss_kb"],
           "rss_per_stream_kb": round((last["rss_kb"] - base["rss_kb"]) / max(1, result["opened"]), 2),
           "redis_clients_peak": conns, "redis_commands_by_name": stats}
    if senders is not None:
        out["redis_commands_per_second_by_sender"] = senders
        log(f"{p.name} hold: commands/s by sender {json.dumps(senders)}")
    log(f"{p.name} hold: {result['opened']}/{n} open, errors {result['errors']}, cpu {idle['cpu_pct']}%, "
        f"redis {idle['redis_cps']} cmd/s, {out['rss_per_stream_kb']} KB/stream, clients {conns}, "
        f"others {idle['others_cpu_pct']}%")
    return out


def profile(p: Peer, args, phase: str) -> Optional[subprocess.Popen]:
    """With ``--profile``: py-spy on the web process through a phase's measured window (collapsed stacks)."""
    if not args.profile:
        return None
    return subprocess.Popen([args.profile, "record", "-p", str(p.pid), "-r", "250", "-f", "raw", "--nonblocking",
                             "-o", str(RESULTS / "logs" / f"{p.name}-{phase}-profile.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(profiler: Optional[subprocess.Popen]) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(60)


def phase_drain(p: Peer, args) -> dict:
    from bench.run import fresh
    p.suspend(True)
    if not p.paths_file.exists():  # a drain run alone: fresh() warms up on a few jobs of its own
        queue_requests(p, args, "drain-warm", p.paths_file, count=20, users=20, prefix="warm-user-")
    fresh(p, args, "drain")
    for key in p.redis.keys("rq:queue:*"):  # the hold's pending jobs leave the queue: the workers run only the drain's
        if p.redis.type(key) == b"list":
            p.redis.delete(key)
    p.own_commands += 10
    paths = RESULTS / "logs" / f"{p.name}-drain-paths.txt"
    queue_requests(p, args, "drain-queue", paths, count=args.drain_jobs, users=args.drain_jobs, prefix="drain-user-")
    p.scale_workers(args.workers)
    p.touch_dashboard()
    watch = ConnWatch(p)
    watch.start()
    budget = args.drain_jobs * 12 * args.job_step_seconds / args.workers + 120
    load = Load(["streams", "--port", str(p.port), "--paths-file", str(paths), "--count", str(args.streams),
                 "--concurrency", str(args.concurrency), "--ramp-timeout", "180", "--allow-end",
                 "--hold", str(budget), "--max-silence", "40"], RESULTS / f"{p.name}-drain.json", timeout=budget + 300)
    ready = load.wait_for("ready", 240)
    if ready is None:
        watch.stop()
        raise RuntimeError(f"{p.name}: drain streams never got ready:\n{''.join(load.stderr)[-3000:]}")
    time.sleep(1.0)
    stats_before = p.commandstats()
    before = p.sample()
    p.suspend(False)
    profiler = profile(p, args, "drain")
    result = load.result(stop=False)
    after = p.sample()
    stop_profile(profiler)
    p.suspend(True)
    stats = p.commands_since(stats_before)
    conns = watch.stop()
    p.scale_workers(1)
    events = result["update_events"]
    server = window(before, after)
    commands = after["commands"] - before["commands"] - (after["own"] - before["own"])
    out = {"jobs": args.drain_jobs, "streams": args.streams, "workers": args.workers, "opened": result["opened"],
           "ended_with_job": result["ended_by_server"], "errors": result["errors"], "events": events,
           "restated_events": result.get("restated_events"), "updates_per_stream": result["updates_per_stream"], "seconds": server["seconds"],
           "latency_ms": result["latency_ms"], "server": server,
           "cpu_ms_per_event": round(1000 * (after["cpu"] - before["cpu"]) / max(1, events), 4),
           "redis_commands": commands, "redis_commands_per_event": round(commands / max(1, events), 4),
           "redis_clients_peak": conns,
           "redis_commands_by_name": stats}
    log(f"{p.name} drain: {events} events to {result['opened']} streams in {server['seconds']} s, "
        f"{out['cpu_ms_per_event']} ms CPU and {out['redis_commands_per_event']} Redis commands per event, "
        f"lag p50 {result['latency_ms'].get('p50')} p99 {result['latency_ms'].get('p99')} ms, clients {conns}")
    return out


def median_drain(turns: list[dict]) -> dict:
    """The drain's figures over its turns: the turn with the median lag p99, with each per-event figure
    and lag percentile the median of the turns' (a few noisy seconds on a shared 2-core machine move a
    p99 of tens of milliseconds by half), and each connection peak the highest of any turn (a budget)."""
    done = [t for t in turns if "latency_ms" in t]
    if not done:
        return turns[-1]
    middle = sorted(done, key=lambda t: t["latency_ms"].get("p99", 0))[(len(done) - 1) // 2]
    merged = {**middle, "turns": turns, "latency_ms": median_latencies(done, middle["latency_ms"]),
              "errors": summed(done, "errors")}
    for figure in ("cpu_ms_per_event", "redis_commands_per_event"):
        merged[figure] = statistics.median(t[figure] for t in done)
    merged["redis_clients_peak"] = {k: max(t["redis_clients_peak"].get(k, 0) for t in done)
                                    for k in middle["redis_clients_peak"]}
    return merged


# -- the table ----------------------------------------------------------------------------------------

def get(results: dict, name: str, *path):
    value = results["servers"].get(name)
    for step in path:
        if value is None:
            return None
        value = value.get(step) if isinstance(value, dict) else None
    return value


def sender(server: dict, name: str) -> float:
    """Idle commands/s that MONITOR saw from ``name`` in the hold: 0 for a sender that sent none."""
    return server["hold"]["redis_commands_per_second_by_sender"]["total"].get(name, 0)


def rows(results: dict) -> list[tuple]:
    """(figure, better, target, key path) for each row; the values come from ``get``."""
    n = results["settings"]["streams"]
    d = results["settings"]
    return [
        ("Queue requests accepted per second (no streams, worker paused)", "higher", "≥ 1.2x", ("queue", "rps")),
        ("Queue latency p50", "lower", "", ("queue", "latency_ms", "p50")),
        ("Queue latency p99", "lower", "≤ 1x", ("queue", "latency_ms", "p99")),
        ("Web CPU per queue request (ms)", "lower", "", ("queue", "server", "cpu_ms_per_request")),
        ("Redis commands per queue request", "lower", "", ("queue", "server", "redis_commands_per_request")),
        (f"Queue requests per second, {d['burst']:g} s full-speed burst, 1 worker running", "higher", "",
         ("burst", "rps")),
        (f"Redis connected_clients peak, web + 1 worker, {n:,} open streams", "lower", "≤ 20",
         ("hold", "redis_clients_peak", "clients")),
        (f"Redis connected_clients peak, web + 1 worker, {d['burst']:g} s burst", "lower", "≤ 20",
         ("burst", "redis_clients_peak", "clients")),
        (f"Redis connected_clients peak, web + busiest worker, {d['drain_jobs']}-job drain", "lower", "≤ 20",
         ("drain", "redis_clients_peak", "web_plus_one_worker")),
        (f"Redis connected_clients peak, all, {d['drain_jobs']}-job drain ({d['workers']} workers)", "lower", "",
         ("drain", "redis_clients_peak", "clients")),
        (f"Web CPU per event delivered, {d['drain_jobs']} jobs to {n:,} streams (ms)", "lower", "≤ 1x",
         ("drain", "cpu_ms_per_event")),
        ("Redis commands per event delivered in that drain", "lower", "≤ 1x", ("drain", "redis_commands_per_event")),
        ("Delivery lag p50 in that drain (ms; events with a newly recorded state)", "lower", "",
         ("drain", "latency_ms", "p50")),
        ("Delivery lag p99 in that drain (ms)", "lower", "≤ 1x", ("drain", "latency_ms", "p99")),
        ("Events per stream that restate a state with a new place in line", "", "",
         lambda s: (s["drain"].get("restated_events") or 0) / max(1, s["drain"]["opened"])),
        ("Events per stream in that drain (a stream that lags gets the latest state)",
         "", "", lambda s: s["drain"]["events"] / max(1, s["drain"]["opened"])),
        ("Web CPU per stream followed to its job's end in that drain (ms)", "lower", "",
         lambda s: s["drain"]["cpu_ms_per_event"] * s["drain"]["events"] / max(1, s["drain"]["opened"])),
        ("Redis commands per job in that drain (workers' included)", "lower", "",
         lambda s: s["drain"]["redis_commands"] / s["drain"]["jobs"]),
        (f"RSS per open stream, {n:,} streams (KB)", "lower", "≤ 20 KB", ("hold", "rss_per_stream_kb")),
        (f"Redis commands/s, {n:,} idle streams", "lower", "~0", ("hold", "idle", "redis_cps")),
        ("… of them from the web process (MONITOR)", "lower", "", lambda s: sender(s, "web")),
        ("… of them from the worker, suspended (MONITOR)", "lower", "", lambda s: sender(s, "workers")),
        (f"Web CPU, {n:,} idle streams (% of one core)", "lower", "< 7 %", ("hold", "idle", "cpu_pct")),
        (f"Stream errors ({n:,} held / drain)", "lower", "0", None),
    ]


def cell(results: dict, name: str, path, better: str) -> str:
    if path is None:
        h, d = get(results, name, "hold", "error_count"), get(results, name, "drain", "errors")
        text = f"{fmt(h)} / {fmt(sum(d.values()) if isinstance(d, dict) else None)}"
        opened = {phase: get(results, name, phase, "opened") for phase in ("hold", "drain")}
        streams = results["settings"]["streams"]
        short = [f"{phase} {n:,}" for phase, n in opened.items() if n is not None and n < streams]
        return text + (f" (opened in time: {', '.join(short)})" if short else "")
    if callable(path):
        try:
            value, ref = path(results["servers"][name]), path(results["servers"]["fastapi"])
        except (KeyError, TypeError, ZeroDivisionError):
            return "n/a"
        text = fmt(round(value, 3) if abs(value) < 1 else round(value, 1), digits=3 if abs(value) < 1 else 1)
        return text + (f" ({value / ref:,.2f}x)" if name != "fastapi" and better and ref else "")
    value = get(results, name, *path)
    if value is None:
        return "n/a"
    text = fmt(value, digits=3 if isinstance(value, float) and abs(value) < 1 else 1)
    ref = get(results, "fastapi", *path)
    if name != "fastapi" and better and isinstance(ref, (int, float)) and ref:
        text += f" ({value / ref:,.2f}x)"
    return text


def table(results: dict) -> str:
    names = [n for n in NAMES if n in results["servers"]]
    header = ("Figure", "Better", "Target (jobapp)", *[{"poll": "per-stream polling", "fastapi": "FastAPI + sse-starlette",
                                                        "jobapp": "jobapp"}[n] for n in names])
    lines = [header]
    for figure, better, target, path in rows(results):
        lines.append((figure, better, target, *[cell(results, n, path, better) for n in names]))
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.append("")
    out.append("In brackets: the figure's ratio to the FastAPI reference's in the same run.")
    others = []
    for name in names:
        windows = [w for w in (get(results, name, "queue", "server"), get(results, name, "hold", "idle"),
                               get(results, name, "drain", "server")) if w]
        if windows:
            others.append(f"{name} {max(w['others_cpu_pct'] for w in windows):.0f}%")
    out.append("Other processes on the machine used at most " + ", ".join(others) +
               " of a core during these measurements (`others_cpu_pct` in peers.json).")
    return "\n".join(out)


def update_readme(text: str, results: dict) -> None:
    readme = ROOT / "bench" / "README.md"
    start, end = "<!-- peers:start -->", "<!-- peers:end -->"
    content = readme.read_text() if readme.exists() else ""
    if start not in content or end not in content:
        return
    m, code = results["machine"], results.get("code", {})
    changed = len(code.get("uncommitted", []))
    block = (f"{start}\nMeasured {results['finished']} UTC with `{results['command']}`, code at commit "
             f"`{code.get('commit', '?')}`{f' plus {changed} uncommitted file(s)' if changed else ''} "
             f"({m['cpus']} cores, {m['cpu']}, Python {m['python']}; the run took {results['seconds'] / 60:.0f} min; "
             f"every figure is in `bench/results/peers.json`):\n\n{text}\n{end}")
    head, rest = content.split(start, 1)
    readme.write_text(head + block + rest.split(end, 1)[1])


# -- main ---------------------------------------------------------------------------------------------

def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="jobapp vs the FastAPI reference and per-stream polling")
    parser.add_argument("--quick", action="store_true", help="small counts, about a minute")
    parser.add_argument("--only", default=",".join(NAMES), help="servers to run (comma list of poll,fastapi,jobapp)")
    parser.add_argument("--streams", type=int, help="open streams in the hold and the drain (10,000)")
    parser.add_argument("--hold", type=float, help="seconds the idle streams are measured (30)")
    parser.add_argument("--fill", type=int, help="measured queue requests, worker paused (streams + 500)")
    parser.add_argument("--warmup", type=int, help="unmeasured queue requests first (300)")
    parser.add_argument("--burst", type=float, help="seconds of the full-speed burst (10)")
    parser.add_argument("--drain-jobs", type=int, help="jobs in the drain (200)")
    parser.add_argument("--workers", type=int, help="RQ workers in the drain (6)")
    parser.add_argument("--users", type=int, default=2000,
                        help="users sending the queue requests: enough that jobapp's default limit never refuses")
    parser.add_argument("--conns", type=int, default=16, help="keep-alive connections sending queue requests")
    parser.add_argument("--job-step-seconds", type=float, default=0.1, help="JOB_STEP_SECONDS / the reference's BASE_STEP_S")
    parser.add_argument("--concurrency", type=int, default=200, help="stream connects in flight while ramping")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--heartbeat", type=float, default=15.0)  # for bench.run.fresh's reaping wait
    parser.add_argument("--reap-timeout", type=float, default=45.0)
    parser.add_argument("--quiet-threshold", type=float, default=15.0)
    parser.add_argument("--quiet-timeout", type=float, default=60.0)
    parser.add_argument("--app-dir", default=str(ROOT))
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--phases", default="queue,burst,hold,drain",
                        help="phases to run (comma list; hold needs queue's jobs); a partial run leaves the README alone")
    parser.add_argument("--profile", help="py-spy's path: profile each web process through the queue, hold and drain phases "
                        "(results/logs/<server>-<phase>-profile.txt, collapsed stacks)")
    parser.add_argument("--queue-rounds", type=int, default=None,
                        help="turns the servers take at the queue phase, each with its share of --fill; the "
                             "table gives each server's median turn (3; 1 with --quick)")
    parser.add_argument("--drain-rounds", type=int, default=None,
                        help="drains each server runs, in rotation (per-stream polling runs one); the table gives "
                             "each figure's median, and each connection peak's highest (3; 1 with --quick)")
    parser.add_argument("--no-monitor", action="store_true",
                        help="no Redis MONITOR in the hold (it gives the idle commands/s by sender: web, workers)")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    q = args.quick
    for name, full, quick in (("streams", 10000, 500), ("hold", 30.0, 5.0), ("warmup", 300, 50),
                              ("burst", 10.0, 2.0), ("drain_jobs", 200, 20), ("workers", 6, 2)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    if args.queue_rounds is None:
        args.queue_rounds = 1 if q else 3
    if args.drain_rounds is None:
        args.drain_rounds = 1 if q else 3
    if args.fill is None:
        args.fill = args.streams + (100 if q else 500)
    if q:  # no waiting for a quiet machine or for closed warm-up streams to be noticed
        args.quiet_timeout = min(args.quiet_timeout, 2.0)
        args.settle = min(args.settle, 1.0)
        args.reap_timeout = min(args.reap_timeout, 1.0)
    from jobapp.config import DEV_SECRET
    args.secret = DEV_SECRET
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    global RESULTS
    RESULTS = Path(args.results).resolve()
    import bench.run as run
    run.RESULTS = RESULTS  # fresh() writes its warm-up results there
    if args.table_only:  # a full run's table goes back into the README too (its measured commit unchanged)
        results = json.loads((RESULTS / "peers.json").read_text())
        print(table(results))
        stored = results["settings"]
        full = set(stored.get("phases", "").split(",")) == {"queue", "burst", "hold", "drain"}
        if full and not stored.get("quick") and not args.no_readme:
            update_readme(table(results), results)
        return results
    names = [n for n in NAMES if n in args.only.split(",")]
    if "fastapi" in names and reference_dir() is None:
        raise SystemExit("the FastAPI reference is not found: set BENCH_FASTAPI_REF or use --only poll,jobapp")
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"command": " ".join(["python -m bench.peers", *(argv if argv is not None else sys.argv[1:])]).strip(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": machine(),
               "code": code_state(Path(args.app_dir).resolve()),
               "settings": {k: v for k, v in vars(args).items() if k != "secret"}, "servers": {}}
    snapshot = Path(tempfile.mkdtemp(prefix="jobapp-bench-code-"))
    shutil.copytree(Path(args.app_dir).resolve(), snapshot / "app", symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "bench", "node_modules", "test-artifacts", ".pytest_cache", "__pycache__", "tests"))
    (snapshot / "app" / "bench").mkdir()  # of bench/, only the jobs module the servers import
    for name in ("__init__.py", "samejob.py"):
        shutil.copy2(ROOT / "bench" / name, snapshot / "app" / "bench" / name)
    args.app_dir = str(snapshot / "app")
    t0 = time.monotonic()
    peers: dict[str, Peer] = {}
    try:
        for name in names:
            peers[name] = Peer(name, args, RESULTS / "logs")
            peers[name].scale_workers(1)
            log(f"{name}: web on :{peers[name].port} (pid {peers[name].pid}), redis on :{peers[name].redis_server.port}")
        phases = [(phase, fn) for phase, fn in (("queue", phase_queue), ("burst", phase_burst), ("hold", phase_hold),
                                                ("drain", phase_drain)) if phase in args.phases.split(",")]
        for phase, fn in phases:
            turns: dict[str, list[dict]] = {name: [] for name in peers}
            for turn in range({"queue": args.queue_rounds, "drain": args.drain_rounds}.get(phase, 1)):
                for name, peer in peers.items():  # the servers take turns
                    if phase == "drain" and turn and name == "poll":
                        continue  # one drain: its drain takes minutes, and its figures are far off anyway
                    try:
                        turns[name].append(fn(peer, args, turn) if phase == "queue" else fn(peer, args))
                    except (OSError, RuntimeError, redis.RedisError) as exc:
                        log(f"{name} {phase}: failed: {type(exc).__name__}: {str(exc)[:500]}")
                        turns[name].append({"failed": f"{type(exc).__name__}: {str(exc)[:500]}"})
                        peer.ensure_alive()
            for name, done in turns.items():
                merge = {"queue": median_turn, "drain": median_drain}.get(phase, lambda done: done[0])
                results["servers"].setdefault(name, {})[phase] = merge(done)
    finally:
        for peer in peers.values():
            peer.stop()
        shutil.rmtree(snapshot, ignore_errors=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    results["seconds"] = round(time.monotonic() - t0, 1)
    (RESULTS / "peers.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (RESULTS / "peers.md").write_text(text + "\n")
    print(text)
    log(f"done in {results['seconds']} s; raw figures in {RESULTS / 'peers.json'}")
    if not args.quick and not args.no_readme and len(phases) == 4:
        update_readme(text, results)
    return results


if __name__ == "__main__":
    main()
