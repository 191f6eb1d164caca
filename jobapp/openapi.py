"""The OpenAPI 3.1 document of the whole API, generated, and its docs UI (Swagger UI).

``GET /api/v1/openapi.json`` serves the document and ``GET /api/v1/docs`` Swagger UI, whose files
come from the ``swagger-ui-bundle-v2`` package and are served from here (nothing from a CDN).

The document is generated, not assembled by hand: apispec builds it; its paths, methods and path
parameters come from the app's URL map (every rule, so no route can be left out); its schemas
come from pydantic models (``apimodels.py`` for answers and events, each job type's request model
from the job registry). What only a person can say (summaries, which errors an operation answers)
sits in ``OPERATIONS`` beside the endpoint it describes. ``tests/test_openapi.py`` checks the
document against the URL map and the running API (schemathesis).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import swagger_ui_bundle
from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, send_from_directory, url_for
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from . import apimodels

API_PREFIX = "/api/v1"
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.1.0"
JSON = "application/json"
SSE = "text/event-stream"
REF = "#/components/schemas/{model}"

bp = Blueprint("openapi", __name__)


def job_types() -> list:
    """The registered job types: the one place the document reads the registry (at app creation)."""
    from .registry import REGISTRY
    return list(REGISTRY.values())


# --- schemas, responses, parameters ------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def schemas(types: list) -> dict[str, dict]:
    """Every schema: the answer and event models, then each job type's request model."""
    _, generated = models_json_schema([(model, "validation") for model in apimodels.MODELS], ref_template=REF)
    found = dict(generated["$defs"])
    for name in ("JobUpdate", "JobSnapshot"):  # a job's type is one of the registered types
        found[name]["properties"]["jobType"]["enum"] = [t.name for t in types]
    for job_type in types:
        model: type[BaseModel] = job_type.schema
        schema = model.model_json_schema(ref_template=REF)
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
        found[queue_body(job_type)] = _queue_body_schema(schema, model.__name__)
    return found


def queue_body(job_type) -> str:
    """The name of a job type's queue body: its request model plus contract 1.1's queue options."""
    return f"{job_type.schema.__name__}QueueBody"


def _queue_body_schema(model_schema: dict, model_name: str) -> dict:
    body = {**model_schema, "properties": {**model_schema.get("properties", {}), **QUEUE_OPTIONS},
            "title": f"{model_name} queue body"}
    body["allOf"] = [{"not": {"required": pair}} for pair in
                     (["runAt", "delaySeconds"], ["dependsOn", "runAt"], ["dependsOn", "delaySeconds"])]
    return body


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


#: The queue body's options beside the type's own fields (contract 1.1).
QUEUE_OPTIONS: dict[str, dict] = {
    "dependsOn": {**_nullable({"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1}}),
                  "description": "Ids of the caller's jobs this one waits for (`waitingFor`); it runs when all "
                                 "complete and fails at once if one fails or is canceled. An id that is not the "
                                 "caller's answers 404."},
    "runAt": {**_nullable({"type": "string", "format": "date-time"}),
              "description": "Run later: ISO 8601 with a UTC offset. A time in the past runs now; more than "
                             "`MAX_SCHEDULE_SECONDS` (default 7 days) ahead is a 400. At most one of `dependsOn`, "
                             "`runAt` and `delaySeconds`."},
    "delaySeconds": {**_nullable({"type": "number", "minimum": 0, "maximum": 7 * 86400}),
                     "description": "Run this many seconds from now (at most `MAX_SCHEDULE_SECONDS`)."},
}


def _error(description: str, **extra) -> dict:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}, **extra}


def responses(max_body: int) -> dict[str, dict]:
    return {
        "BadRequest": _error("The body is not valid JSON (`invalid_json`), not a JSON object, or its fields are "
                             "invalid (`validation_error`, with a message per field in `fields`)."),
        "Unauthorized": _error("Missing, invalid or expired token (`token_expired` when expired), a token in the "
                               "URL of a route that takes only the header, or a stream token used as an access "
                               "token."),
        "NotFound": _error("Unknown id, another user's id, or an id of another job type: all answer alike."),
        "MethodNotAllowed": _error("The path does not take this method; `Allow` lists the ones it takes.", headers={
            "Allow": {"description": "The methods this path takes.", "schema": {"type": "string"}}}),
        "PayloadTooLarge": _error(f"The body is larger than `MAX_CONTENT_LENGTH` ({max_body} bytes here)."),
        "UnsupportedMediaType": _error("The body is not sent as `Content-Type: application/json`."),
        "RateLimited": _error(
            "Too many requests: the per-user rate limit of the queue routes (`RATE_LIMIT_QUEUE`), or on SSE routes "
            "the per-user cap on open streams (`MAX_STREAMS_PER_USER`). Retry after `Retry-After` seconds.",
            headers={"Retry-After": {"required": True, "description": "Seconds to wait before retrying.",
                                     "schema": {"type": "string", "pattern": "^[0-9]+$"}}}),
        "Unavailable": _error("Redis is unreachable (code `unavailable`) or full (code `store_full`): nothing was "
                              "queued or changed. Retry after `Retry-After` seconds."),
    }


ERRORS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge",
          415: "UnsupportedMediaType", 429: "RateLimited", 503: "Unavailable"}


def _errors(*statuses: int) -> dict[str, dict]:
    return {str(status): {"$ref": f"#/components/responses/{ERRORS[status]}"} for status in statuses}


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _data(name: str) -> dict:
    return {"type": "object", "required": ["data"], "additionalProperties": False, "properties": {"data": _ref(name)}}


def _text(media_type: str, description: str) -> dict:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


SSE_EXAMPLE = (
    'retry: 3000\nid: 1764000000123000\ndata: {"type":"job_update","jobId":"3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c",'
    '"jobType":"character","status":"active","progress":60,"stage":"backstory","message":"Writing backstory",'
    '"updatedAt":1764000000123,"result":null,"failedReason":null}\n\n: keep-alive\n')


def _sse(description: str) -> dict:
    return {
        "description": description,
        "headers": {
            "Cache-Control": {"required": True, "schema": {"const": "no-cache"}, "description": "Never cached."},
            "X-Accel-Buffering": {"required": True, "schema": {"const": "no"},
                                  "description": "Tells nginx-style proxies not to buffer the stream."},
        },
        "content": {SSE: {"schema": _ref("ServerSentEvent"), "example": SSE_EXAMPLE}},
    }


def _last_event_id(description: str) -> dict:
    return {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
            "description": description}


#: Path parameters by name; any other is a string (or what its URL converter says).
PATH_PARAMETERS: dict[str, tuple[dict, str]] = {
    "job_id": ({"type": "string", "format": "uuid"}, "The job's id (`jobId`, a UUID4)."),
    "character_id": ({"type": "string"}, "`result.characterId` of a `character` job."),
    "file_id": ({"type": "string"}, "The last part of the result's `url` (`result.mediaId` of a `media` job)."),
    "name": ({"type": "string"}, "The file's path inside `client/`."),
    "filename": ({"type": "string"}, "A file of Swagger UI."),
}
CONVERTERS = {"IntegerConverter": {"type": "integer"}, "FloatConverter": {"type": "number"},
              "UUIDConverter": {"type": "string", "format": "uuid"}}


def path_parameters(rule: Rule, types: list) -> list[dict]:
    """One parameter per variable of the rule, typed by its name (``job_type``: the registered types)."""
    found = []
    for name, converter in rule._converters.items():
        schema, description = PATH_PARAMETERS.get(name, (CONVERTERS.get(type(converter).__name__, {"type": "string"}), ""))
        if name == "job_type":
            schema, description = {"type": "string", "enum": [t.name for t in types]}, "The job's type."
        found.append({"name": name, "in": "path", "required": True, "schema": schema, "description": description})
    return found


# --- operations --------------------------------------------------------------------------------

BEARER = [{"bearerAuth": []}]
STREAM_AUTH = [{"bearerAuth": []}, {"streamToken": []}]
PUBLIC: list = []


def queue_operation(job_type) -> dict:
    """``POST /api/v1/<route>/queue`` of one job type: its body is the type's pydantic model."""
    name = job_type.name
    job_links = {"job_type": "$response.body#/data/type", "job_id": "$response.body#/data/jobId"}
    return {
        "tags": ["jobs"], "operationId": f"queue_{name}", "summary": f"Queue a {name} job",
        "description": "Validates the body strictly (no type coercion, so `27.0` is not an integer; unknown fields "
                       "refused; short strings are trimmed before their length is checked) and queues a "
                       f"`{name}` job. Answers with its id, a `streamUrl` to watch it and a `statusUrl`. Each user "
                       "may queue at most `RATE_LIMIT_QUEUE` jobs per route (default 60 a minute); past that, 429.",
        "security": BEARER,
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref(queue_body(job_type))}}},
        "responses": {
            "202": _json(_data("QueuedJob"), "Queued.", links={
                "GetJobSnapshot": {"operationId": "get_job_snapshot", "parameters": job_links},
                "CancelJob": {"operationId": "cancel_job", "parameters": job_links}}),
            **_errors(400, 401, 404, 405, 413, 415, 429, 503),
        },
    }


STREAM_JOB = (
    "Errors come before the stream starts, as JSON. Otherwise a `text/event-stream` that opens at once with "
    "`retry: <ms>` and an event carrying the job's current state (in one block), then one event per change. Each "
    "event is `id: <n>`, one `data:` line of JSON (`JobUpdate`; `JobLog` for the job's log lines, contract 1.1) "
    "and a blank line, with no `event:` field, so `EventSource.onmessage` fires. A lone `: keep-alive` comment line "
    "goes out after `SSE_HEARTBEAT_SECONDS` of silence; only blocks with `data:` end in a blank line. The server "
    "closes the stream after the terminal event, when its token expires and after `SSE_MAX_STREAM_SECONDS`.\n\n"
    "Authenticate with the `Authorization: Bearer` header, or with the `streamUrl`'s stream token in `?token=` "
    "(what a browser `EventSource` uses). An access token in the URL is refused with 401. A user may hold at most "
    "`MAX_STREAMS_PER_USER` open streams; past that, 429.")
STREAM_JOBS = (
    "One stream for many jobs (browsers allow 6 HTTP/1.1 connections per origin). With `ids`, those of the caller's "
    "jobs (unknown or foreign ids are left out silently); without, every unfinished job of the caller and every job "
    "the caller queues while it is open. Each watched job's current state on (re)connect, then one event per "
    "change, framed as on a job's stream; ids strictly increase. It stays open after jobs finish, until its token "
    "expires or `SSE_MAX_STREAM_SECONDS`. Authenticate with the Bearer header or the stream token of "
    "`GET /api/v1/jobs`'s `streamUrl`.")

#: What the URL map cannot say, by endpoint: summary, description, security, parameters, responses.
OPERATIONS: dict[str, dict[str, Any]] = {
    "jobs.list_jobs": {
        "tags": ["jobs"], "operationId": "list_jobs", "summary": "Your recent jobs", "security": BEARER,
        "description": "The caller's jobs, newest first, each as its latest state plus links; pages follow "
                       "`nextCursor`. `streamUrl` opens the many-jobs stream.",
        "parameters": [
            {"name": "status", "in": "query", "required": False, "description": "Only jobs in this status; empty: any.",
             "schema": {"type": "string", "enum": ["pending", "active", "completed", "failed", "canceled", ""]}},
            {"name": "limit", "in": "query", "required": False, "description": "Jobs per page.",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "`nextCursor` of the previous page."}],
        "responses": {"200": _json(_ref("JobList"), "A page of jobs."), **_errors(400, 401, 405, 503)},
    },
    "stream.jobs_stream": {
        "tags": ["stream"], "operationId": "stream_jobs", "summary": "Watch many jobs on one connection",
        "description": STREAM_JOBS, "security": STREAM_AUTH,
        "parameters": [
            {"name": "ids", "in": "query", "required": False, "style": "form", "explode": False,
             "schema": {"type": "array", "maxItems": 100, "items": {"type": "string"}},
             "description": "Comma-separated job ids, at most 100."},
            _last_event_id("Sent by `EventSource` on reconnect: the `id` of the last event it received.")],
        "responses": {"200": _sse("The event stream; it stays open after the watched jobs finish."),
                      **_errors(400, 401, 405, 429, 503)},
    },
    "jobs.snapshot": {
        "tags": ["jobs"], "operationId": "get_job_snapshot", "summary": "A job's latest state", "security": BEARER,
        "description": "The same payload as the job's latest event, plus a fresh `streamUrl`: the fallback for "
                       "clients without SSE.",
        "parameters": [{"name": "log", "in": "query", "required": False, "schema": {"enum": ["1", "true"]},
                        "description": "Add the job's log lines as `log` (1.1)."}],
        "responses": {"200": _json(_data("JobSnapshot"), "The job's latest state."), **_errors(401, 404, 405, 503)},
    },
    "jobs.cancel_job": {
        "tags": ["jobs"], "operationId": "cancel_job", "summary": "Cancel a job", "security": BEARER,
        "description": "Cancels a pending job or tells the worker to stop a running one; its streams end with the "
                       "`canceled` event. No body is needed.",
        "responses": {"200": _json(_data("JobSnapshot"), "Canceled: the `canceled` state."),
                      "409": _error("The job already finished (`job_finished`): it cannot be canceled."),
                      **_errors(401, 404, 405, 503)},
    },
    "stream.job_stream": {
        "tags": ["stream"], "operationId": "stream_job", "summary": "Watch a job (Server-Sent Events)",
        "description": STREAM_JOB, "security": STREAM_AUTH,
        "parameters": [_last_event_id("Sent by `EventSource` on reconnect: the `id` of the last event it received. "
                                      "If the client already has the job's terminal event the answer is 204.")],
        "responses": {
            "200": _sse("The event stream. It ends after the terminal event; for a finished job it carries just the "
                        "final event."),
            "204": {"description": "`Last-Event-ID` shows this client already has the job's terminal event: nothing "
                                   "more will come, and `EventSource` stops reconnecting."},
            **_errors(401, 404, 405, 429, 503)},
    },
    "demo.character": {  # the demo's own route (jobapp.demo registers its blueprint)
        "tags": ["results"], "operationId": "get_character", "summary": "A character a job made", "security": BEARER,
        "description": "The profile a completed `character` job made (its `result.characterId`), to its owner only.",
        "responses": {"200": _json(_data("Character"), "The character."), **_errors(401, 404, 405, 503)},
    },
    "results.file": {
        "tags": ["results"], "operationId": "get_file", "summary": "A file a job stored as its result",
        "security": BEARER,
        "description": "A file a job stored with `store_file` (its result's `url`), to its owner only, for "
                       "`ARTIFACT_TTL` (default 7 days). The `media` job's PNG, WAV or GIF is one.",
        "responses": {
            "200": {"description": "The file, with the content type the job gave it.", "content": {"*/*": {}},
                    "headers": {"Cache-Control": {"schema": {"type": "string"}, "description": "`private, max-age=3600`."}}},
            **_errors(401, 404, 405, 503)},
    },
    "types.job_types": {
        "tags": ["jobs"], "operationId": "list_job_types", "summary": "The job types you can queue",
        "security": BEARER,
        "description": "Every registered job type: its name, its queue route and the JSON Schema of its request "
                       "body (what the live page builds its forms from).",
        "responses": {"200": _json(_ref("JobTypeList"), "The job types."), **_errors(401, 405, 503)},
    },
    "health.healthz": {
        "tags": ["operations"], "operationId": "healthz", "summary": "Liveness", "security": PUBLIC,
        "description": "The process is up and answering. Never touches Redis.",
        "responses": {"200": _json(_ref("Health"), "Alive."), **_errors(405)},
    },
    "health.readyz": {
        "tags": ["operations"], "operationId": "readyz", "summary": "Readiness", "security": PUBLIC,
        "description": "Ready to take work: Redis answers within `REDIS_SOCKET_TIMEOUT`. Also says whether Redis "
                       "is full and whether its memory policy can evict jobs.",
        "responses": {"200": _json(_ref("Readiness"), "Ready: Redis answers."),
                      "503": _json(_ref("Error"), "Not ready: Redis is not answering (code `not_ready`).",
                                   headers={"Retry-After": {"description": "Seconds to wait.",
                                                            "schema": {"type": "string"}}}),
                      **_errors(405)},
    },
    "metrics.metrics": {
        "tags": ["operations"], "operationId": "metrics", "summary": "Prometheus metrics", "security": PUBLIC,
        "description": "Prometheus text format, summed across gunicorn's workers (see the README's Monitoring).",
        "responses": {"200": _text("text/plain", "The metrics."), **_errors(405, 503)},
    },
    "openapi.openapi_json": {
        "tags": ["docs"], "operationId": "openapi_document", "summary": "This OpenAPI document", "security": PUBLIC,
        "responses": {"200": _json({"type": "object", "required": ["openapi", "info", "paths"]},
                                   "The OpenAPI 3.1 document."), **_errors(405)},
    },
    "openapi.docs_page": {
        "tags": ["docs"], "operationId": "docs_page", "summary": "This document in Swagger UI", "security": PUBLIC,
        "description": "Swagger UI, served from here with the files of the `swagger-ui-bundle-v2` package.",
        "responses": {"200": _text("text/html", "The page."), **_errors(405)},
    },
    "openapi.docs_file": {
        "tags": ["docs"], "operationId": "docs_file", "summary": "A file of Swagger UI", "security": PUBLIC,
        "responses": {"200": {"description": "The file.", "content": {
            "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}},
            "image/png": {}}}, "404": _error("No such file."), **_errors(405)},
    },
    "pages.index": {
        "tags": ["pages"], "operationId": "live_page", "summary": "The live page", "security": PUBLIC,
        "description": "A page that queues jobs and watches them with the JavaScript client.",
        "responses": {"200": _text("text/html", "The page."), **_errors(405)},
    },
    "pages.client_file": {
        "tags": ["pages"], "operationId": "client_file", "summary": "A file of the JavaScript client",
        "description": "The repository's `client/` folder as it is, e.g. `jobapp-client.js` and `useJobSSE.js`.",
        "security": PUBLIC,
        "responses": {"200": {"description": "The file.", "content": {
            "text/javascript": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}},
            "404": _error("No such file."), **_errors(405)},
    },
    "pages.dev_config": {
        "tags": ["pages"], "operationId": "dev_config", "summary": "What the live page may offer", "security": PUBLIC,
        "responses": {"200": _json(_data("DevConfig"), "The page's settings."), **_errors(405)},
    },
    "pages.dev_token": {
        "tags": ["pages"], "operationId": "dev_token", "summary": "An access token for any user (development only)",
        "description": "Mints a one-hour access token for the given user id, so the live page works without a token "
                       "issuer. Answers 404 when `JOBAPP_ENV=production`.",
        "security": PUBLIC,
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("DevTokenRequest")}}},
        "responses": {"200": _json(_data("DevToken"), "The token."),
                      "400": _error("`userId` is missing or not 1-64 letters, digits or `. _ @ -`."),
                      "404": _error("Production: there is no such route."), **_errors(405)},
    },
}

TAGS = [
    {"name": "jobs", "description": "Queue a job, list your jobs, read a job's state, cancel it."},
    {"name": "stream", "description": "Watch jobs' progress as Server-Sent Events: one job, or many on one connection."},
    {"name": "results", "description": "What finished jobs made, to their owner only."},
    {"name": "operations", "description": "Health checks and metrics for the platform; no token."},
    {"name": "docs", "description": "This document and its UI; no token."},
    {"name": "pages", "description": "The live page, its JavaScript client, and in development a token for it."},
]

DESCRIPTION = (
    "A frontend queues a job, an RQ worker runs it and records its progress, and the frontend watches it over "
    "Server-Sent Events.\n\n**Auth.** Every `/api/v1` route but this document and its UI needs "
    "`Authorization: Bearer <access token>`: an HS256 JWT signed with `JWT_SECRET_KEY` whose `sub` is the user id. "
    "A user sees only their own jobs; another user's job answers 404 exactly like an unknown id. SSE routes also "
    "take the `streamUrl`'s stream token in `?token=`.\n\n**Errors** are always JSON in the `Error` shape, never a "
    "traceback. Every response carries an `X-Request-ID`, which the service's logs carry too.")


def _documented(rule: Rule) -> bool:
    return rule.endpoint != "static" and rule.rule != "/rq" and not rule.rule.startswith("/rq/")


def _operation(rule: Rule, view: Callable, queue_routes: dict) -> dict:
    """The described operation of ``rule``'s endpoint; a queue route's from its job type; else one
    made from the view's docstring (so a new route is never missing, only terse)."""
    if rule.endpoint in OPERATIONS:
        return OPERATIONS[rule.endpoint]
    if rule.rule in queue_routes:
        return queue_operation(queue_routes[rule.rule])
    summary = (view.__doc__ or rule.endpoint).strip().splitlines()[0]
    if not rule.rule.startswith(API_PREFIX + "/"):
        return {"summary": summary, "operationId": rule.endpoint.replace(".", "_"), "security": PUBLIC,
                "responses": {"200": {"description": "OK"}, **_errors(405)}}
    # A route of a job module's own blueprint: behind the access token, like every /api/v1 route.
    return {"summary": summary, "operationId": rule.endpoint.replace(".", "_"), "security": BEARER,
            "responses": {"200": {"description": "OK"}, **_errors(401, 404, 405, 503)}}


def build_document(app: Flask) -> dict[str, Any]:
    """The app's whole OpenAPI document, generated from its URL map, the models and the job registry."""
    types = job_types()
    queue_routes = {f"{API_PREFIX}/{getattr(t, 'route', None) or t.name}/queue": t for t in types}
    spec = APISpec(title="jobapp", version=API_VERSION, openapi_version=OPENAPI_VERSION, tags=TAGS,
                   info={"summary": "Queue slow work and watch its progress over Server-Sent Events.",
                         "description": DESCRIPTION},
                   security=BEARER)
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An HS256 access token with `sub` (the user id) and `exp`."})
    spec.components.security_scheme("streamToken", {
        "type": "apiKey", "in": "query", "name": "token",
        "description": "The read-only stream token of a `streamUrl`, valid `STREAM_TOKEN_TTL` (default 1 h) for "
                       "that one stream. SSE routes only; an access token here is refused with 401."})
    for name, schema in schemas(types).items():
        spec.components.schema(name, component=schema)
    for name, response in responses(app.config.get("MAX_CONTENT_LENGTH") or 64 * 1024).items():
        spec.components.response(name, component=response)
    operations: dict[str, dict] = {}
    parameters: dict[str, list] = {}
    for rule in app.url_map.iter_rules():
        if not _documented(rule):
            continue
        path = FlaskPlugin.flaskpath2openapi(rule.rule)
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operations.setdefault(path, {})[method.lower()] = _copy(_operation(rule, view, queue_routes))
        parameters[path] = path_parameters(rule, types)
    for path in sorted(operations, key=_path_order):
        spec.path(path=path, operations=operations[path], parameters=parameters[path] or None)
    return spec.to_dict()


def _path_order(path: str) -> tuple:
    return (not path.startswith(API_PREFIX), path)


def _copy(value):
    """apispec edits operations in place; OPERATIONS is shared by every app built."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def document(app: Optional[Flask] = None) -> dict[str, Any]:
    """The app's document, built once per app."""
    app = app or current_app
    cached = app.extensions.get("jobapp.openapi")
    if cached is None:
        cached = app.extensions["jobapp.openapi"] = build_document(app)
    return cached


# --- routes: the document and Swagger UI ---------------------------------------------------------

#: The files of the swagger-ui-bundle-v2 package the page loads, and our own initializer.
UI_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
INIT = "jobapp-init.js"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>jobapp API</title>
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec="{spec}"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/{init}"></script>
</body>
</html>
"""
INIT_JS = """window.addEventListener('load', () => {
  const root = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: root.dataset.spec, domNode: root, deepLinking: true, validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout',
  });
});
"""


def _headers() -> dict:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/docs")
def docs_page():
    base = url_for("openapi.docs_page")
    html = PAGE.format(base=base, spec=url_for("openapi.openapi_json"), init=INIT)
    return Response(html, mimetype="text/html", headers=_headers())


@bp.get("/docs/<path:filename>")
def docs_file(filename: str):
    """Swagger UI's files, from the package (never a CDN), and the page's initializer."""
    if filename == INIT:
        return Response(INIT_JS, mimetype="text/javascript", headers=_headers())
    if filename not in UI_FILES:
        abort(404)
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
