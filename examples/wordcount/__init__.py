"""Word count: a team's own job type, outside jobapp, written the plain RQ way.

Load it with ``JOBAPP_JOBS=jobapp.demo,examples.wordcount`` (web and worker). It counts the words
of a text, reports progress with RQ's own idiom (``job.meta`` + ``job.save_meta()``), stores every
word's count as a CSV file with ``store_file`` and returns the most frequent words plus the file's URL.
Nothing in it knows about SSE: jobapp streams each ``save_meta()`` to the browser.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field
from rq import get_current_job

from jobapp import job_type, store_file

WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
CHUNKS = 5
#: Seconds to linger after each chunk, so a short text's progress can be watched (the tests set it).
STEP_SECONDS = float(os.environ.get("WORDCOUNT_STEP_SECONDS", "0"))


class WordCountRequest(BaseModel):
    """The body of ``POST /api/v1/word-counts/queue``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=1_000_000, description="The text whose words to count.")
    top: int = Field(default=10, ge=1, le=100, description="How many of the most frequent words to return.")
    minLength: int = Field(default=1, ge=1, le=30, description="Ignore words shorter than this.")


@job_type("wordcount", route="word-counts", schema=WordCountRequest, timeout=300,
          describe=lambda p: f"Count the words of a {len(p['text']):,}-character text")
def count_words(owner: str, params: dict) -> dict:
    job = get_current_job()
    lines = params["text"].splitlines() or [params["text"]]
    size = -(-len(lines) // CHUNKS)  # lines per chunk, rounded up
    counts: Counter[str] = Counter()
    for chunk in range(CHUNKS):
        for line in lines[chunk * size:(chunk + 1) * size]:
            counts.update(w for w in WORD.findall(line.casefold()) if len(w) >= params.get("minLength", 1))
        job.meta["progress"] = (chunk + 1) * 90 // CHUNKS  # 18, 36, 54, 72, 90
        job.meta["stage"] = "count"
        job.meta["message"] = f"Counted {min(len(lines), (chunk + 1) * size):,} of {len(lines):,} lines"
        job.save_meta()
        time.sleep(STEP_SECONDS)  # a pretend slow step, so each save shows on a page for a moment

    job.meta.update(progress=95, stage="save", message="Writing the CSV file")
    job.save_meta()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["word", "count"])
    writer.writerows(counts.most_common())
    url = store_file(out.getvalue().encode(), "text/csv; charset=utf-8", filename="word-counts.csv")
    time.sleep(STEP_SECONDS)
    return {"words": sum(counts.values()), "distinct": len(counts),
            "top": [[word, n] for word, n in counts.most_common(params.get("top", 10))], "url": url}
