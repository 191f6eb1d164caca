"""Many jobs on one connection under load: N clients, each watching K jobs on GET /api/v1/sse/jobs,
on one gunicorn gevent web process (the hub), beside the single-job figures of ``bench.run``.

    .venv/bin/python -m bench.many            # 1,000 clients x 10 jobs, 60 s hold, 5 update rounds
    .venv/bin/python -m bench.many --quick    # 200 clients x 10 jobs, 20 s hold

Phases: queue N*K pending jobs for N users (no worker runs, so they never change by themselves);
restart and warm the web process; open one many-jobs stream per user (``?ids=`` its K jobs, with the
user-scoped stream token the job list hands out); hold it idle and measure web CPU, Redis commands/s
and RSS; then, as a worker's ``progress.report()`` does, update one job of every client at once, a
few rounds apart, and measure each event's delivery latency (client receive time - ``updatedAt``).
Writes ``bench/results/many.json`` and the table between the markers in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from jobapp import create_app
from jobapp.auth import USER_SCOPE, mint_stream_token
from jobapp.config import DEV_SECRET, Config

from .run import RESULTS, ROOT, Load, Target, fresh, log, phase_enqueue, update_burst, window

README = Path(__file__).resolve().parent / "README.md"


def subject(token: str) -> str:
    claims = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]


def many_paths(t: Target, per_client: int) -> tuple[Path, list[str]]:
    """One many-jobs stream path per user (its jobs in ``ids``), and one job id per client to update."""
    jobs: dict[str, list[str]] = defaultdict(list)
    for line in t.paths_file.read_text().split():
        job_id = re.search(r"/character/([0-9a-f-]{36})", line).group(1)
        jobs[subject(line.split("token=")[1])].append(job_id)
    config = Config.from_env({}, REDIS_URL=t.redis_server.url, JWT_SECRET_KEY=DEV_SECRET)
    lines, first_jobs = [], []
    with create_app(config).app_context():
        for user, ids in jobs.items():
            token = mint_stream_token(user, USER_SCOPE, 21600)
            lines.append(f"/api/v1/sse/jobs?ids={','.join(ids[:per_client])}&token={token}")
            first_jobs.append(ids[0])
    path = RESULTS / "many-paths.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, first_jobs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="many jobs per connection on the hub")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--hold", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap", type=float, default=2.0)
    a = parser.parse_args(argv)
    clients = a.clients or (200 if a.quick else 1000)
    hold = a.hold or (20.0 if a.quick else 60.0)
    # what bench.run's helpers read, at bench.run's defaults (the service's own settings)
    args = argparse.Namespace(
        heartbeat=15.0, hub_poll=5.0, job_step_seconds=0.05, worker_connections=20000, app_dir=str(ROOT),
        quiet_threshold=15.0, quiet_timeout=60.0, concurrency=200, ramp_timeout=180.0, settle=5.0,
        sample_every=5.0, reap_timeout=45.0, enqueue_conns=16, enqueue_warmup=0, users=clients, hold=hold)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    t = Target("many", {"WATCHER": "hub", "MAX_STREAMS_PER_USER": "50"}, args, log_dir)
    try:
        phase_enqueue(t, args, clients * a.per_client, t.paths_file, "many-enqueue", warmup=0)
        paths, first_jobs = many_paths(t, a.per_client)
        base = fresh(t, args, "many-hold")
        load = Load(["streams", "--port", str(t.port), "--paths-file", str(paths), "--count", str(clients),
                     "--initial-events", str(a.per_client), "--expect-updates", str(a.rounds),
                     "--concurrency", "200", "--hold", str(hold + a.rounds * a.gap + 60),
                     "--max-silence", str(args.heartbeat * 2 + 10)],
                    RESULTS / "many-streams.json", timeout=hold + a.rounds * a.gap + 300)
        ready = load.wait_for("ready", 200)
        if ready is None:
            raise RuntimeError(f"streams never got ready:\n{''.join(load.stderr)[-3000:]}")
        log(f"many: {ready['open']} of {clients} clients open ({clients * a.per_client} watched jobs)")
        time.sleep(args.settle)
        samples = [t.sample()]
        while time.time() < ready["t_ready"] + hold:
            time.sleep(args.sample_every)
            samples.append(t.sample())
        idle = window(samples[0], samples[-1])
        end = samples[-1]
        connection = redis.Redis.from_url(t.redis_server.url)
        jobs = [Job.fetch(i, connection=connection, serializer=JSONSerializer) for i in first_jobs]
        bursts = []
        for round_no in range(1, a.rounds + 1):
            bursts.append(round(update_burst(connection, jobs, round_no), 3))
            time.sleep(a.gap)
        result = load.result(stop=True)
        watched = ready["open"] * a.per_client
        out = {
            "clients": clients, "jobs_per_client": a.per_client, "watched_jobs": watched, "opened": ready["open"],
            "errors": result["errors"], "error_count": result["error_count"], "ramp_seconds": ready["ramp_seconds"],
            "idle": idle, "rss_idle_kb": base["rss_kb"], "rss_kb": end["rss_kb"],
            "rss_per_client_kb": round((end["rss_kb"] - base["rss_kb"]) / max(1, ready["open"]), 2),
            "rss_per_watched_job_kb": round((end["rss_kb"] - base["rss_kb"]) / max(1, watched), 2),
            "rounds": a.rounds, "expected_events": ready["open"] * a.rounds, "events": result["update_events"],
            "latency_ms": result["latency_ms"], "burst_seconds": bursts, "ids_increasing": result["ids_increasing"],
        }
        (RESULTS / "many.json").write_text(json.dumps(out, indent=2))
        log(f"many: {json.dumps({k: out[k] for k in ('opened', 'error_count', 'rss_per_client_kb', 'events')})} "
            f"idle cpu {idle['cpu_pct']}% redis {idle['redis_cps']} cmd/s, latency {out['latency_ms']}")
        if not a.quick:
            write_table(out)
    finally:
        t.stop()


def write_table(out: dict) -> None:
    lat = out["latency_ms"]
    rows = [
        ("Clients held, each watching jobs on one connection", f"{out['opened']:,} x {out['jobs_per_client']} "
         f"= {out['watched_jobs']:,} watched jobs, {out['error_count']} errors"),
        ("RSS per client (per watched job) over the idle process",
         f"{out['rss_per_client_kb']} KB ({out['rss_per_watched_job_kb']} KB)"),
        ("Redis commands/s while idle (all of them)", f"{out['idle']['redis_cps']}"),
        ("Web-process CPU while idle (% of one core)", f"{out['idle']['cpu_pct']} %"),
        (f"Delivery latency p50 / p99, one job of every client updated at once ({out['rounds']} rounds)",
         f"{lat.get('p50')} ms / {lat.get('p99')} ms"),
        ("Update events delivered / expected", f"{out['events']:,} / {out['expected_events']:,}"),
    ]
    table = "| Metric | hub, many-jobs stream |\n| --- | --- |\n" + "".join(f"| {m} | {v} |\n" for m, v in rows)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    block = (f"<!-- many:start -->\nMeasured {stamp} UTC with `python -m bench.many` "
             f"(full results in `bench/results/many.json`):\n\n{table}<!-- many:end -->")
    text = README.read_text()
    text = re.sub(r"<!-- many:start -->.*<!-- many:end -->", block, text, flags=re.S)
    README.write_text(text)


if __name__ == "__main__":
    main()
