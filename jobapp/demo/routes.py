"""The demo's own route: a character profile the character job made, to its owner only."""

import json
import re

from flask import Blueprint, jsonify

from .. import auth, keys
from ..errors import not_found
from ..extensions import redis_client

blueprint = Blueprint("demo", __name__)

_ARTIFACT_ID = re.compile(r"^[0-9a-f]{32}$")


# 32 hex characters: the length keeps this GET off /characters/queue, which then answers 405 (POST only).
@blueprint.get("/characters/<string(length=32):character_id>")
def character(character_id: str):
    caller = auth.current_caller()
    raw = redis_client.connection.get(keys.character(character_id)) if _ARTIFACT_ID.match(character_id) else None
    stored = json.loads(raw) if raw else None
    if stored is None or stored["owner"] != caller.user_id:
        raise not_found("Character not found")
    return jsonify({"data": stored["character"]})
