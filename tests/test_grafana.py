"""The Grafana dashboard (deploy/grafana/jobapp.json) only queries metrics /metrics really exports,
and failures are counted by a bounded set of reason kinds."""

from __future__ import annotations

import json
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rq.timeouts import JobTimeoutException

from jobapp import jobstats, reaper
from jobapp.worker import failed_reason

from .sse_client import read_stream
from .support import ROOT

DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "jobapp.json").read_text())
PROMQL_FUNCTIONS_AND_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "without"}


def exported_samples(base: str) -> dict[str, list]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def queried_metrics(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)  # label matchers, ranges, strings
    return {name for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if name not in PROMQL_FUNCTIONS_AND_WORDS and not re.fullmatch(r"e\d*", name)
            and not name.startswith("__") and name not in ("queue", "type", "status", "reason")}


def test_every_panel_queries_metrics_that_metrics_exports(live):
    samples = exported_samples(live.url)
    panels = DASHBOARD["panels"]
    titles = " ".join(p["title"].lower() for p in panels)
    for wanted in ("open sse streams", "events sent per second", "queue depth", "job duration", "failures by reason"):
        assert wanted in titles, wanted
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = queried_metrics(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            missing = {name for name in names if name not in samples}
            assert not missing, f"{panel['title']} queries {missing}, which /metrics does not export"


def test_reason_kinds_match_the_reasons_the_service_writes():
    class Job:
        timeout = 600
    assert jobstats.reason_kind(failed_reason(Job(), JobTimeoutException, JobTimeoutException("x"))) == "timeout"
    assert jobstats.reason_kind(failed_reason(Job(), ValueError, ValueError("boom"))) == "error"
    assert jobstats.reason_kind(reaper.DIED) == "worker_died"
    assert jobstats.reason_kind("Character not found") == "job_failed"
    assert jobstats.reason_kind(None) == "job_failed"


def test_a_failed_job_counts_under_its_reason_kind(live):
    def failed_count() -> float:
        found = [s.value for s in exported_samples(live.url).get("jobapp_jobs_failed_total", [])
                 if s.labels == {"type": "media", "reason": "job_failed"}]
        assert found, "jobapp_jobs_failed_total{type=media,reason=job_failed} is not exported"
        return found[0]

    before = failed_count()
    queued = httpx.post(f"{live.url}/api/v1/media/queue", json={"characterId": "0" * 32, "kind": "image"},
                        headers=live.headers(), timeout=10)
    assert queued.status_code == 202, queued.text
    stream = read_stream(f"{live.url}/api/v1/sse/jobs/media/{queued.json()['data']['jobId']}", live.headers())
    assert stream.events[-1][1]["status"] == "failed", stream.events
    assert failed_count() == before + 1
    kinds = {s.labels["reason"] for s in exported_samples(live.url)["jobapp_jobs_failed_total"]}
    assert kinds == set(jobstats.REASON_KINDS), "a fixed set of label values"
