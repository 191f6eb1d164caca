"""The docs UI (/api/v1/docs) renders the document in real headless Chromium, with every request
going to the service itself (Swagger UI's files come from the swagger-ui-bundle-v2 package)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from .test_page import ARGS, CHROMIUM


def test_swagger_ui_renders_every_operation_from_the_service_alone(live):
    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(f"{live.url}/api/v1/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
            title = page.inner_text(".info .title")
        finally:
            browser.close()
    assert "jobapp" in title
    assert "/api/v1/sse/jobs/{job_type}/{job_id}" in paths and "/api/v1/characters/queue" in paths, paths
    origin = urlsplit(live.url).netloc
    assert all(urlsplit(url).netloc == origin for url in requested if url.startswith("http")), requested
    assert not errors, errors
