"""The shapes of the API's answers and events, as pydantic models: the OpenAPI document's schemas
are generated from them (``model_json_schema``), as the request bodies' are from ``jobs/schemas.py``.

They describe what the service sends (the contract, 1.1 included); the routes build their answers
from ``state.py`` and check nothing against these. ``tests/test_openapi.py`` (schemathesis) checks
the live answers and stream events against the document, so a drift between the two fails there.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
ARTIFACT_ID = r"^[0-9a-f]{32}$"
Status = Literal["pending", "active", "completed", "failed", "canceled"]


def _doc(description: str, examples: Optional[list] = None, closed: bool = True) -> ConfigDict:
    extra: dict[str, Any] = {"description": description}
    if examples:
        extra["examples"] = examples
    return ConfigDict(extra="forbid" if closed else "allow", json_schema_extra=extra)


class ErrorDetail(BaseModel):
    model_config = _doc("What went wrong.")
    code: str = Field(min_length=1, description="Machine-readable, e.g. `validation_error`, `invalid_json`, "
                                                "`unauthorized`, `token_expired`, `not_found`, `job_finished`.")
    message: str = Field(min_length=1, description="Human-readable.")
    fields: Optional[dict[str, str]] = Field(None, description="On `validation_error`: a message per offending "
                                                               "field (`body` for the body as a whole).")


class Error(BaseModel):
    model_config = _doc("Every error answer: JSON, never an HTML page or a traceback.", [
        {"error": {"code": "validation_error", "message": "age: Input should be a valid integer",
                   "fields": {"age": "Input should be a valid integer"}}}])
    error: ErrorDetail


class JobUpdate(BaseModel):
    model_config = _doc("The `job_update` event: the `data:` line of a stream's events, and the body of a "
                        "snapshot. Fields marked 1.1 are the contract's additions.", [
                            {"type": "job_update", "jobId": "3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c",
                             "jobType": "character", "status": "active", "progress": 60, "stage": "backstory",
                             "message": "Writing backstory", "updatedAt": 1764000000123, "result": None,
                             "failedReason": None}])
    type: Literal["job_update"] = Field(description="Always `job_update`.")
    jobId: str = Field(pattern=UUID4, description="The job's id (a UUID4).")
    jobType: str = Field(description="The job's type (a registered job type).")
    status: Status = Field(description="`pending` (queued, deferred or scheduled), `active` (running), then one "
                                       "of the terminal statuses `completed`, `failed` or `canceled`.")
    progress: int = Field(ge=0, le=100, description="0..100, never decreasing within an attempt; 100 on `completed`.")
    stage: Optional[str] = Field(description="Machine-readable step name set by the job, or null.")
    message: Optional[str] = Field(description="Human-readable text set by the job, or null.")
    updatedAt: int = Field(ge=0, description="Epoch milliseconds at which this state was recorded; never decreases.")
    result: Optional[dict[str, Any]] = Field(description="On `completed`: the job's JSON result, e.g. "
                                                         "`{\"characterId\": \"…\"}`; else null.")
    failedReason: Optional[str] = Field(description="On `failed`: a short human-readable reason, never a "
                                                    "traceback; else null.")
    attempt: Optional[int] = Field(None, ge=1, description="1.1: 1 on the first run; 2, 3… on retries.")
    maxAttempts: Optional[int] = Field(None, ge=1, description="1.1: how many attempts the job may take.")
    position: Optional[int] = Field(None, ge=1, description="1.1: a pending job's 1-based place in its queue; "
                                                            "else null.")
    scheduledFor: Optional[int] = Field(None, ge=0, description="1.1: epoch ms at which a job queued to run "
                                                                "later becomes due; else null.")
    waitingFor: Optional[list[str]] = Field(None, description="1.1: the ids of jobs it still waits for; else null.")


class JobLog(BaseModel):
    model_config = _doc("1.1: the `job_log` event: lines a job wrote to its own log for the user, in order.", [
        {"type": "job_log", "jobId": "3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c", "seq": 12,
         "lines": ["Fetched 3 sources", "Wrote the draft"], "dropped": 0}])
    type: Literal["job_log"] = Field(description="Always `job_log`.")
    jobId: str = Field(pattern=UUID4, description="The job's id.")
    seq: int = Field(ge=1, description="The 1-based number of the last line in `lines` across the job's whole log.")
    lines: list[str] = Field(description="The new lines.")
    dropped: int = Field(ge=0, description="Older lines dropped by the cap that will never be sent (0 when none).")


class ServerSentEvent(BaseModel):
    model_config = _doc(
        "One event of a stream, as a client's SSE parser reads it: `id: <n>` and one `data:` line of JSON "
        "(`JobUpdate`, or a 1.1 `JobLog`), with no `event:` field, so its type is the default `message` and "
        "`EventSource.onmessage` fires. `retry: <ms>` travels in the first event's block, and `: keep-alive` "
        "comment lines (no blank line after them) are not events.")
    id: str = Field(pattern="^[0-9]+$", description="Only increases, across reconnects and web processes; "
                                                    "`EventSource` sends it back as `Last-Event-ID`.")
    event: Optional[Literal["message"]] = Field(None, description="Never sent, so always the default `message`.")
    data: str = Field(description="A `JobUpdate` (or `JobLog`) as one line of JSON.", json_schema_extra={
        "contentMediaType": "application/json",
        "contentSchema": {"oneOf": [{"$ref": "#/components/schemas/JobUpdate"},
                                    {"$ref": "#/components/schemas/JobLog"}]}})
    retry: Optional[int] = Field(None, ge=0, description="Reconnect delay hint in milliseconds.")


class Links(BaseModel):
    streamUrl: str = Field(pattern=r"^/api/v1/sse/jobs/[a-z0-9_-]+/[0-9a-f-]+\?token=[A-Za-z0-9_.-]+$",
                           description="The job's event stream with a fresh read-only stream token in `?token=`; "
                                       "open it with `EventSource` as it is.")
    statusUrl: str = Field(pattern=r"^/api/v1/jobs/[a-z0-9_-]+/[0-9a-f-]+$",
                           description="The job's snapshot (the fallback for clients without SSE).")


class JobLogLines(BaseModel):
    model_config = _doc("1.1: a job's kept log lines, with `?log=1` on its snapshot.")
    lines: list[str] = Field(description="The kept lines, oldest first.")
    seq: int = Field(ge=0, description="The number of the last line in `lines` across the job's whole log.")
    dropped: int = Field(ge=0, description="How many of the oldest lines the `JOB_LOG_MAX_LINES` cap removed.")


class JobSnapshot(JobUpdate, Links):
    model_config = _doc("A job's latest state (the same payload as its latest event) plus a fresh `streamUrl` "
                        "and its `statusUrl`.")
    log: Optional[JobLogLines] = Field(None, description="With `?log=1`: the job's log lines (1.1).")


class JobTypeInfo(BaseModel):
    model_config = _doc("A registered job type.")
    name: str = Field(description="The job type (`jobType` of its events).")
    route: str = Field(description="The collection in its queue route.")
    queueUrl: str = Field(description="`POST` a body here to queue one.")
    maxAttempts: int = Field(ge=1, description="How many attempts a job of this type may take (1.1).")
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the request body.")


class JobTypeList(BaseModel):
    model_config = _doc("Every registered job type (what the live page builds its forms from).")
    data: list[JobTypeInfo]


class QueuedJob(Links):
    model_config = _doc("A job just queued.")
    jobId: str = Field(pattern=UUID4, description="The job's id (a UUID4).")
    type: str = Field(description="The job's type.")
    status: Literal["pending"]


class JobList(BaseModel):
    model_config = _doc("A page of the caller's jobs, newest first.")
    data: list[JobSnapshot] = Field(max_length=100)
    nextCursor: Optional[str] = Field(min_length=1, description="Pass as `cursor` for the next page; null on the "
                                                                "last page.")
    streamUrl: str = Field(pattern=r"^/api/v1/sse/jobs\?token=[A-Za-z0-9_.-]+$",
                           description="The caller's many-jobs stream, with a read-only stream token scoped to the "
                                       "caller's jobs (append `&ids=…` to narrow it).")


class Character(BaseModel):
    model_config = _doc("A character profile made by a `character` job.", closed=False)
    id: str = Field(pattern=ARTIFACT_ID)
    name: str
    age: int
    species: str
    occupation: str
    traits: list[str]
    stats: dict[str, int]
    backstory: str
    createdAt: int = Field(description="Epoch milliseconds.")


class Health(BaseModel):
    model_config = _doc("Liveness.", closed=False)
    status: Literal["ok"]


class Readiness(BaseModel):
    model_config = _doc("Readiness: Redis answers; and whether it is full or may evict jobs.", closed=False)
    status: Literal["ready"]
    redis: Literal["ok"]
    maxmemoryPolicy: str = Field(description="Redis's `maxmemory-policy`.")
    evicts: bool = Field(description="True if that policy can delete keys (jobs would vanish).")
    full: bool = Field(description="True if Redis is at `maxmemory`: new jobs are refused.")
    warnings: list[str]


class DevConfig(BaseModel):
    model_config = _doc("What the live page may offer.")
    devTokens: bool = Field(description="Whether `POST /dev/token` is there (not in production).")


class DevTokenRequest(BaseModel):
    model_config = _doc("The user to mint a development token for.", closed=False)
    userId: str = Field(pattern="^[A-Za-z0-9_.@-]{1,64}$")


class DevToken(BaseModel):
    model_config = _doc("A one-hour access token.")
    token: str
    userId: str


#: Every model the document names, in the order its schemas are listed.
MODELS: tuple[type[BaseModel], ...] = (Error, JobUpdate, JobLog, ServerSentEvent, JobLogLines, JobSnapshot, QueuedJob,
                                       JobList, JobTypeInfo, JobTypeList,
                                       Character, Health, Readiness, DevConfig, DevTokenRequest, DevToken)
Event = Union[JobUpdate, JobLog]
