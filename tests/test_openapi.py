"""The OpenAPI document is kept true: it names every route with its methods, validates as OpenAPI,
and schemathesis checks the real API against it (no 5xx; status codes, content types, headers,
bodies and SSE events as documented).

Schemathesis runs go through the Flask app (WSGI, fast) on a private real Redis:

- every operation but the two SSE streams, as user ``alice`` with a valid Bearer token;
- the SSE streams on their own, because a 200 stream does not end by itself: a job's stream ends
  only with the job's terminal event (a pending job's never does), the many-jobs stream not even
  then. So they are fuzzed where they cannot open: a job's stream as a user who owns no job (every
  id answers 404), both streams with no valid credentials (401, from generated tokens or none).
  The app's streams also end after 2 s here, as a safety net.

The answers fuzzing cannot reach — both streams' 200, 204, 400 and 429, 409, 413, 415, 503, results
of finished jobs — are produced on purpose below and validated against the same document with
schemathesis (its SSE check parses each event and validates its JSON against ``JobUpdate``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
import schemathesis
import swagger_ui_bundle
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import allow_header_conformance, ignored_auth, positive_data_acceptance

from jobapp import create_app, openapi
from jobapp.config import Config
from jobapp.devredis import free_port
from jobapp import registry
from jobapp.registry import REGISTRY

registry.load(["jobapp.demo"])  # the document below is built at import, from the default job types

from .support import SECRET, make_token

DOC = "/api/v1/openapi.json"
MAX_EXAMPLES = int(os.environ.get("OPENAPI_MAX_EXAMPLES", "25"))  # fuzzed cases per operation; raise for a deeper run
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def routed_operations(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every rule of the app but static files, rq-dashboard, HEAD and OPTIONS."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule == "/rq" or rule.rule.startswith("/rq/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


@pytest.fixture(scope="module")
def fuzz_app(redis_server):
    """The app on the session's private Redis, shared by this module (Hypothesis reruns a test many times).

    Streams here are read through WSGI in this thread, without gevent's event loop that the hub watcher
    needs under gunicorn, so they use the ``poll`` watcher; and they end after 2 s. Its jobs go to a Redis
    database of their own, so the session's live worker never runs them (tests here cancel pending jobs).
    """
    own_db = redis_server.url.rsplit("/", 1)[0] + "/7"
    app = create_app(Config.from_env({}, REDIS_URL=own_db, JWT_SECRET_KEY=SECRET, JOB_STEP_SECONDS=0.05,
                                     SSE_MAX_STREAM_SECONDS=2, SSE_HEARTBEAT_SECONDS=1, WATCHER="poll",
                                     POLL_INTERVAL_SECONDS=0.1, RATE_LIMIT_QUEUE="100000/minute"))
    app.testing = True
    return app


def schemathesis_config(user: str | None) -> schemathesis.Config:
    """Requests carry a valid Bearer token for ``user`` (none for ``None``); at most MAX_EXAMPLES fuzzed each."""
    settings: dict = {"generation": {"max-examples": MAX_EXAMPLES, "database": "none"}}
    if user is not None:
        settings["headers"] = {"Authorization": f"Bearer {make_token(user)}"}
    return schemathesis.Config.from_dict(settings)


# --- the document ------------------------------------------------------------------------------

def test_document_names_every_route_with_its_methods_and_nothing_else(client, app):
    document = client.get(DOC).get_json()
    routed, documented = routed_operations(app), documented_operations(document)
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations the app does not route"


def test_document_names_rq_dashboard_routes_not_at_all(redis_server):
    app = create_app(Config.from_env({}, REDIS_URL=redis_server.url, RQ_DASHBOARD_USERNAME="ops",
                                     RQ_DASHBOARD_PASSWORD="dashboard-pass"))
    assert any(rule.rule.startswith("/rq/") for rule in app.url_map.iter_rules())
    assert documented_operations(openapi.document(app)) == routed_operations(app)


def test_document_is_valid_openapi(client):
    response = client.get(DOC)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate_openapi(copy.deepcopy(document))  # raises on any violation of the OpenAPI 3.1 schema


def test_request_bodies_are_the_pydantic_models(client):
    document = client.get(DOC).get_json()
    schemas = document["components"]["schemas"]
    for job_type in REGISTRY.values():
        model = job_type.schema
        assert schemas[model.__name__] == model.model_json_schema(ref_template="#/components/schemas/{model}")
        body = document["paths"][f"/api/v1/{job_type.route}/queue"]["post"]["requestBody"]
        queue_body = f"{model.__name__}QueueBody"  # the model plus contract 1.1's queue options
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{queue_body}"}
        options = {k: v for k, v in schemas[queue_body]["properties"].items() if k not in schemas[model.__name__]["properties"]}
        assert set(options) == {"dependsOn", "runAt", "delaySeconds"}


def test_security_schemes_and_public_routes(client):
    document = client.get(DOC).get_json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["streamToken"] == {**schemes["streamToken"], "type": "apiKey", "in": "query", "name": "token"}
    stream = document["paths"]["/api/v1/sse/jobs/{job_type}/{job_id}"]["get"]
    assert stream["security"] == [{"bearerAuth": []}, {"streamToken": []}]
    assert set(stream["responses"]) >= {"200", "204", "401", "404"}
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    for path in ("/healthz", "/readyz", "/metrics", DOC, "/api/v1/docs", "/api/v1/docs/{filename}"):
        assert document["paths"][path]["get"]["security"] == [], path
    for path, method in documented_operations(document):
        operation = document["paths"][path][method.lower()]
        if path.startswith("/api/v1/") and path not in (DOC, "/api/v1/docs", "/api/v1/docs/{filename}"):
            assert operation.get("security", document["security"]), f"{method} {path} needs a token"
            assert "401" in operation["responses"], f"{method} {path} documents no 401"


def test_document_and_docs_need_no_token(client):
    assert client.get(DOC).status_code == 200
    assert client.get("/api/v1/docs").status_code == 200


def test_docs_page_is_swagger_ui_from_the_package_and_loads_nothing_from_elsewhere(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must not load anything remote"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "http" not in csp and "script-src 'self'" in csp
    assert 'data-spec="/api/v1/openapi.json"' in html
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/api/v1/docs/swagger-ui-bundle.js" in loaded and "/api/v1/docs/swagger-ui.css" in loaded
    package = Path(swagger_ui_bundle.swagger_ui_path)
    for url in loaded:
        served = client.get(url)
        assert served.status_code == 200, url
        name = url.rsplit("/", 1)[1]
        if (package / name).is_file():
            assert served.get_data() == (package / name).read_bytes(), f"{name} is the package's own file"
    assert client.get("/api/v1/docs/index.html").status_code == 404, "only the files the page needs"
    assert client.get("/api/v1/docs/../openapi.py").status_code == 404


def test_sse_routes_are_event_streams_with_the_event_schemas(client):
    document = client.get(DOC).get_json()
    schemas = document["components"]["schemas"]
    for path in (SSE_PATH, MANY_PATH):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"]
        assert content["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/ServerSentEvent"}
    data = schemas["ServerSentEvent"]["properties"]["data"]
    assert data["contentSchema"] == {"oneOf": [{"$ref": "#/components/schemas/JobUpdate"},
                                               {"$ref": "#/components/schemas/JobLog"}]}
    update = schemas["JobUpdate"]["properties"]
    assert {"attempt", "maxAttempts", "position", "scheduledFor", "waitingFor"} <= set(update), "contract 1.1"
    assert set(schemas["JobLog"]["required"]) == {"type", "jobId", "seq", "lines", "dropped"}


def test_every_registered_job_type_has_its_queue_route_from_the_registry(client):
    document = client.get(DOC).get_json()
    for job_type in REGISTRY.values():
        operation = document["paths"][f"/api/v1/{job_type.route}/queue"]["post"]
        assert operation["operationId"] == f"queue_{job_type.name}"
    enum = document["paths"][SSE_PATH]["parameters"][0]["schema"]["enum"]
    assert enum == [job_type.name for job_type in REGISTRY.values()]


# --- schemathesis: generated requests ----------------------------------------------------------

SSE_PATH = "/api/v1/sse/jobs/{job_type}/{job_id}"
MANY_PATH = "/api/v1/sse/jobs"


#: The document of an app with the default settings (no Redis is touched to build it), loaded at
#: import so pytest shows one test per operation; ``test_served_document_is_the_built_one`` checks
#: that it is exactly the document the app serves. Requests go to ``fuzz_app`` (WSGI).
BUILT = openapi.build_document(create_app(Config.from_env({}, REDIS_URL="redis://127.0.0.1:9/0", JWT_SECRET_KEY=SECRET)))


def test_served_document_is_the_built_one(client):
    assert client.get(DOC).get_json() == BUILT


api = schemathesis.openapi.from_dict(copy.deepcopy(BUILT), config=schemathesis_config("alice")) \
    .exclude(path=[SSE_PATH, MANY_PATH])
stream_as_user_without_jobs = schemathesis.openapi.from_dict(
    copy.deepcopy(BUILT), config=schemathesis_config("owns-no-jobs")).include(path=SSE_PATH)
stream_without_credentials = schemathesis.openapi.from_dict(
    copy.deepcopy(BUILT), config=schemathesis_config(None)).include(path=[SSE_PATH, MANY_PATH])


# ``/api/v1/<collection>/queue`` also matches ``/api/v1/<collection>/<id>`` (GET), so Flask's
# automatic OPTIONS answer advertises GET there: a routing overlap of the app, reported, not hidden
# elsewhere. Only that check, only on those paths, is left out.
QUEUE_PATHS = {f"/api/v1/{job_type.route}/queue" for job_type in REGISTRY.values()}


def as_the_server_reads_it(value):
    """A queue body as the API's validation sees it: integral floats as ints, strings trimmed.

    Two things JSON Schema cannot say, reported as findings: JSON Schema's ``integer`` includes
    ``961.0``, which the API's strict pydantic validation refuses; and pydantic trims the short
    strings (``name``, ``species``, ``occupation``, ``traits``) before checking their length, so a
    whitespace-only ``name`` is refused though the generated schema's ``minLength: 1`` allows it.
    Schemathesis re-validates a case whose body changed, so a case made invalid this way is
    checked as a negative one.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {key: as_the_server_reads_it(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_the_server_reads_it(item) for item in value]
    return value


def send_to(app, case, **kwargs):
    """Send ``case`` to ``app`` through WSGI (checks that re-send requests, e.g. without auth, too)."""
    case.operation.schema.app = case.operation.app = app
    return case.call_and_validate(**kwargs)


@api.parametrize()
def test_api_conforms_to_its_document(case, fuzz_app):
    excluded = [allow_header_conformance] if case.path in QUEUE_PATHS else []
    if case.path in QUEUE_PATHS and "json" in (case.media_type or ""):
        case.body = as_the_server_reads_it(case.body)
    if case.path in QUEUE_PATHS and isinstance(case.body, dict) and case.body.get("runAt") is not None:
        # runAt may lie at most MAX_SCHEDULE_SECONDS after now, which no schema can say.
        excluded.append(positive_data_acceptance)
    if case.path == "/api/v1/jobs" and "cursor" in (case.query or {}):
        # A cursor is opaque: only one the server minted (``nextCursor``) is valid, which no schema can say.
        excluded.append(positive_data_acceptance)
    send_to(fuzz_app, case, excluded_checks=excluded)


@schemathesis.pytest.parametrize(no_jobs=stream_as_user_without_jobs, anonymous=stream_without_credentials)
def test_stream_errors_conform_to_its_document(case, fuzz_app):
    response = send_to(fuzz_app, case)
    if response.request.method == "GET":  # not a coverage probe with another method (405, or a CORS preflight)
        assert response.status_code in (401, 404), "for these callers a stream never opens"


# --- schemathesis: answers produced on purpose -------------------------------------------------

@pytest.fixture
def wsgi_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi(DOC, fuzz_app, config=schemathesis_config("alice"))


def events(text: str) -> list[tuple[str, dict]]:
    """(id, payload) of each event of an SSE body (the document's schema has checked their shape)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            found.append((fields["id"], json.loads(fields["data"])))
    return found


def bearer(user: str = "alice") -> dict:
    return {"Authorization": f"Bearer {make_token(user)}"}


def call(schema, method: str, path: str, expected: int, excluded_checks=(), **case_kwargs):
    """Send one request as a schemathesis case, check it against the document, and its status."""
    case = schema[path][method].Case(**case_kwargs)
    excluded = list(excluded_checks) + ([not_a_server_error] if expected >= 500 else [])  # a 503 is under test here
    response = case.call_and_validate(excluded_checks=excluded)
    assert response.status_code == expected, response.text
    return response


def test_queue_snapshot_cancel_and_409_conform(wsgi_schema):
    queued = call(wsgi_schema, "POST", "/api/v1/characters/queue", 202, headers=bearer(),
                  body={"name": "Aria", "age": 27, "traits": ["brave"]}, media_type="application/json").json()["data"]
    ids = {"job_type": queued["type"], "job_id": queued["jobId"]}
    snapshot = call(wsgi_schema, "GET", "/api/v1/jobs/{job_type}/{job_id}", 200, headers=bearer(),
                    path_parameters=ids).json()["data"]
    assert snapshot["status"] == "pending"
    canceled = call(wsgi_schema, "POST", "/api/v1/jobs/{job_type}/{job_id}/cancel", 200, headers=bearer(),
                    path_parameters=ids).json()["data"]
    assert canceled["status"] == "canceled"
    call(wsgi_schema, "POST", "/api/v1/jobs/{job_type}/{job_id}/cancel", 409, headers=bearer(), path_parameters=ids)
    call(wsgi_schema, "GET", "/api/v1/jobs/{job_type}/{job_id}", 404, headers=bearer("mallory"), path_parameters=ids)
    media = call(wsgi_schema, "POST", "/api/v1/media/queue", 202, headers=bearer(),
                 body={"characterId": "abc", "kind": "image"}, media_type="application/json").json()["data"]
    assert media["type"] == "media"


def test_stream_of_a_canceled_job_then_204_conform(wsgi_schema, fuzz_app):
    """A finished job's stream carries its final event and ends; with that event's id it answers 204."""
    client = fuzz_app.test_client()
    queued = client.post("/api/v1/characters/queue", json={"name": "Aria", "age": 3}, headers=bearer()).get_json()["data"]
    ids = {"job_type": "character", "job_id": queued["jobId"]}
    final = client.post(f"/api/v1/jobs/character/{queued['jobId']}/cancel", headers=bearer()).get_json()["data"]
    path = "/api/v1/sse/jobs/{job_type}/{job_id}"
    response = call(wsgi_schema, "GET", path, 200, headers=bearer(), path_parameters=ids)
    assert response.headers["content-type"][0].startswith("text/event-stream")
    last_id, last = events(response.text)[-1]
    assert last == {key: final[key] for key in last}, "the stream's final event is the canceled state"
    call(wsgi_schema, "GET", path, 204, headers={**bearer(), "Last-Event-ID": last_id},
         path_parameters=ids)
    # The streamUrl's token works alone, and only for its own stream.
    token = final["streamUrl"].split("?token=")[1]
    call(wsgi_schema, "GET", path, 200, path_parameters=ids, query={"token": token})
    call(wsgi_schema, "GET", path, 401, path_parameters={**ids, "job_id": "0" * 8 + ids["job_id"][8:]},
         query={"token": token})
    call(wsgi_schema, "GET", path, 401, path_parameters=ids, query={"token": make_token("alice")})
    call(wsgi_schema, "GET", path, 401, path_parameters=ids)


def test_job_list_and_many_jobs_stream_conform(wsgi_schema, fuzz_app):
    client = fuzz_app.test_client()
    user = f"lister-{uuid.uuid4().hex}"
    jobs = [client.post("/api/v1/characters/queue", json={"name": f"A{i}", "age": i}, headers=bearer(user))
            .get_json()["data"] for i in range(3)]
    final = client.post(f"/api/v1/jobs/character/{jobs[0]['jobId']}/cancel", headers=bearer(user)).get_json()["data"]
    listed = call(wsgi_schema, "GET", "/api/v1/jobs", 200, headers=bearer(user), query={"limit": 2}).json()
    assert [job["jobId"] for job in listed["data"]] == [jobs[2]["jobId"], jobs[1]["jobId"]]
    rest = call(wsgi_schema, "GET", "/api/v1/jobs", 200, headers=bearer(user),
                query={"limit": 2, "cursor": listed["nextCursor"]}).json()
    assert [job["jobId"] for job in rest["data"]] == [jobs[0]["jobId"]] and rest["nextCursor"] is None
    call(wsgi_schema, "GET", "/api/v1/jobs", 200, headers=bearer(user), query={"status": "canceled"})
    call(wsgi_schema, "GET", "/api/v1/jobs", 400, headers=bearer(user), query={"limit": 0})
    call(wsgi_schema, "GET", "/api/v1/jobs", 400, headers=bearer(user), query={"cursor": "not-a-cursor"})
    call(wsgi_schema, "GET", "/api/v1/jobs", 401, query={"limit": 2})
    # The many-jobs stream stays open after its jobs finish, until SSE_MAX_STREAM_SECONDS (2 s here).
    token = listed["streamUrl"].split("?token=")[1]
    streamed = call(wsgi_schema, "GET", MANY_PATH, 200, query={"token": token, "ids": f"{jobs[0]['jobId']},nope"})
    watched = [event for _, event in events(streamed.text) if event["type"] == "job_update"]  # 1.1 adds job_log
    assert watched == [{key: final[key] for key in watched[0]}], "just the owned job, in its final state"
    call(wsgi_schema, "GET", MANY_PATH, 400, headers=bearer(user), query={"ids": ",".join(str(i) for i in range(101))})
    job_token = jobs[0]["streamUrl"].split("?token=")[1]
    call(wsgi_schema, "GET", MANY_PATH, 401, query={"token": job_token})  # a job's token is not the user's
    call(wsgi_schema, "GET", MANY_PATH, 401, query={"token": make_token(user)})  # an access token in the URL


def test_dev_token_refuses_a_body_that_is_not_an_object(wsgi_schema):
    call(wsgi_schema, "POST", "/dev/token", 400, body=[None, None], media_type="application/json")


def test_body_errors_conform(wsgi_schema):
    path = "/api/v1/characters/queue"
    call(wsgi_schema, "POST", path, 400, headers=bearer(), body={"name": "Aria", "age": "27"},
         media_type="application/json")
    call(wsgi_schema, "POST", path, 400, headers={**bearer(), "Content-Type": "application/json"}, body="{not json",
         media_type="text/plain")
    call(wsgi_schema, "POST", path, 415, headers=bearer(), body="name=Aria", media_type="text/plain")
    call(wsgi_schema, "POST", path, 413, headers=bearer(), media_type="application/json",
         body={"name": "Aria", "age": 27, "description": "x" * (70 * 1024)})
    call(wsgi_schema, "POST", path, 401, headers={"Authorization": "Bearer not.a.token"},
         body={"name": "Aria", "age": 27}, media_type="application/json")


def test_rate_limited_queue_and_stream_cap_conform(redis_server, wsgi_schema):
    """429 from the queue routes' per-user rate limit and from the cap on a user's open streams."""
    user = f"limited-{uuid.uuid4().hex}"
    app = create_app(Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET,
                                     RATE_LIMIT_QUEUE="2/minute", MAX_STREAMS_PER_USER=1))
    wsgi_schema.app = app
    path = "/api/v1/characters/queue"
    body = {"name": "Aria", "age": 27}
    # ignored_auth re-sends each request without a token; those probes are rate-limited per address
    # (the limiter runs before authentication), so with a limit of 2 they would soon see 429 rather than 401.
    relaxed = [ignored_auth]
    queued = [call(wsgi_schema, "POST", path, 202, relaxed, headers=bearer(user), body=body,
                   media_type="application/json") for _ in range(2)]
    response = call(wsgi_schema, "POST", path, 429, relaxed, headers=bearer(user), body=body,
                    media_type="application/json")
    assert response.headers["retry-after"][0].isdigit()
    job = queued[0].json()["data"]
    ids = {"job_type": job["type"], "job_id": job["jobId"]}
    client = app.test_client()
    first = client.get(job["streamUrl"], buffered=False)  # a pending job's stream stays open
    try:
        assert first.status_code == 200
        call(wsgi_schema, "GET", SSE_PATH, 429, relaxed, headers=bearer(user), path_parameters=ids)
    finally:
        first.close()


def test_redis_unreachable_answers_conform(redis_server):
    """With Redis gone every route that needs it answers the documented 503; liveness still answers 200."""
    down = create_app(Config.from_env({}, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", JWT_SECRET_KEY=SECRET))
    up = create_app(Config.from_env({}, REDIS_URL=redis_server.url, JWT_SECRET_KEY=SECRET))
    schema = schemathesis.openapi.from_wsgi(DOC, up)
    schema.app = down  # the document is the same; the requests go to the app whose Redis is gone
    ids = {"job_type": "character", "job_id": "3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c"}
    call(schema, "GET", "/healthz", 200)
    call(schema, "GET", "/readyz", 503)
    call(schema, "GET", "/metrics", 503)
    call(schema, "POST", "/api/v1/characters/queue", 503, headers=bearer(), body={"name": "Aria", "age": 27},
         media_type="application/json")
    call(schema, "GET", "/api/v1/jobs/{job_type}/{job_id}", 503, headers=bearer(), path_parameters=ids)
    call(schema, "POST", "/api/v1/jobs/{job_type}/{job_id}/cancel", 503, headers=bearer(), path_parameters=ids)
    call(schema, "GET", "/api/v1/sse/jobs/{job_type}/{job_id}", 503, headers=bearer(), path_parameters=ids)
    call(schema, "GET", "/api/v1/characters/{character_id}", 503, headers=bearer(),
         path_parameters={"character_id": "0" * 32})
    call(schema, "GET", "/api/v1/files/{file_id}", 503, headers=bearer(), path_parameters={"file_id": "0" * 32})
    call(schema, "GET", "/api/v1/jobs", 503, headers=bearer())
    call(schema, "GET", MANY_PATH, 503, headers=bearer())


def test_finished_jobs_and_their_results_conform_over_http(live):
    """Against the real gunicorn server and RQ worker: completed jobs, their streams and what they made."""
    schema = schemathesis.openapi.from_url(f"{live.url}{DOC}")
    headers = live.headers("openapi-user")

    def finished(job_type: str, route: str, body: dict) -> dict:
        queued = call(schema, "POST", f"/api/v1/{route}/queue", 202, headers=headers, body=body,
                      media_type="application/json").json()["data"]
        deadline = time.monotonic() + 20
        while True:
            data = httpx.get(f"{live.url}{queued['statusUrl']}", headers=headers).json()["data"]
            if data["status"] in ("completed", "failed", "canceled") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert data["status"] == "completed", data
        ids = {"job_type": job_type, "job_id": queued["jobId"]}
        call(schema, "GET", "/api/v1/jobs/{job_type}/{job_id}", 200, headers=headers, path_parameters=ids)
        call(schema, "POST", "/api/v1/jobs/{job_type}/{job_id}/cancel", 409, headers=headers, path_parameters=ids)
        streamed = call(schema, "GET", "/api/v1/sse/jobs/{job_type}/{job_id}", 200, headers=headers,
                        path_parameters=ids)
        last_id, last = events(streamed.text)[-1]
        assert last["status"] == "completed"
        call(schema, "GET", "/api/v1/sse/jobs/{job_type}/{job_id}", 204, path_parameters=ids,
             headers={**headers, "Last-Event-ID": last_id})
        return data

    character = finished("character", "characters", {"name": "Aria", "age": 27})
    character_id = character["result"]["characterId"]
    profile = call(schema, "GET", "/api/v1/characters/{character_id}", 200, headers=headers,
                   path_parameters={"character_id": character_id}).json()["data"]
    assert profile["id"] == character_id
    call(schema, "GET", "/api/v1/characters/{character_id}", 404, headers=live.headers("mallory"),
         path_parameters={"character_id": character_id})
    for kind, content_type in (("image", "image/png"), ("audio", "audio/wav"), ("video", "image/gif")):
        made = finished("media", "media", {"characterId": character_id, "kind": kind})
        assert made["result"]["url"] == f"/api/v1/files/{made['result']['mediaId']}"
        response = call(schema, "GET", "/api/v1/files/{file_id}", 200, headers=headers,
                        path_parameters={"file_id": made["result"]["mediaId"]})
        assert response.headers["content-type"][0].split(";")[0] == content_type
    listed = call(schema, "GET", "/api/v1/jobs", 200, headers=headers).json()["data"]
    assert [job["status"] for job in listed] == ["completed"] * 4
    call(schema, "GET", "/healthz", 200)
    call(schema, "GET", "/readyz", 200)
    call(schema, "GET", "/metrics", 200)
    call(schema, "GET", "/api/v1/docs", 200)
