"""Auth as the contract says: Bearer access tokens from any issuer, stream tokens only in URLs."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest

from jobapp.config import Config, ConfigError
from tests.support import SECRET, make_token

CHAR = "/api/v1/characters/queue"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'alice', 'exp': now + 60})}.",
        "other key": pyjwt.encode({"sub": "alice", "exp": now + 60}, "another-secret-another-secret-xx", algorithm="HS256"),
        "other algorithm": pyjwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS512"),
        "expired": pyjwt.encode({"sub": "alice", "exp": now - 10}, SECRET, algorithm="HS256"),
        "not yet valid": pyjwt.encode({"sub": "alice", "exp": now + 600, "nbf": now + 300}, SECRET, algorithm="HS256"),
        "missing sub": pyjwt.encode({"exp": now + 60}, SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.fixture
def job(client, auth):
    data = client.post(CHAR, json={"name": "Aria", "age": 3}, headers=auth()).get_json()["data"]
    return data


def routes(job: dict) -> list[tuple[str, str]]:
    job_id = job["jobId"]
    return [("POST", CHAR), ("GET", f"/api/v1/jobs/character/{job_id}"),
            ("POST", f"/api/v1/jobs/character/{job_id}/cancel"), ("GET", f"/api/v1/sse/jobs/character/{job_id}"),
            ("GET", f"/api/v1/characters/{'a' * 32}"), ("GET", f"/api/v1/files/{'a' * 32}"),
            ("GET", "/api/v1/job-types")]


@pytest.mark.parametrize("name", list(bad_tokens()))
def test_bad_tokens_are_401_json_on_every_route(client, job, name):
    token = bad_tokens()[name]
    for method, path in routes(job):
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"},
                               json={"name": "Aria", "age": 3})
        assert response.status_code == 401, (name, path, response.get_data(as_text=True))
        assert response.get_json()["error"]["code"] in {"unauthorized", "token_expired"}


def test_missing_token_is_401_on_every_route(client, job):
    for method, path in routes(job):
        response = client.open(path, method=method, json={})
        assert response.status_code == 401 and "Bearer" in response.get_json()["error"]["message"]


def test_a_plain_token_from_any_issuer_is_accepted(client):
    token = pyjwt.encode({"sub": "carol", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    response = client.post(CHAR, json={"name": "A", "age": 1}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202


def test_access_token_in_the_url_is_refused_and_points_to_stream_url(client, job):
    url = f"/api/v1/sse/jobs/character/{job['jobId']}?token={make_token('alice')}"
    response = client.get(url)
    assert response.status_code == 401
    assert "streamUrl" in response.get_json()["error"]["message"]
    assert client.get(f"/api/v1/jobs/character/{job['jobId']}?token={make_token('alice')}").status_code == 401


def test_stream_token_is_job_scoped_and_read_only(client, auth, job):
    other = client.post(CHAR, json={"name": "B", "age": 2}, headers=auth()).get_json()["data"]
    stream_token = job["streamUrl"].split("token=")[1]
    # for another job's stream: refused
    assert client.get(f"/api/v1/sse/jobs/character/{other['jobId']}?token={stream_token}").status_code == 401
    # as an access token in a header, on any route: refused
    bearer = {"Authorization": f"Bearer {stream_token}"}
    assert client.get(f"/api/v1/jobs/character/{job['jobId']}", headers=bearer).status_code == 401
    assert client.post(f"/api/v1/jobs/character/{job['jobId']}/cancel", headers=bearer).status_code == 401
    assert client.post(CHAR, json={"name": "A", "age": 1}, headers=bearer).status_code == 401


def test_expired_stream_token_is_401(client, app, job):
    from jobapp.auth import job_scope, mint_stream_token
    with app.app_context():
        token = mint_stream_token("alice", job_scope("character", job["jobId"]), -5)
    response = client.get(f"/api/v1/sse/jobs/character/{job['jobId']}?token={token}")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "token_expired"


def test_production_refuses_the_development_secret():
    with pytest.raises(ConfigError):
        Config.from_env({"JOBAPP_ENV": "production"})
    with pytest.raises(ConfigError):
        Config.from_env({"JOBAPP_ENV": "production", "JWT_SECRET_KEY": "short"})
    assert Config.from_env({"JOBAPP_ENV": "production", "JWT_SECRET_KEY": "s" * 40}).production


def test_config_reads_and_validates_the_environment():
    config = Config.from_env({"PORT": "9000", "CORS_ORIGINS": "http://a.test, http://b.test",
                              "REDIS_TLS_VERIFY": "false", "SSE_HEARTBEAT_SECONDS": "2.5"})
    assert config.PORT == 9000 and config.CORS_ORIGINS == ["http://a.test", "http://b.test"]
    assert config.REDIS_TLS_VERIFY is False and config.SSE_HEARTBEAT_SECONDS == 2.5
    for bad in ({"PORT": "eighty"}, {"REDIS_URL": "http://x"}, {"WATCHER": "magic"}, {"REDIS_TLS_VERIFY": "maybe"}):
        with pytest.raises(ConfigError):
            Config.from_env(bad)


def test_rediss_urls_can_skip_certificate_verification():
    from jobapp.dashboard import dashboard_redis_url
    from jobapp.extensions import connect
    config = Config.from_env({"REDIS_URL": "rediss://:pw@redis.example:6380/0", "REDIS_TLS_VERIFY": "false"})
    kwargs = connect(config).connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "none"
    assert "ssl_cert_reqs=none" in dashboard_redis_url(config)
    verified = connect(Config.from_env({"REDIS_URL": "rediss://redis.example:6380/0"}))
    assert verified.connection_pool.connection_kwargs.get("ssl_cert_reqs", "required") == "required"


def test_cli_mints_a_token_the_api_accepts(app, client):
    result = app.test_cli_runner().invoke(args=["token", "dave"])
    token = result.output.strip()
    assert pyjwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "dave"
    assert client.post(CHAR, json={"name": "A", "age": 1}, headers={"Authorization": f"Bearer {token}"}).status_code == 202


def test_stream_tokens_are_the_tokens_pyjwt_makes():
    """``mint_stream_token`` signs with the standard library; the token is PyJWT's own, byte for byte."""
    import jwt as pyjwt

    from jobapp.auth import STREAM_AUDIENCE, mint_stream_token

    secret = "a-test-secret-of-more-than-32-characters"
    token = mint_stream_token("ünïcode user", "job:character:0b82c9d3-693b-4951-aa71-e3cdbfc2dba4", 60, secret=secret)
    claims = pyjwt.decode(token, secret, algorithms=["HS256"], audience=STREAM_AUDIENCE)
    assert claims["sub"] == "ünïcode user" and claims["exp"] - claims["iat"] == 60
    assert pyjwt.encode(claims, secret, algorithm="HS256") == token
    assert pyjwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, secret + "x", algorithms=["HS256"], audience=STREAM_AUDIENCE)


def test_an_accepted_token_is_refused_once_it_expires(client):
    """Accepted tokens are remembered (``auth._AcceptedTokens``); expiry still ends them."""
    exp = int(time.time()) + 2
    token = pyjwt.encode({"sub": "dora", "exp": exp}, SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200  # found among the accepted
    while time.time() < exp:  # the moment PyJWT calls it expired
        time.sleep(0.05)
    late = client.get("/api/v1/jobs", headers=headers)
    assert late.status_code == 401 and late.get_json()["error"]["code"] == "token_expired"
    other = pyjwt.encode({"sub": "dora", "exp": exp + 3600}, SECRET + "-other", algorithm="HS256")
    assert client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {other}"}).status_code == 401
