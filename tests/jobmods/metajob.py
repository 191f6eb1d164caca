"""A job written the plain RQ way, as existing RQ code reports progress: meta + save_meta(), no jobapp helper.

``steps`` saves at 100/(steps+1) % each, ``pause`` seconds apart, then returns.
"""

import time

from pydantic import BaseModel, ConfigDict, Field
from rq import get_current_job

from jobapp import job_type


class MetaSteps(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    steps: int = Field(ge=1, le=20)
    pause: float = Field(default=0.3, ge=0, le=5)


@job_type("metajob", route="meta-steps", schema=MetaSteps, describe=lambda p: f"{p['steps']} meta steps")
def meta_steps(owner: str, params: dict) -> dict:
    job = get_current_job()
    for step in range(1, params["steps"] + 1):
        time.sleep(params.get("pause", 0.3))
        job.meta["progress"] = step * 100 // (params["steps"] + 1)
        job.meta["stage"] = f"step-{step}"
        job.meta["message"] = f"Step {step} of {params['steps']}"
        job.save_meta()
    time.sleep(params.get("pause", 0.3))
    return {"steps": params["steps"]}
