"""Files jobs stored as their results (``jobapp.store_file``), each to its owner only."""

from urllib.parse import quote

from flask import Blueprint, Response

from .. import auth
from ..errors import not_found
from ..extensions import redis_client
from ..files import read_file

bp = Blueprint("results", __name__)


@bp.get("/files/<file_id>")
def file(file_id: str):
    caller = auth.current_caller()
    stored = read_file(redis_client.connection, file_id, caller.user_id)
    if stored is None:
        raise not_found("File not found")
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if stored["filename"]:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(stored['filename'])}"
    return Response(stored["data"], mimetype=stored["contentType"], headers=headers)
