"""Registers a second 'character' type: clashes with jobapp.demo's."""

from pydantic import BaseModel

from jobapp import job_type


class Body(BaseModel):
    name: str


@job_type("character", route="people", schema=Body)
def another_character(owner: str, params: dict) -> dict:
    return {}
