"""The JavaScript client (client/) and the frontend guide's hook, tested by Node against the live service.

The tests themselves are in tests/js (``node --test``): the guide's useJobSSE logic copied verbatim,
a spec EventSource on the streamUrl, watchJob, the SSE parser on re-chunked streams, dropped
connections, and useJobSSE under React. This runs them against the session's gunicorn + RQ worker
and fails with Node's whole output if any of them fails or is skipped.

Their packages (eventsource, react, react-test-renderer, @microsoft/fetch-event-source) come from tests/js/package-lock.json:
``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from .support import ROOT, WebServer, make_token

JS_DIR = ROOT / "tests" / "js"
INSTALL = "npm ci --prefix tests/js"
PACKAGES = ("eventsource", "react", "react-test-renderer", "@microsoft/fetch-event-source")
MIN_NODE = 20
#: The second web process, for the 429 test, lets a user hold only this many open streams.
STREAM_CAP = 5
#: Test files Node runs at once: they wait on the live server far more than they compute, and Node's
#: default (one less than the cores) runs them one by one on a 2-core machine.
CONCURRENCY = 4


def node_binary() -> str:
    node = shutil.which("node")
    assert node, f"node {MIN_NODE}+ is needed for tests/js and is not on PATH"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    assert major >= MIN_NODE, f"node {MIN_NODE}+ is needed for tests/js, found {version}"
    return node


def tap_count(output: str, name: str) -> int:
    found = re.findall(rf"^# {name} (\d+)$", output, re.M)
    assert found, f"node --test printed no '# {name}' summary:\n{output}"
    return int(found[-1])


def test_js_client_against_live_server(live):
    node = node_binary()
    missing = [name for name in PACKAGES if not (JS_DIR / "node_modules" / name / "package.json").is_file()]
    assert not missing, f"tests/js/node_modules lacks {', '.join(missing)}: run `{INSTALL}` first"
    files = sorted(str(path.relative_to(ROOT)) for path in JS_DIR.glob("*.test.mjs"))
    assert files, "no tests/js/*.test.mjs found"

    # A second web process on the same Redis and worker, with a small cap on open streams per
    # user, so the 429 test can reach the cap (the session's server allows many more).
    capped = WebServer({**live.env, "MAX_STREAMS_PER_USER": str(STREAM_CAP)}, live.log_dir)
    env = {k: v for k, v in os.environ.items() if k not in {"NODE_OPTIONS", "NODE_ENV"}}
    env.update({
        "JOBAPP_URL": live.url,
        "JOBAPP_URL_CAPPED": capped.url,
        "JOBAPP_TOKEN": make_token("js-client-alice"),
        "JOBAPP_TOKEN_B": make_token("js-client-bob"),
        "JOBAPP_TOKEN_C": make_token("js-client-carol"),
    })
    # Explicit files (a directory argument is read differently by Node 20 and 22) and the TAP
    # reporter, whose summary lines are counted below.
    try:
        proc = subprocess.run([node, "--test", "--test-reporter=tap", f"--test-concurrency={CONCURRENCY}", *files],
                              cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        capped.stop()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"node --test exited {proc.returncode}:\n{output}"
    assert tap_count(output, "fail") == 0, output
    assert tap_count(output, "skipped") == 0, f"some Node tests were skipped:\n{output}"
    assert tap_count(output, "cancelled") == 0, output
    assert tap_count(output, "pass") >= 50, output
