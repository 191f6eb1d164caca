"""Request bodies of the queue routes, validated with pydantic (strict: no type coercion)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class CharacterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    age: int = Field(ge=0, le=10000)
    species: Optional[Short] = None
    occupation: Optional[Short] = None
    traits: Optional[list[Short]] = Field(default=None, max_length=10)
    description: Optional[Annotated[str, StringConstraints(max_length=1000)]] = None


class MediaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    characterId: Id
    kind: Literal["image", "audio", "video"]
    prompt: Optional[Annotated[str, StringConstraints(max_length=500)]] = None
