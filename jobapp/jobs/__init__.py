"""The job registry: every job type, its queue, its request schema and the function that runs it.

Adding a job type is one module with a ``run(owner, params)`` function and one entry below;
the queue route, the snapshot and the stream follow from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Type

from pydantic import BaseModel

from ..config import Config
from .schemas import CharacterRequest, MediaRequest


class JobFailed(Exception):
    """Raise in a job to fail it; the message becomes the job's ``failedReason`` as it is."""


@dataclass(frozen=True)
class JobType:
    name: str  # the contract's job type, also the RQ queue name
    route: str  # the collection in the URL: POST /api/v1/<route>/queue
    func: str  # dotted path RQ imports in the worker (no pickled callables)
    schema: Type[BaseModel]  # validates the queue request body
    describe: Callable[[dict], str]  # what operators see in rq-dashboard


REGISTRY: dict[str, JobType] = {
    "character": JobType(
        name="character", route="characters", func="jobapp.jobs.character.run", schema=CharacterRequest,
        describe=lambda p: f"Create character {p['name']!r} (age {p['age']})",
    ),
    "media": JobType(
        name="media", route="media", func="jobapp.jobs.media.run", schema=MediaRequest,
        describe=lambda p: f"Render {p['kind']} for character {p['characterId']}",
    ),
}

QUEUE_NAMES = tuple(REGISTRY)


@lru_cache(maxsize=1)
def settings() -> Config:
    """Settings inside a worker, where there is no Flask app."""
    return Config.from_env()
