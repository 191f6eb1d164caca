"""The live page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import re
import time



def sign_in(page, url: str, user: str) -> None:
    """Open the page and sign in as ``user`` through the development token route."""
    page.goto(f"{url}/")
    page.fill("#user", user)
    page.click("#dev-token")
    page.wait_for_selector("#status:has-text('live')")


def signed_in_page(browser, url: str, user: str):
    """A new page signed in as ``user``, and the list its uncaught script errors go to."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url, user)
    return page, errors


def test_create_a_character_watch_it_finish_and_render_its_portrait(live, browser, artifacts):
    page, errors = signed_in_page(browser, live.url, "page-user")
    page.fill("#name", "Pixel")
    page.click("#create-character")
    page.wait_for_selector(".job[data-status='completed'] .sheet dt:has-text('Pixel')", timeout=20000)
    width = page.eval_on_selector(".job[data-status='completed'] .bar > div", "el => el.style.width")
    assert width == "100%"
    page.click(".job[data-status='completed'] .render")
    page.wait_for_selector("img.media", timeout=20000)
    page.wait_for_function("document.querySelector('img.media').naturalWidth === 256")
    page.wait_for_timeout(400)  # let the bars finish their transition
    page.screenshot(path=str(artifacts / "live-page.png"), full_page=True)
    assert not errors


def test_ten_jobs_at_once_on_one_connection_and_the_page_stays_responsive(live, browser, artifacts):
    page = browser.new_page()
    streams = []
    page.on("request", lambda req: streams.append(req.url) if "/api/v1/sse/" in req.url else None)
    sign_in(page, live.url, "ten-user")
    page.fill("#count", "10")
    page.click("#create-character")
    page.wait_for_function("document.querySelectorAll('.job').length === 10")
    # While ten jobs run, another route still loads: one stream holds one of the browser's 6 connections.
    started = time.monotonic()
    status = page.evaluate("fetch('/healthz').then(r => r.status)")
    assert status == 200 and time.monotonic() - started < 15, "a stuck connection pool would hang this fetch"
    page.wait_for_function(
        "[...document.querySelectorAll('.job')].filter(j => j.dataset.status === 'completed' && j.dataset.progress === '100').length === 10",
        timeout=60000)
    assert len(streams) == 1, f"one connection for all jobs, not {streams}"
    page.screenshot(path=str(artifacts / "live-page-ten-jobs.png"), full_page=True)


def test_a_portrait_queued_while_its_character_is_made_and_the_log_under_the_bar(service, browser, artifacts):
    svc = service(JOB_STEP_SECONDS="1")
    page, errors = signed_in_page(browser, svc.url, "early-user")
    page.fill("#name", "Early")
    page.click("#create-character")
    page.click(".job[data-status='pending'] .early, .job[data-status='active'] .early")
    page.wait_for_selector(".job .line:has-text('waiting for Early')", timeout=10000)
    page.wait_for_selector(".job .log:has-text('Species:')", timeout=20000)
    page.wait_for_selector("img.media", timeout=30000)
    page.wait_for_function("document.querySelector('img.media').naturalWidth === 256")
    page.screenshot(path=str(artifacts / "live-page-depends-on.png"), full_page=True)
    assert not errors


def test_jobs_waiting_in_line_show_their_place(service, browser):
    idle = service(workers=0)  # an empty queue of its own: the shared idle service has other tests' jobs in line
    page = browser.new_page()
    sign_in(page, idle.url, "line-user")
    page.fill("#count", "3")
    page.click("#create-character")
    # The idle service's queue may hold other tests' jobs ahead of these: three consecutive places.
    page.wait_for_function(
        "[...document.querySelectorAll('.job .line')].filter(l => / in line/.test(l.textContent)).length === 3",
        timeout=15000)
    lines = page.eval_on_selector_all(".job .line", "els => els.map(e => e.textContent)")
    places = sorted(int(re.search(r"(\d+)(st|nd|rd|th) in line", line).group(1)) for line in lines)
    assert places == list(range(places[0], places[0] + 3)), lines
