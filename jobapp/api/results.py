"""What the jobs made: a character profile, a media file — each to its owner only."""

import json
import re

from flask import Blueprint, Response, jsonify

from .. import auth, keys
from ..errors import not_found
from ..extensions import redis_client

bp = Blueprint("results", __name__)

_ARTIFACT_ID = re.compile(r"^[0-9a-f]{32}$")


# Artifact ids are 32 hex characters; the length keeps these GET routes off ``/characters/queue`` and
# ``/media/queue``, so a GET there answers 405 (POST only) rather than "not found".
@bp.get("/characters/<string(length=32):character_id>")
def character(character_id: str):
    caller = auth.current_caller()
    raw = redis_client.connection.get(keys.character(character_id)) if _ARTIFACT_ID.match(character_id) else None
    stored = json.loads(raw) if raw else None
    if stored is None or stored["owner"] != caller.user_id:
        raise not_found("Character not found")
    return jsonify({"data": stored["character"]})


@bp.get("/media/<string(length=32):media_id>")
def media(media_id: str):
    caller = auth.current_caller()
    fields = redis_client.connection.hmget(keys.media(media_id), "owner", "contentType", "data") \
        if _ARTIFACT_ID.match(media_id) else [None, None, None]
    owner, content_type, data = fields
    if owner is None or owner.decode() != caller.user_id:
        raise not_found("Media not found")
    return Response(data, mimetype=content_type.decode(), headers={"Cache-Control": "private, max-age=3600"})
