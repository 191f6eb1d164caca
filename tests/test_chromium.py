"""Real headless Chromium (Debian's, driven by Playwright) against the live service: the browser's
own ``EventSource`` on a job's ``streamUrl``, and the docs UI (Swagger UI from the
swagger-ui-bundle-v2 package, every request going to the service itself)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit


from .sse_client import queue_character

FOLLOW = """async (url) => new Promise((resolve) => {
  const messages = [], opened = [];
  const source = new EventSource(url);
  source.onopen = () => opened.push(Date.now());
  source.onmessage = (e) => messages.push({ id: e.lastEventId, data: e.data });
  const check = setInterval(() => {
    if (source.readyState === EventSource.CLOSED) {
      clearInterval(check);
      resolve({ messages, opened: opened.length, state: source.readyState });
    }
  }, 50);
  setTimeout(() => { source.close(); clearInterval(check); resolve({ messages, opened: opened.length, state: -1 }); }, 25000);
})"""


def test_chromium_eventsource_follows_a_job_then_stops_on_204(live, browser):
    job = queue_character(live.url, live.headers())
    page = browser.new_page()
    try:
        page.goto(f"{live.url}/healthz")  # same origin as the stream
        result = page.evaluate(FOLLOW, live.url + job["streamUrl"])
    finally:
        page.close()
    assert result["state"] == 2, f"EventSource did not reach CLOSED: {result}"
    messages = result["messages"]
    assert messages and all(m["data"] for m in messages), "no empty messages"
    updates = [json.loads(m["data"]) for m in messages]
    assert updates[-1]["status"] == "completed" and updates[-1]["progress"] == 100
    assert result["opened"] == 1, "the reconnect after the terminal event was answered 204, so it never reopened"


def test_swagger_ui_renders_every_operation_from_the_service_alone(live, browser):
    requested: list[str] = []
    errors: list[str] = []
    page = browser.new_page()
    try:
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{live.url}/api/v1/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
        title = page.inner_text(".info .title")
    finally:
        page.close()
    assert "jobapp" in title
    assert "/api/v1/sse/jobs/{job_type}/{job_id}" in paths and "/api/v1/characters/queue" in paths, paths
    origin = urlsplit(live.url).netloc
    assert all(urlsplit(url).netloc == origin for url in requested if url.startswith("http")), requested
    assert not errors, errors
