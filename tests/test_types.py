"""The TypeScript declarations of client/ (``*.d.ts``) checked by the real compiler under ``--strict``.

tests/js/types/ holds consumers written as a TypeScript app would: the guide's ``JobProgress``
component on ``useJobSSE`` and a ``watchJobs``/``watchJob`` user, reading every contract 1.1 field.
They must compile; tests/js/types/misuse/ uses wrong field names and must not.
``typescript`` and ``@types/react`` come from tests/js/package-lock.json (``npm ci --prefix tests/js``).
"""

from __future__ import annotations

import re
import subprocess

from .support import ROOT
from .test_js_client import INSTALL, JS_DIR, node_binary

TSC = JS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
TYPES = JS_DIR / "types"


def tsc(project) -> subprocess.CompletedProcess:
    assert TSC.is_file(), f"tests/js/node_modules lacks typescript: run `{INSTALL}` first"
    assert (JS_DIR / "node_modules" / "@types" / "react").is_dir(), f"@types/react missing: run `{INSTALL}`"
    return subprocess.run([node_binary(), str(TSC), "-p", str(project), "--pretty", "false"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_consumers_type_check_under_strict():
    proc = tsc(TYPES / "tsconfig.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_field_name_fails_the_check():
    proc = tsc(TYPES / "misuse" / "tsconfig.json")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "the misuse compiled"
    errors = re.findall(r"error (TS\d+): (.*)", output)
    assert sorted(errors) == [
        ("TS2339", "Property 'error' does not exist on type 'JobUpdateEvent<JobResult>'."),
        ("TS2339", "Property 'percent' does not exist on type 'JobSSEState<JobResult>'."),
    ], output
