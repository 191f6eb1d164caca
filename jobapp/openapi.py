"""The OpenAPI 3.1 document of the whole API, and a docs page that renders it.

``GET /api/v1/openapi.json`` serves the document and ``GET /api/v1/docs`` a small self-contained
HTML page that renders it in plain JavaScript (nothing is fetched from anywhere at runtime; the
document is embedded in the page). Neither needs a token.

The document is built, not hand-copied: request bodies come from the pydantic models of
``jobs/schemas.py`` (``model_json_schema()``), job types and queue routes from the job registry,
limits from the app's settings. ``tests/test_openapi.py`` keeps the rest true: every rule of the
app's URL map is documented with its methods and nothing else is, the document validates as
OpenAPI, and schemathesis checks the running API against it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any, Optional

from flask import Blueprint, Flask, Response, current_app, jsonify

from .jobs import REGISTRY
from .state import ACTIVE, CANCELED, COMPLETED, FAILED, PENDING

API_PREFIX = "/api/v1"
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"

bp = Blueprint("openapi", __name__)

JSON = "application/json"
SSE = "text/event-stream"

_UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_ARTIFACT_ID = r"^[0-9a-f]{32}$"

# Tags, in the order the docs page shows them.
TAGS = [
    {"name": "jobs", "description": "Queue a job, list your jobs, read a job's state, cancel it."},
    {"name": "stream", "description": "Watch jobs' progress as Server-Sent Events: one job, or many on one "
                                      "connection."},
    {"name": "results", "description": "What finished jobs made, to their owner only."},
    {"name": "operations", "description": "Health checks and metrics for the platform; no token."},
    {"name": "docs", "description": "This document and its rendering; no token."},
    {"name": "pages", "description": "The live page, its JavaScript client, and in development a token for it; "
                                     "no token."},
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _response_ref(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


# --- schemas -----------------------------------------------------------------------------------

def _request_schemas() -> dict[str, dict]:
    """Every job type's request body schema, straight from its pydantic model (no drift possible)."""
    schemas: dict[str, dict] = {}
    for job_type in REGISTRY.values():
        generated = job_type.schema.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in generated.pop("$defs", {}).items():
            schemas[name] = nested
        schemas[job_type.schema.__name__] = generated
    return schemas


def _event_properties() -> dict[str, dict]:
    return {
        "type": {"const": "job_update", "description": "Always `job_update`."},
        "jobId": {"type": "string", "pattern": _UUID4, "description": "The job's id (a UUID4)."},
        "jobType": {"type": "string", "enum": list(REGISTRY), "description": "The job's type."},
        "status": {
            "type": "string", "enum": [PENDING, ACTIVE, COMPLETED, FAILED, CANCELED],
            "description": "`pending` (queued, deferred or scheduled), `active` (running), then one of the "
                           "terminal statuses `completed`, `failed` or `canceled`.",
        },
        "progress": {"type": "integer", "minimum": 0, "maximum": 100,
                     "description": "Never decreases within a job; 100 on `completed`."},
        "stage": {**_nullable({"type": "string"}), "description": "Machine-readable step name set by the job."},
        "message": {**_nullable({"type": "string"}), "description": "Human-readable text set by the job."},
        "updatedAt": {"type": "integer", "minimum": 0,
                      "description": "Epoch milliseconds at which the worker recorded this state; never decreases "
                                     "within a job."},
        "result": {**_nullable({"type": "object"}),
                   "description": "On `completed`: the job's JSON result, e.g. `{\"characterId\": \"…\"}`; else null."},
        "failedReason": {**_nullable({"type": "string"}),
                         "description": "On `failed`: a short human-readable reason, never a traceback; else null."},
    }


def _link_properties() -> dict[str, dict]:
    return {
        "streamUrl": {"type": "string", "pattern": r"^/api/v1/sse/jobs/[a-z]+/[0-9a-f-]+\?token=[A-Za-z0-9_.-]+$",
                      "description": "The job's event stream with a fresh read-only stream token in `?token=`; "
                                     "open it with `EventSource` as it is."},
        "statusUrl": {"type": "string", "pattern": r"^/api/v1/jobs/[a-z]+/[0-9a-f-]+$",
                      "description": "The job's snapshot (the fallback for clients without SSE)."},
    }


def _schemas() -> dict[str, dict]:
    event = _event_properties()
    links = _link_properties()
    schemas = {
        "Error": {
            "type": "object",
            "description": "Every error answer: JSON, never an HTML page or a traceback.",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "minLength": 1,
                                 "description": "Machine-readable, e.g. `validation_error`, `invalid_json`, "
                                                "`unauthorized`, `token_expired`, `not_found`, `job_finished`."},
                        "message": {"type": "string", "minLength": 1, "description": "Human-readable."},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                                   "description": "On `validation_error`: a message per offending field "
                                                  "(`body` for the body as a whole)."},
                    },
                },
            },
            "examples": [{"error": {"code": "validation_error", "message": "age: Input should be a valid integer",
                                    "fields": {"age": "Input should be a valid integer"}}}],
        },
        "JobUpdate": {
            "type": "object",
            "description": "The event payload: one `data:` line of every SSE event, and the body of a snapshot.",
            "required": list(event),
            "additionalProperties": False,
            "properties": event,
            "examples": [{"type": "job_update", "jobId": "3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c",
                          "jobType": "character", "status": "active", "progress": 60, "stage": "backstory",
                          "message": "Writing backstory", "updatedAt": 1764000000123, "result": None,
                          "failedReason": None}],
        },
        "ServerSentEvent": {
            "type": "object",
            "description": "One event of a stream, as a client's SSE parser reads it: `id: <n>`, one `data:` "
                           "line of `JobUpdate` JSON, and no `event:` field (so its type is the default `message` "
                           "and `EventSource.onmessage` fires). Streams also carry `retry: <ms>` first and "
                           "`: keep-alive` comments, which are not events.",
            "required": ["data", "id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$",
                       "description": "Only increases, across reconnects and web processes; `EventSource` sends the "
                                      "last one back as `Last-Event-ID` when it reconnects."},
                "event": {"const": "message", "description": "Never sent, so always the default `message`."},
                "data": {"type": "string", "contentMediaType": JSON, "contentSchema": _ref("JobUpdate"),
                         "description": "A `JobUpdate` as one line of JSON."},
                "retry": {"type": "integer", "minimum": 0, "description": "Reconnect delay hint in milliseconds."},
            },
        },
        "JobSnapshot": {
            "type": "object",
            "description": "A job's latest state (the same payload as its latest event) plus a fresh `streamUrl` "
                           "and its `statusUrl`.",
            "required": list(event) + list(links),
            "additionalProperties": False,
            "properties": {**copy.deepcopy(event), **links},
        },
        "JobList": {
            "type": "object",
            "description": "A page of the caller's jobs, newest first.",
            "required": ["data", "nextCursor", "streamUrl"],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "array", "maxItems": 100, "items": _ref("JobSnapshot")},
                "nextCursor": {**_nullable({"type": "string", "minLength": 1}),
                               "description": "Pass as `cursor` for the next page; null on the last page."},
                "streamUrl": {"type": "string", "pattern": r"^/api/v1/sse/jobs\?token=[A-Za-z0-9_.-]+$",
                              "description": "The caller's many-jobs stream, with a read-only stream token scoped "
                                             "to the caller's jobs (append `&ids=…` to narrow it)."},
            },
        },
        "QueuedJob": {
            "type": "object",
            "description": "A job just queued.",
            "required": ["jobId", "type", "status", "streamUrl", "statusUrl"],
            "additionalProperties": False,
            "properties": {
                "jobId": event["jobId"],
                "type": event["jobType"],
                "status": {"const": PENDING},
                **links,
            },
        },
        "Character": {
            "type": "object",
            "description": "A character profile made by a `character` job.",
            "required": ["id", "name", "age", "species", "occupation", "traits", "stats", "backstory", "createdAt"],
            "properties": {
                "id": {"type": "string", "pattern": _ARTIFACT_ID},
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "species": {"type": "string"},
                "occupation": {"type": "string"},
                "traits": {"type": "array", "items": {"type": "string"}},
                "stats": {"type": "object", "additionalProperties": {"type": "integer"}},
                "backstory": {"type": "string"},
                "createdAt": {"type": "integer", "description": "Epoch milliseconds."},
            },
        },
        "Health": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object", "required": ["status", "redis", "maxmemoryPolicy", "evicts", "full", "warnings"],
            "properties": {
                "status": {"const": "ready"}, "redis": {"const": "ok"},
                "maxmemoryPolicy": {"type": "string", "description": "Redis's `maxmemory-policy`."},
                "evicts": {"type": "boolean", "description": "True if that policy can delete keys (jobs would vanish)."},
                "full": {"type": "boolean", "description": "True if Redis is at `maxmemory`: new jobs are refused."},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
    schemas.update(_request_schemas())
    return schemas


# --- responses ---------------------------------------------------------------------------------

def _error(description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _responses(max_body: int) -> dict[str, dict]:
    return {
        "BadRequest": _error("The body is not valid JSON (`invalid_json`), not a JSON object, or its fields are "
                             "invalid (`validation_error`, with a message per field in `fields`)."),
        "Unauthorized": _error("Missing, invalid or expired token (`token_expired` when expired), a token in the "
                               "URL of a route that takes only the header, or a stream token used as an access "
                               "token."),
        "NotFound": _error("Unknown id, another user's id, or an id of another job type: all answer alike, so "
                           "ids leak nothing."),
        "MethodNotAllowed": {
            **_error("The path does not take this method; `Allow` lists the ones it takes."),
            "headers": {"Allow": {"description": "The methods this path takes.", "schema": {"type": "string"}}},
        },
        "PayloadTooLarge": _error(f"The body is larger than `MAX_CONTENT_LENGTH` ({max_body} bytes here)."),
        "UnsupportedMediaType": _error("The body is not sent as `Content-Type: application/json`."),
        "RateLimited": {
            **_error("Too many requests: the per-user rate limit of the queue routes (`RATE_LIMIT_QUEUE`), or on "
                     "SSE routes the per-user cap on open streams (`MAX_STREAMS_PER_USER`). Retry after "
                     "`Retry-After` seconds."),
            "headers": {"Retry-After": {"required": True, "description": "Seconds to wait before retrying.",
                                        "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
        },
        "Unavailable": _error("Redis is unreachable (code `unavailable`) or full (code `store_full`): nothing was "
                              "queued or changed. Retry after `Retry-After` seconds."),
    }


def _errors(*statuses: int) -> dict[str, dict]:
    names = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
             413: "PayloadTooLarge", 415: "UnsupportedMediaType", 429: "RateLimited", 503: "Unavailable"}
    return {str(status): _response_ref(names[status]) for status in statuses}


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _data(schema: dict) -> dict:
    return {"type": "object", "required": ["data"], "additionalProperties": False, "properties": {"data": schema}}


_SSE_EXAMPLE = (
    'retry: 3000\n\nid: 1764000000123000\ndata: {"type":"job_update","jobId":"3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c",'
    '"jobType":"character","status":"active","progress":60,"stage":"backstory","message":"Writing backstory",'
    '"updatedAt":1764000000123,"result":null,"failedReason":null}\n\n')


def _sse_response(description: str) -> dict:
    return {
        "description": description,
        "headers": {
            "Cache-Control": {"required": True, "schema": {"const": "no-cache"},
                              "description": "Streams are never cached."},
            "X-Accel-Buffering": {"required": True, "schema": {"const": "no"},
                                  "description": "Tells nginx-style proxies not to buffer the stream."},
        },
        "content": {SSE: {"schema": _ref("ServerSentEvent"), "example": _SSE_EXAMPLE}},
    }


# --- parameters --------------------------------------------------------------------------------

def _path(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _last_event_id(description: str) -> dict:
    return {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
            "description": description}


def _job_params() -> list[dict]:
    return [
        _path("job_type", {"type": "string", "enum": list(REGISTRY)}, "The job's type."),
        _path("job_id", {"type": "string", "format": "uuid"}, "The job's id (`jobId`, a UUID4)."),
    ]


# --- operations --------------------------------------------------------------------------------

BEARER = [{"bearerAuth": []}]
PUBLIC: list = []


def _queue_operation(job_type) -> dict:
    name = job_type.name
    return {
        "tags": ["jobs"],
        "operationId": f"queue_{name}",
        "summary": f"Queue a {name} job",
        "description": f"Validates the body strictly (no type coercion, so `27.0` is not an integer; unknown fields "
                       f"refused; short strings are trimmed before their length is checked) and queues a "
                       f"`{name}` job. Answers with its id, a `streamUrl` to watch it and a `statusUrl`. Its state "
                       f"stays readable for `JOB_RESULT_TTL` (default 24 h) after it ends. Each user may queue at most "
                       f"`RATE_LIMIT_QUEUE` jobs per route (default 60 a minute, 600 an hour); past that, 429.",
        "security": BEARER,
        "requestBody": {"required": True,
                        "content": {JSON: {"schema": _ref(job_type.schema.__name__)}}},
        "responses": {
            "202": _json(_data(_ref("QueuedJob")), "Queued.", links={
                "GetJobSnapshot": {"operationId": "get_job_snapshot",
                                   "parameters": {"job_type": "$response.body#/data/type",
                                                  "job_id": "$response.body#/data/jobId"}},
                "CancelJob": {"operationId": "cancel_job",
                              "parameters": {"job_type": "$response.body#/data/type",
                                             "job_id": "$response.body#/data/jobId"}},
            }),
            **_errors(400, 401, 405, 413, 415, 429, 503),
        },
    }


def _paths() -> dict[str, dict]:
    paths: dict[str, dict] = {}
    for job_type in REGISTRY.values():
        paths[f"{API_PREFIX}/{job_type.route}/queue"] = {"post": _queue_operation(job_type)}

    paths[f"{API_PREFIX}/jobs"] = {
        "get": {
            "tags": ["jobs"], "operationId": "list_jobs", "summary": "Your recent jobs",
            "description": "The caller's jobs, newest first, each as its latest state plus links; pages follow "
                           "`nextCursor`. `streamUrl` opens the many-jobs stream.",
            "security": BEARER,
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": [*_event_properties()["status"]["enum"], ""]},
                 "description": "Only jobs in this status; empty means any."},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                 "description": "Jobs per page."},
                {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "`nextCursor` of the previous page."},
            ],
            "responses": {"200": _json(_ref("JobList"), "A page of jobs."), **_errors(400, 401, 405, 503)},
        },
    }
    paths[f"{API_PREFIX}/sse/jobs"] = {
        "get": {
            "tags": ["stream"], "operationId": "stream_jobs", "summary": "Watch many jobs on one connection",
            "description": (
                "Browsers allow 6 HTTP/1.1 connections per origin, so a page watching many jobs opens this one "
                "stream instead of one per job. It carries the same events as a job's stream: with `ids`, for those "
                "of the caller's jobs (unknown or foreign ids are left out silently); without, for every job of the "
                "caller that is not finished when it connects and every job the caller queues while it is open. "
                "Each watched job's current state comes at once on (re)connect, then one event per change; event ids "
                "strictly increase across the connection. Unlike a job's stream it stays open after jobs finish, "
                "until its token expires or `SSE_MAX_STREAM_SECONDS`.\n\n"
                "Authenticate with the `Authorization: Bearer` header, or with the stream token of the `streamUrl` "
                "of `GET /api/v1/jobs` (scoped to the caller's jobs) in `?token=`. Counts against "
                "`MAX_STREAMS_PER_USER`."),
            "security": [{"bearerAuth": []}, {"streamToken": []}],
            "parameters": [
                {"name": "ids", "in": "query", "required": False, "style": "form", "explode": False,
                 "schema": {"type": "array", "maxItems": 100, "items": {"type": "string"}},
                 "description": "Comma-separated job ids, at most 100."},
                _last_event_id("Sent by `EventSource` on reconnect: the `id` of the last event it received."),
            ],
            "responses": {
                "200": _sse_response("The event stream; it stays open after the watched jobs finish."),
                **_errors(400, 401, 405, 429, 503),
            },
        },
    }
    paths[f"{API_PREFIX}/jobs/{{job_type}}/{{job_id}}"] = {
        "parameters": _job_params(),
        "get": {
            "tags": ["jobs"], "operationId": "get_job_snapshot", "summary": "A job's latest state",
            "description": "The same payload as the job's latest event, plus a fresh `streamUrl`: the fallback for "
                           "clients without SSE.",
            "security": BEARER,
            "responses": {"200": _json(_data(_ref("JobSnapshot")), "The job's latest state."),
                          **_errors(401, 404, 405, 503)},
        },
    }
    paths[f"{API_PREFIX}/jobs/{{job_type}}/{{job_id}}/cancel"] = {
        "parameters": _job_params(),
        "post": {
            "tags": ["jobs"], "operationId": "cancel_job", "summary": "Cancel a job",
            "description": "Cancels a pending job or tells the worker to stop a running one; its streams end with "
                           "the `canceled` event. No body is needed.",
            "security": BEARER,
            "responses": {
                "200": _json(_data(_ref("JobSnapshot")), "Canceled: the `canceled` state."),
                "409": _error("The job already finished (`job_finished`): it cannot be canceled."),
                **_errors(401, 404, 405, 503),
            },
        },
    }
    paths[f"{API_PREFIX}/sse/jobs/{{job_type}}/{{job_id}}"] = {
        "parameters": _job_params(),
        "get": {
            "tags": ["stream"], "operationId": "stream_job", "summary": "Watch a job (Server-Sent Events)",
            "description": (
                "Errors come before the stream starts, as JSON. Otherwise a `text/event-stream` that opens at once "
                "with `retry: <ms>` and an event carrying the job's current state, then one event per change of "
                "status, progress, stage or message. Each event is `id: <n>`, one `data: <JobUpdate JSON>` "
                "line and a blank line, with no `event:` field, so `EventSource.onmessage` fires. A `: keep-alive` "
                "comment goes out after `SSE_HEARTBEAT_SECONDS` of silence. The server closes the stream after the "
                "terminal event (`completed`, `failed` or `canceled`), when its token expires and after "
                "`SSE_MAX_STREAM_SECONDS`.\n\n"
                "Authenticate with the `Authorization: Bearer` header, or with the stream token of the `streamUrl` "
                "in `?token=` (what a browser `EventSource`, which cannot send headers, uses). An access token in "
                "the URL is refused with 401. A user may hold at most `MAX_STREAMS_PER_USER` open streams "
                "(default 50) across all web processes; past that, 429."),
            "security": [{"bearerAuth": []}, {"streamToken": []}],
            "parameters": [_last_event_id(
                "Sent by `EventSource` on reconnect: the `id` of the last event it received. If it shows the client "
                "already has the job's terminal event the answer is 204.")],
            "responses": {
                "200": _sse_response("The event stream. It ends after the terminal event; for a finished job it "
                                     "carries just the final event."),
                "204": {"description": "`Last-Event-ID` shows this client already has the job's terminal event: "
                                       "nothing more will come, and `EventSource` stops reconnecting."},
                **_errors(401, 404, 405, 429, 503),
            },
        },
    }
    paths[f"{API_PREFIX}/characters/{{character_id}}"] = {
        "get": {
            "tags": ["results"], "operationId": "get_character", "summary": "A character a job made",
            "description": "The profile a completed `character` job made (its `result.characterId`), to its owner "
                           "only.",
            "security": BEARER,
            "parameters": [_path("character_id", {"type": "string"}, "`result.characterId` of a `character` job.")],
            "responses": {"200": _json(_data(_ref("Character")), "The character."), **_errors(401, 404, 405, 503)},
        },
    }
    paths[f"{API_PREFIX}/media/{{media_id}}"] = {
        "get": {
            "tags": ["results"], "operationId": "get_media", "summary": "A media file a job made",
            "description": "The file a completed `media` job rendered (its `result.mediaId`), to its owner only: "
                           "`image/png` for `image`, `audio/wav` for `audio`, `image/gif` for `video`.",
            "security": BEARER,
            "parameters": [_path("media_id", {"type": "string"}, "`result.mediaId` of a `media` job.")],
            "responses": {
                "200": {"description": "The file.",
                        "headers": {"Cache-Control": {"schema": {"type": "string"},
                                                      "description": "`private, max-age=3600`."}},
                        "content": {"image/png": {}, "audio/wav": {}, "image/gif": {}}},
                **_errors(401, 404, 405, 503),
            },
        },
    }
    paths["/healthz"] = {"get": {
        "tags": ["operations"], "operationId": "healthz", "summary": "Liveness",
        "description": "The process is up and answering. Never touches Redis.",
        "security": PUBLIC,
        "responses": {"200": _json(_ref("Health"), "Alive."), **_errors(405)},
    }}
    paths["/readyz"] = {"get": {
        "tags": ["operations"], "operationId": "readyz", "summary": "Readiness",
        "description": "Ready to take work: Redis answers within `REDIS_SOCKET_TIMEOUT`. Also says whether Redis "
                       "is full and whether its memory policy can evict jobs.",
        "security": PUBLIC,
        "responses": {"200": _json(_ref("Readiness"), "Ready: Redis answers."),
                      "503": _json(_ref("Error"), "Not ready: Redis is not answering (code `not_ready`).",
                                   headers={"Retry-After": {"description": "Seconds to wait.",
                                                            "schema": {"type": "string"}}}),
                      **_errors(405)},
    }}
    paths["/metrics"] = {"get": {
        "tags": ["operations"], "operationId": "metrics", "summary": "Prometheus metrics",
        "description": "Prometheus text format, summed across gunicorn's workers: `jobapp_open_streams`, "
                       "`jobapp_hub_watched_jobs`, `jobapp_events_sent_total`, `jobapp_stream_duration_seconds`, "
                       "`jobapp_queue_depth{queue}`, `jobapp_jobs{queue,status}`.",
        "security": PUBLIC,
        "responses": {"200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **_errors(405, 503)},
    }}
    paths[f"{API_PREFIX}/openapi.json"] = {"get": {
        "tags": ["docs"], "operationId": "openapi_document", "summary": "This OpenAPI document",
        "security": PUBLIC,
        "responses": {"200": _json({"type": "object", "required": ["openapi", "info", "paths"]},
                                   "The OpenAPI 3.1 document."), **_errors(405)},
    }}
    paths[f"{API_PREFIX}/docs"] = {"get": {
        "tags": ["docs"], "operationId": "docs_page", "summary": "This document, readable",
        "description": "A self-contained HTML page that renders this document; it loads nothing from elsewhere.",
        "security": PUBLIC,
        "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_errors(405)},
    }}
    paths["/"] = {"get": {
        "tags": ["pages"], "operationId": "live_page", "summary": "The live page",
        "description": "A page that queues jobs and watches them with the JavaScript client.",
        "security": PUBLIC,
        "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_errors(405)},
    }}
    paths["/client/{name}"] = {"get": {
        "tags": ["pages"], "operationId": "client_file", "summary": "A file of the JavaScript client",
        "description": "The repository's `client/` folder as it is, e.g. `jobapp-client.js` and `useJobSSE.js`.",
        "security": PUBLIC,
        "parameters": [_path("name", {"type": "string"}, "The file's path inside `client/`.")],
        "responses": {
            "200": {"description": "The file.",
                    "content": {"text/javascript": {"schema": {"type": "string"}},
                                "application/json": {"schema": {"type": "object"}}}},
            "404": _error("No such file."),
            **_errors(405),
        },
    }}
    paths["/dev/config"] = {"get": {
        "tags": ["pages"], "operationId": "dev_config", "summary": "What the live page may offer",
        "security": PUBLIC,
        "responses": {
            "200": _json(_data({"type": "object", "required": ["devTokens"], "additionalProperties": False,
                                "properties": {"devTokens": {
                                    "type": "boolean",
                                    "description": "Whether `POST /dev/token` is there (not in production)."}}}),
                         "The page's settings."),
            **_errors(405),
        },
    }}
    paths["/dev/token"] = {"post": {
        "tags": ["pages"], "operationId": "dev_token", "summary": "An access token for any user (development only)",
        "description": "Mints a one-hour access token for the given user id, so the live page works without a "
                       "token issuer. Answers 404 when `JOBAPP_ENV=production`.",
        "security": PUBLIC,
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["userId"],
            "properties": {"userId": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"}}}}}},
        "responses": {
            "200": _json(_data({"type": "object", "required": ["token", "userId"], "additionalProperties": False,
                                "properties": {"token": {"type": "string"}, "userId": {"type": "string"}}}),
                         "The token."),
            "400": _error("`userId` is missing or not 1-64 letters, digits or `. _ @ -`."),
            "404": _error("Production: there is no such route."),
            **_errors(405),
        },
    }}
    return paths


def build_document(max_content_length: int = 64 * 1024) -> dict[str, Any]:
    """The whole OpenAPI document, as a plain dict."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "jobapp",
            "version": API_VERSION,
            "summary": "Queue slow work and watch its progress over Server-Sent Events.",
            "description": (
                "A frontend queues a job, an RQ worker runs it and records its progress, and the frontend watches "
                "it over Server-Sent Events.\n\n"
                "**Auth.** Every `/api/v1` route but this document and its page needs "
                "`Authorization: Bearer <access token>`: an HS256 JWT signed with `JWT_SECRET_KEY` whose `sub` is "
                "the user id (`sub` and `exp` are enough). A user sees only their own jobs; another user's job "
                "answers 404 exactly like an unknown id. SSE routes also take the `streamUrl`'s stream token in "
                "`?token=`.\n\n"
                "**Errors** are always JSON in the `Error` shape, never a traceback. Every response carries an "
                "`X-Request-ID` (yours, if you send a valid one), which the service's logs carry too."),
        },
        "tags": TAGS,
        "security": BEARER,
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                               "description": "An HS256 access token with `sub` (the user id) and `exp`."},
                "streamToken": {"type": "apiKey", "in": "query", "name": "token",
                                "description": "The read-only stream token of a `streamUrl`, valid until "
                                               "`STREAM_TOKEN_TTL` (default 1 h) for that one stream: a job's "
                                               "(from the queue and snapshot answers) or the caller's many-jobs "
                                               "stream (from `GET /api/v1/jobs`). SSE routes only; an access token "
                                               "here is refused with 401."},
            },
            "schemas": _schemas(),
            "responses": _responses(max_content_length),
        },
    }


def document(app: Optional[Flask] = None) -> dict[str, Any]:
    """The app's document, built once per app."""
    app = app or current_app
    cached = app.extensions.get("jobapp.openapi")
    if cached is None:
        cached = build_document(app.config.get("MAX_CONTENT_LENGTH") or 64 * 1024)
        app.extensions["jobapp.openapi"] = cached
    return cached


# --- routes ------------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/docs")
def docs_page():
    spec = json.dumps(document(), separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")
    html = _PAGE.replace("__SPEC__", spec)
    return Response(html, mimetype="text/html", headers={
        "Content-Security-Policy": f"default-src 'none'; script-src '{_SCRIPT_HASH}'; style-src '{_STYLE_HASH}'; "
                                   "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    })


_STYLE = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; }
header, main { max-width: 1000px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 26px; } h2 { margin-top: 32px; border-bottom: 1px solid var(--line); }
h3 { margin: 18px 0 6px; font-size: 15px; } code, pre { font: 13px/1.45 ui-monospace, Menlo, Consolas, monospace; }
pre { background: var(--bg); padding: 10px; overflow: auto; border-radius: 6px; margin: 6px 0; }
details.op { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; }
details.op > summary { cursor: pointer; padding: 8px 12px; list-style: none; display: flex; gap: 12px; align-items: baseline; }
details.op[open] > summary { border-bottom: 1px solid var(--line); background: var(--bg); }
.body { padding: 4px 14px 12px; }
.method { font: bold 12px ui-monospace, monospace; color: #fff; border-radius: 4px; padding: 2px 8px; min-width: 56px; text-align: center; }
.get { background: #0969da; } .post { background: #1a7f37; } .put, .patch { background: #9a6700; } .delete { background: #cf222e; }
.path { font: 14px ui-monospace, monospace; } .summary { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 6px 0; } td, th { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); } .status { font-weight: bold; } .muted { color: var(--muted); } .lock { color: var(--muted); font-size: 12px; }
a { color: #0969da; }
"""

_SCRIPT = r"""
(function () {
  var spec = JSON.parse(document.getElementById("spec").textContent);
  var root = document.getElementById("root");
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  // Markdown-lite: `code` and **bold**, everything else as text (never innerHTML).
  function text(s) {
    var span = el("span"), parts = String(s || "").split(/(`[^`]*`|\*\*[^*]+\*\*)/);
    parts.forEach(function (p) {
      if (/^`[^`]*`$/.test(p)) span.appendChild(el("code", {}, [p.slice(1, -1)]));
      else if (/^\*\*[^*]+\*\*$/.test(p)) span.appendChild(el("strong", {}, [p.slice(2, -2)]));
      else span.appendChild(document.createTextNode(p));
    });
    return span;
  }
  function paras(s) {
    return el("div", {}, String(s || "").split(/\n\n+/).filter(Boolean).map(function (p) { return el("p", {}, [text(p)]); }));
  }
  function resolve(obj) {
    var seen = 0;
    while (obj && obj.$ref && seen++ < 10) {
      obj = obj.$ref.replace(/^#\//, "").split("/").reduce(function (o, k) { return o && o[k]; }, spec);
    }
    return obj || {};
  }
  function refName(schema) { return schema && schema.$ref ? schema.$ref.split("/").pop() : null; }
  // A JSON rendering of a schema in which $refs to components link to their section.
  function schemaView(schema) {
    var pre = el("pre");
    function write(value, indent) {
      if (Array.isArray(value)) {
        if (!value.length) { pre.appendChild(document.createTextNode("[]")); return; }
        pre.appendChild(document.createTextNode("[\n"));
        value.forEach(function (v, i) {
          pre.appendChild(document.createTextNode(indent + "  "));
          write(v, indent + "  ");
          pre.appendChild(document.createTextNode(i < value.length - 1 ? ",\n" : "\n"));
        });
        pre.appendChild(document.createTextNode(indent + "]"));
      } else if (value && typeof value === "object") {
        var keys = Object.keys(value);
        if (!keys.length) { pre.appendChild(document.createTextNode("{}")); return; }
        pre.appendChild(document.createTextNode("{\n"));
        keys.forEach(function (k, i) {
          pre.appendChild(document.createTextNode(indent + "  " + JSON.stringify(k) + ": "));
          if (k === "$ref" && typeof value[k] === "string" && value[k].indexOf("#/components/") === 0) {
            pre.appendChild(el("a", {href: "#" + value[k].slice(2).replace(/\//g, "-")}, [JSON.stringify(value[k])]));
          } else {
            write(value[k], indent + "  ");
          }
          pre.appendChild(document.createTextNode(i < keys.length - 1 ? ",\n" : "\n"));
        });
        pre.appendChild(document.createTextNode(indent + "}"));
      } else {
        pre.appendChild(document.createTextNode(JSON.stringify(value)));
      }
    }
    write(schema, "");
    return pre;
  }
  function securityText(op) {
    var sec = op.security !== undefined ? op.security : (spec.security || []);
    if (!sec.length) return "no token";
    return sec.map(function (req) { return Object.keys(req).join(" + "); }).join(" or ");
  }
  function operation(path, method, item, op) {
    var body = el("div", {class: "body"});
    if (op.description) body.appendChild(paras(op.description));
    body.appendChild(el("p", {class: "lock"}, ["Auth: " + securityText(op)]));
    var params = (item.parameters || []).concat(op.parameters || []).map(resolve);
    if (params.length) {
      body.appendChild(el("h3", {}, ["Parameters"]));
      body.appendChild(el("table", {}, [el("tr", {}, [el("th", {}, ["name"]), el("th", {}, ["in"]),
        el("th", {}, ["schema"]), el("th", {}, ["description"])])].concat(params.map(function (p) {
        return el("tr", {}, [el("td", {}, [el("code", {}, [p.name]), p.required ? " *" : ""]), el("td", {}, [p.in]),
          el("td", {}, [el("code", {}, [JSON.stringify(p.schema || {})])]), el("td", {}, [text(p.description)])]);
      }))));
    }
    if (op.requestBody) {
      var rb = resolve(op.requestBody);
      body.appendChild(el("h3", {}, ["Request body" + (rb.required ? " (required)" : "")]));
      Object.keys(rb.content || {}).forEach(function (type) {
        body.appendChild(el("div", {}, [el("code", {}, [type])]));
        body.appendChild(schemaView(rb.content[type].schema || {}));
      });
    }
    body.appendChild(el("h3", {}, ["Responses"]));
    var rows = [el("tr", {}, [el("th", {}, ["status"]), el("th", {}, ["description"]), el("th", {}, ["content"])])];
    Object.keys(op.responses || {}).sort().forEach(function (status) {
      var raw = op.responses[status], r = resolve(raw), cell = el("td");
      Object.keys(r.content || {}).forEach(function (type) {
        cell.appendChild(el("div", {}, [el("code", {}, [type])]));
        var media = r.content[type];
        if (media.schema) cell.appendChild(schemaView(media.schema));
      });
      Object.keys(r.headers || {}).forEach(function (h) {
        cell.appendChild(el("div", {class: "muted"}, ["header ", el("code", {}, [h])]));
      });
      var desc = el("td", {}, [text(r.description)]);
      if (refName(raw)) desc.appendChild(el("div", {class: "muted"}, [el("a", {href: "#components-responses-" + refName(raw)}, [refName(raw)])]));
      rows.push(el("tr", {}, [el("td", {class: "status"}, [status]), desc, cell]));
    });
    body.appendChild(el("table", {}, rows));
    return el("details", {class: "op", id: op.operationId || (method + path)}, [
      el("summary", {}, [el("span", {class: "method " + method}, [method.toUpperCase()]),
        el("span", {class: "path"}, [path]), el("span", {class: "summary"}, [op.summary || ""])]),
      body]);
  }
  var info = spec.info || {};
  var header = document.getElementById("top");
  header.appendChild(el("h1", {}, [info.title + " ", el("span", {class: "muted"}, [info.version])]));
  header.appendChild(el("p", {class: "muted"}, ["OpenAPI " + spec.openapi + " \u00b7 ",
    el("a", {href: "openapi.json"}, ["openapi.json"])]));
  if (info.description) header.appendChild(paras(info.description));

  var methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  var byTag = {}, order = (spec.tags || []).map(function (t) { return t.name; });
  Object.keys(spec.paths || {}).forEach(function (path) {
    var item = spec.paths[path];
    methods.forEach(function (m) {
      if (!item[m]) return;
      var tag = (item[m].tags || ["other"])[0];
      if (order.indexOf(tag) < 0) order.push(tag);
      (byTag[tag] = byTag[tag] || []).push(operation(path, m, item, item[m]));
    });
  });
  order.forEach(function (tag) {
    if (!byTag[tag]) return;
    var t = (spec.tags || []).filter(function (x) { return x.name === tag; })[0];
    root.appendChild(el("h2", {id: "tag-" + tag}, [tag]));
    if (t && t.description) root.appendChild(el("p", {}, [text(t.description)]));
    byTag[tag].forEach(function (node) { root.appendChild(node); });
  });

  var comps = spec.components || {};
  if (comps.securitySchemes) {
    root.appendChild(el("h2", {}, ["Security schemes"]));
    Object.keys(comps.securitySchemes).forEach(function (name) {
      var s = comps.securitySchemes[name];
      var how = s.type === "http" ? "HTTP " + s.scheme + (s.bearerFormat ? " (" + s.bearerFormat + ")" : "")
        : s.type === "apiKey" ? "API key in " + s.in + " parameter " + s.name : s.type;
      root.appendChild(el("h3", {id: "components-securitySchemes-" + name}, [name + " \u2014 " + how]));
      root.appendChild(el("p", {}, [text(s.description)]));
    });
  }
  ["schemas", "responses"].forEach(function (section) {
    if (!comps[section]) return;
    root.appendChild(el("h2", {}, [section === "schemas" ? "Schemas" : "Shared responses"]));
    Object.keys(comps[section]).forEach(function (name) {
      var item = comps[section][name];
      root.appendChild(el("h3", {id: "components-" + section + "-" + name}, [name]));
      if (item.description) root.appendChild(el("p", {}, [text(item.description)]));
      root.appendChild(schemaView(item));
    });
  });
  // A link to an operation (#operationId) opens it.
  function openTarget() {
    var target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") { target.open = true; target.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
"""


def _csp_hash(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


_SCRIPT_HASH = _csp_hash(_SCRIPT)
_STYLE_HASH = _csp_hash(_STYLE)

_PAGE = ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<title>jobapp API</title>\n<style>" + _STYLE + "</style>\n</head>\n<body>\n"
         "<header id=\"top\"></header>\n<main id=\"root\">"
         "<noscript><p>This page renders <a href=\"openapi.json\">openapi.json</a> with JavaScript.</p></noscript>"
         "</main>\n<script type=\"application/json\" id=\"spec\">__SPEC__</script>\n"
         "<script>" + _SCRIPT + "</script>\n</body>\n</html>\n")
