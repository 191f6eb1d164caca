"""A job that loops over many items through progress.track."""

import time

from pydantic import BaseModel, ConfigDict, Field

from jobapp import job_type, progress


class Loop(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: int = Field(ge=1, le=1_000_000)
    seconds: float = Field(default=2.0, ge=0, le=30)  # roughly how long the whole loop takes


@job_type("track", schema=Loop)
def loop(owner: str, params: dict) -> dict:
    items, seconds = params["items"], params.get("seconds", 2.0)
    nap = seconds / max(1, items // 1000)
    total = 0
    for i in progress.track(range(items), stage="loop"):
        total += i
        if i % 1000 == 999:
            time.sleep(nap)  # a loop of real work: many items, a couple of seconds
    return {"sum": total}
