"""Takes the demo's 'media' route under another name."""

from pydantic import BaseModel

from jobapp import job_type


class Body(BaseModel):
    name: str


@job_type("pictures", route="media", schema=Body)
def pictures(owner: str, params: dict) -> dict:
    return {}
