"""Registers a nested function, which RQ's worker could never import by name."""

from pydantic import BaseModel

from jobapp import job_type


class Body(BaseModel):
    name: str


def make():
    @job_type("nested", schema=Body)
    def inner(owner: str, params: dict) -> dict:
        return {}
    return inner


make()
