"""app.json (Heroku's app manifest) agrees with the Procfile and declares what production needs.

No Heroku here: the checks read app.json as Heroku would and start the app's own settings from it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import fields

import pytest

from jobapp.config import Config, ConfigError

from .support import ROOT

MANIFEST = json.loads((ROOT / "app.json").read_text())
#: Read by gunicorn.conf.py (the web process), not by Config.
GUNICORN_VARIABLES = {"PORT", "WEB_CONCURRENCY", "GUNICORN_WORKER_CONNECTIONS", "GUNICORN_GRACEFUL_TIMEOUT",
                      "PROMETHEUS_MULTIPROC_DIR"}


def procfile_types() -> set[str]:
    return {line.split(":", 1)[0].strip() for line in (ROOT / "Procfile").read_text().splitlines()
            if re.match(r"^[a-z][a-z0-9_-]*:", line)}


def heroku_environment() -> dict[str, str]:
    """The environment a review app gets: fixed values, generated secrets, the Redis add-on's URL."""
    env = {}
    for name, spec in MANIFEST["env"].items():
        if spec.get("generator") == "secret":
            env[name] = secrets.token_hex(32)  # what Heroku's "secret" generator makes: 64 hex characters
        elif "value" in spec:
            env[name] = spec["value"]
    for addon in MANIFEST["addons"]:
        if addon["plan"].startswith("heroku-redis"):
            env[f"{addon.get('as', 'REDIS')}_URL"] = "rediss://:p@ec2-1-2-3-4.compute-1.amazonaws.com:12345"
    return env


def test_formation_is_the_procfile_s_process_types():
    assert set(MANIFEST["formation"]) == procfile_types() == {"web", "worker"}
    assert all(spec["quantity"] >= 1 for spec in MANIFEST["formation"].values())


def test_production_settings_start_from_the_manifest_alone():
    env = heroku_environment()
    assert env["JOBAPP_ENV"] == "production"
    assert MANIFEST["env"]["JWT_SECRET_KEY"].get("generator") == "secret"
    config = Config.from_env(env)  # raises ConfigError on anything production refuses
    assert config.production and config.REDIS_URL.startswith("rediss://") and not config.REDIS_TLS_VERIFY


def test_production_refuses_to_start_without_the_generated_secret():
    env = heroku_environment()
    del env["JWT_SECRET_KEY"]
    with pytest.raises(ConfigError):
        Config.from_env(env)


def test_the_redis_add_on_provides_redis_url():
    """Config's REDIS_URL default is a local Redis, which a dyno does not have: the add-on must set it."""
    assert any(addon["plan"].startswith("heroku-redis") and addon.get("as", "REDIS") == "REDIS"
               for addon in MANIFEST["addons"])
    assert "REDIS_URL" not in MANIFEST["env"], "the add-on sets REDIS_URL; declaring it too would shadow it"


def test_every_declared_variable_is_a_real_setting_and_documented():
    settings = {f.name for f in fields(Config)} | GUNICORN_VARIABLES
    readme = (ROOT / "README.md").read_text()
    for name in MANIFEST["env"]:
        assert name in settings, f"app.json declares {name}, which nothing reads"
        assert f"`{name}`" in readme, f"{name} is not in the README"


def test_python_version_matches_the_runtime_the_project_needs():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), "Heroku reads a major version such as 3.11"
    assert tuple(map(int, version.split("."))) >= (3, 11)
