"""The TypeScript declarations of client/ (``*.d.ts``) checked by the real compiler under ``--strict``.

tests/js/types/ holds consumers written as a TypeScript app would: the guide's ``JobProgress``
component on ``useJobSSE`` and a ``watchJobs``/``watchJob`` user, reading every contract 1.1 field.
They must compile; tests/js/types/misuse/ uses wrong field names and must not (one compiler run
checks both: every error must come from the misuse file).
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


def test_consumers_type_check_under_strict_and_a_wrong_field_name_does_not():
    """One compiler run (it is the slow part): the consumers must compile without a single error,
    and the misuse file must fail with exactly its two wrong field names."""
    proc = tsc(TYPES / "tsconfig.json")
    output = proc.stdout + proc.stderr
    errors = re.findall(r"^(\S+)\(\d+,\d+\): error (TS\d+): (.*)$", output, re.M)
    assert proc.returncode != 0 and errors, f"the misuse compiled:\n{output}"
    outside = [error for error in errors if not error[0].startswith("tests/js/types/misuse/")]
    assert not outside, f"the consumers (or the declarations) do not type-check:\n{output}"
    assert sorted((code, text) for _, code, text in errors) == [
        ("TS2339", "Property 'error' does not exist on type 'JobUpdateEvent<JobResult>'."),
        ("TS2339", "Property 'percent' does not exist on type 'JobSSEState<JobResult>'."),
    ], output
