"""The FastAPI reference's job shape as jobapp job types, so both servers drain the same work.

``bench.peers`` runs jobapp with ``JOBAPP_JOBS=bench.samejob``: ``character`` and ``media`` walk the
reference's ten steps (``tasks.py`` in ../shared/references/fastapi-sse): progress ``i * 10``, stage
``character_<i+1>``, one ``JOB_STEP_SECONDS`` sleep each, then the result. Progress is reported the
plain RQ way, as the reference and most teams' jobs do it: ``job.meta`` plus ``save_meta()``.
With the same steps on both sides, "per event" and "per job" compare the same work; with the demo
jobs (four or five steps and a few log lines) RQ's fixed cost per job would fall on fewer events.
The request bodies are the reference's (``CharacterIn``, ``MediaIn`` in its ``app/main.py``).
"""

from __future__ import annotations

import os
import time
import uuid

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from rq import get_current_job

from jobapp import job_type

STEPS = 10


class CharacterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=100)
    age: StrictInt = Field(ge=0, le=10000)


class MediaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    characterId: str = Field(min_length=1)
    kind: Literal["image", "audio", "video"]
    prompt: Optional[str] = None


def _walk(stage_prefix: str, message_prefix: str) -> None:
    job = get_current_job()
    step_seconds = float(os.environ.get("JOB_STEP_SECONDS", "0.2"))
    for i in range(STEPS):
        job.meta.update(progress=i * 100 // STEPS, stage=f"{stage_prefix}_{i + 1}",
                        message=f"{message_prefix} (step {i + 1} of {STEPS})")
        job.save_meta()
        time.sleep(step_seconds)


@job_type("character", route="characters", schema=CharacterRequest)
def create_character(owner: str, params: dict) -> dict:
    _walk("character", "Building character")
    return {"characterId": str(uuid.uuid4()), "name": params.get("name")}


@job_type("media", route="media", schema=MediaRequest)
def create_media(owner: str, params: dict) -> dict:
    _walk("media", "Rendering " + str(params.get("kind", "media")))
    return {"mediaId": str(uuid.uuid4()), "characterId": params.get("characterId")}
