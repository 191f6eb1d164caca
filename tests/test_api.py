"""The JSON API through Flask's test client, against a real private Redis (no worker needed)."""

from __future__ import annotations

import json
import zlib

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from jobapp import keys

CHAR = "/api/v1/characters/queue"
MEDIA = "/api/v1/media/queue"


def queue_character(client, headers, **body):
    return client.post(CHAR, json={"name": "Aria", "age": 27, **body}, headers=headers)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_queue_character_answers_202_with_links(client, auth):
    response = queue_character(client, auth())
    assert response.status_code == 202
    data = response.get_json()["data"]
    assert data["type"] == "character" and data["status"] == "pending"
    job_id = data["jobId"]
    assert len(job_id) == 36 and job_id.count("-") == 4
    assert data["statusUrl"] == f"/api/v1/jobs/character/{job_id}"
    assert data["streamUrl"].startswith(f"/api/v1/sse/jobs/character/{job_id}?token=")


def test_job_ids_are_uuid4_and_unique(client, auth):
    ids = {queue_character(client, auth()).get_json()["data"]["jobId"] for _ in range(20)}
    assert len(ids) == 20
    assert all(i[14] == "4" for i in ids)


def test_jobs_are_stored_as_json_never_pickle(client, auth, redis_conn):
    job_id = queue_character(client, auth()).get_json()["data"]["jobId"]
    raw = redis_conn.hgetall(f"rq:job:{job_id}")
    # RQ zlib-compresses the call; inside is JSON (pickle would start with b"\x80").
    call = zlib.decompress(raw[b"data"])
    assert json.loads(call)[0] == "jobapp.demo.character.create_character"
    assert json.loads(raw[b"meta"])["owner"] == "alice"
    job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
    assert job.func_name == "jobapp.demo.character.create_character"
    assert job.args == ("alice", {"name": "Aria", "age": 27}) or list(job.args) == ["alice", {"name": "Aria", "age": 27}]
    assert "Aria" in job.description


def test_snapshot_has_the_event_payload_and_a_fresh_stream_url(client, auth):
    job_id = queue_character(client, auth()).get_json()["data"]["jobId"]
    response = client.get(f"/api/v1/jobs/character/{job_id}", headers=auth())
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"type", "jobId", "jobType", "status", "progress", "stage", "message", "updatedAt",
                         "result", "failedReason", "streamUrl", "statusUrl",
                         "attempt", "maxAttempts", "position", "scheduledFor", "waitingFor"}  # contract 1.1
    assert data["type"] == "job_update" and data["status"] == "pending" and data["progress"] == 0
    assert data["position"] >= 1 and data["attempt"] == data["maxAttempts"] == 1
    assert isinstance(data["updatedAt"], int) and data["updatedAt"] > 1_700_000_000_000
    assert data["result"] is None and data["failedReason"] is None


def test_another_users_job_answers_exactly_like_an_unknown_one(client, auth):
    job_id = queue_character(client, auth("alice")).get_json()["data"]["jobId"]
    foreign = client.get(f"/api/v1/jobs/character/{job_id}", headers=auth("bob"))
    unknown = client.get("/api/v1/jobs/character/00000000-0000-4000-8000-000000000000", headers=auth("bob"))
    assert_error(foreign, 404)
    assert foreign.get_json() == unknown.get_json()
    for path in (f"/api/v1/sse/jobs/character/{job_id}",):
        assert client.get(path, headers=auth("bob")).get_json() == unknown.get_json()
    assert_error(client.post(f"/api/v1/jobs/character/{job_id}/cancel", headers=auth("bob")), 404)


def test_a_job_of_the_other_type_is_404(client, auth):
    job_id = queue_character(client, auth()).get_json()["data"]["jobId"]
    assert_error(client.get(f"/api/v1/jobs/media/{job_id}", headers=auth()), 404)
    assert_error(client.get(f"/api/v1/sse/jobs/media/{job_id}", headers=auth()), 404)
    assert_error(client.get(f"/api/v1/jobs/nonsense/{job_id}", headers=auth()), 404)


@pytest.mark.parametrize("job_id", ["x" * 5000, "..", "%2e%2e", "abc%00def", "a%2Fb", "rq:job:1", "0" * 36])
def test_odd_job_ids_are_404_json(client, auth, job_id):
    assert_error(client.get(f"/api/v1/jobs/character/{job_id}", headers=auth()), 404)
    assert_error(client.get(f"/api/v1/sse/jobs/character/{job_id}", headers=auth()), 404)


@pytest.mark.parametrize("body, field", [
    ({"age": 3}, "name"),
    ({"name": "", "age": 3}, "name"),
    ({"name": "x" * 101, "age": 3}, "name"),
    ({"name": "Aria", "age": "3"}, "age"),
    ({"name": "Aria", "age": 3.5}, "age"),
    ({"name": "Aria", "age": True}, "age"),
    ({"name": "Aria", "age": -1}, "age"),
    ({"name": "Aria", "age": 10001}, "age"),
    ({"name": 7, "age": 3}, "name"),
    ({"name": "Aria", "age": 3, "isAdmin": True}, "isAdmin"),
    ({"name": "Aria", "age": 3, "traits": ["x"] * 11}, "traits"),
])
def test_invalid_character_bodies_are_400_with_fields(client, auth, body, field):
    error = assert_error(client.post(CHAR, json=body, headers=auth()), 400, "validation_error")
    assert field in error["fields"]


def test_unicode_names_are_fine(client, auth):
    response = queue_character(client, auth(), name="Zoë 🐉 Ωmega")
    assert response.status_code == 202


@pytest.mark.parametrize("body, field", [
    ({"kind": "image"}, "characterId"),
    ({"characterId": "abc", "kind": "hologram"}, "kind"),
    ({"characterId": "../../etc", "kind": "image"}, "characterId"),
    ({"characterId": "abc", "kind": "image", "prompt": "x" * 501}, "prompt"),
])
def test_invalid_media_bodies_are_400(client, auth, body, field):
    error = assert_error(client.post(MEDIA, json=body, headers=auth()), 400, "validation_error")
    assert field in error["fields"]


def test_media_queue_accepts_a_valid_body(client, auth):
    response = client.post(MEDIA, json={"characterId": "abc123", "kind": "audio"}, headers=auth())
    assert response.status_code == 202 and response.get_json()["data"]["type"] == "media"


def test_malformed_json_is_400(client, auth):
    response = client.post(CHAR, data="{not json", headers={**auth(), "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")
    assert_error(client.post(CHAR, json=[1, 2], headers=auth()), 400)


def test_wrong_content_type_is_415(client, auth):
    response = client.post(CHAR, data="name=Aria&age=3", headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(response, 415)


def test_body_over_the_limit_is_413(client, auth):
    response = client.post(CHAR, data=json.dumps({"name": "A", "age": 1, "description": "x" * 70000}),
                           headers={**auth(), "Content-Type": "application/json"})
    assert_error(response, 413)


def test_wrong_method_is_405_json(client, auth):
    assert_error(client.put(CHAR, headers=auth()), 405)
    assert_error(client.delete("/api/v1/jobs/character/x", headers=auth()), 405)


def test_unknown_route_is_404_json(client):
    assert_error(client.get("/api/v1/nope"), 404)


def test_cancel_a_pending_job(client, auth, redis_conn):
    job_id = queue_character(client, auth()).get_json()["data"]["jobId"]
    response = client.post(f"/api/v1/jobs/character/{job_id}/cancel", headers=auth())
    assert response.status_code == 200
    assert response.get_json()["data"]["status"] == "canceled"
    job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
    assert job.get_status() == "canceled"
    assert job_id.encode() not in redis_conn.lrange("rq:queue:character", 0, -1)
    snapshot = client.get(f"/api/v1/jobs/character/{job_id}", headers=auth()).get_json()["data"]
    assert snapshot["status"] == "canceled"
    assert_error(client.post(f"/api/v1/jobs/character/{job_id}/cancel", headers=auth()), 409)


def test_results_are_for_their_owner_only(client, auth, redis_conn):
    redis_conn.set(keys.character("a" * 32), json.dumps({"owner": "alice", "character": {"id": "a" * 32}}))
    assert client.get(f"/api/v1/characters/{'a' * 32}", headers=auth("alice")).get_json()["data"]["id"] == "a" * 32
    assert_error(client.get(f"/api/v1/characters/{'a' * 32}", headers=auth("bob")), 404)
    assert_error(client.get("/api/v1/characters/..%2F..", headers=auth()), 404)
    redis_conn.hset(keys.file("b" * 32), mapping={"owner": "alice", "contentType": "image/png", "data": b"\x89PNG"})
    ok = client.get(f"/api/v1/files/{'b' * 32}", headers=auth("alice"))
    assert ok.status_code == 200 and ok.mimetype == "image/png" and ok.data == b"\x89PNG"
    assert_error(client.get(f"/api/v1/files/{'b' * 32}", headers=auth("bob")), 404)
    assert_error(client.get("/api/v1/files/..%2F..", headers=auth()), 404)


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_readyz_is_503_and_queueing_is_503_when_redis_is_unreachable(redis_server, auth):
    from jobapp import create_app
    from jobapp.config import Config
    from jobapp.devredis import free_port
    from tests.support import SECRET
    app = create_app(Config.from_env({}, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", JWT_SECRET_KEY=SECRET))
    client = app.test_client()
    ready = assert_error(client.get("/readyz"), 503, "not_ready")
    assert "127.0.0.1" not in ready["message"]
    response = queue_character(client, auth())
    error = assert_error(response, 503)
    assert "nothing was queued" in error["message"] and "127.0.0.1" not in error["message"]


def test_cors_preflight_allows_the_configured_origin(client):
    response = client.options(CHAR, headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    other = client.options(CHAR, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_get_on_a_queue_route_is_405_not_404(client, auth):
    for route in (CHAR, "/api/v1/media/queue"):
        response = client.get(route, headers=auth())
        assert_error(response, 405)
        assert response.headers["Allow"].split(", ").count("POST") == 1


def test_production_serves_no_development_routes(redis_server):
    from jobapp import create_app
    from jobapp.config import Config
    production = create_app(Config.from_env({}, REDIS_URL=redis_server.url, JOBAPP_ENV="production",
                                            JWT_SECRET_KEY="p" * 40)).test_client()
    assert_error(production.post("/dev/token", json={"userId": "mallory"}), 404)
    assert_error(production.get("/dev/config"), 404)
    development = create_app(Config.from_env({}, REDIS_URL=redis_server.url)).test_client()
    assert development.post("/dev/token", json={"userId": "dev"}).status_code == 200
    assert development.get("/dev/config").get_json() == {"data": {"devTokens": True}}
