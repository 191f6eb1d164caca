"""The live page at ``/`` and the files it loads; in development, a token for a chosen user id."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_from_directory

from . import auth
from .errors import ApiError, not_found

bp = Blueprint("pages", __name__)

# The repository's client/ folder; an installed jobapp carries it as the package data jobapp/client.
CLIENT_DIR = next((d for d in (Path(__file__).resolve().parent.parent / "client",
                               Path(__file__).resolve().parent / "client") if (d / "jobapp-client.js").exists()),
                  Path(__file__).resolve().parent.parent / "client")
STATIC_DIR = Path(__file__).resolve().parent / "static"
_USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@bp.get("/")
def index():
    return send_from_directory(STATIC_DIR, "index.html", max_age=0)


@bp.get("/client/<path:name>")
def client_file(name: str):
    """The JavaScript client, served as-is from the repository's client/ folder."""
    return send_from_directory(CLIENT_DIR, name, max_age=0)


@bp.post("/dev/token")
def dev_token():
    """Development only: an access token for any user id, so the live page works without an issuer."""
    if current_app.config["JOBAPP"].production:
        raise not_found()
    body = request.get_json(silent=True)
    user_id = body.get("userId") if isinstance(body, dict) else None
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise ApiError(400, "userId: 1-64 letters, digits or . _ @ -", code="validation_error",
                       fields={"userId": "invalid"})
    return jsonify({"data": {"token": auth.mint_access_token(user_id, 3600), "userId": user_id}})


@bp.get("/dev/config")
def dev_config():
    """Tells the page whether the development token route is there (only in development)."""
    if current_app.config["JOBAPP"].production:
        raise not_found()
    return jsonify({"data": {"devTokens": not current_app.config["JOBAPP"].production}})
