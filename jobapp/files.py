"""Files as job results: stored owner-only with the artifact TTL, served at ``/api/v1/files/<id>``.

A job that makes a file (a report, an export, an image) calls ``store_file(data, content_type)``
inside the job and puts the returned URL in its result; only the job's owner can fetch it, until
``ARTIFACT_TTL`` runs out.
"""

from __future__ import annotations

import re
import uuid
from typing import Optional

import redis
from rq import get_current_job

from . import keys
from .config import settings

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
                           r"(\s*;\s*[A-Za-z0-9_-]+=[A-Za-z0-9_.-]+)?$")
URL_PREFIX = "/api/v1/files/"


def store_file(data: bytes, content_type: str, filename: Optional[str] = None, *, owner: Optional[str] = None,
               ttl: Optional[int] = None, connection: Optional[redis.Redis] = None) -> str:
    """Store ``data`` for the running job's owner and return its URL (put it in the job's result).

    ``filename`` makes browsers download it under that name. Outside a job pass ``owner`` and
    ``connection``. It lives ``ARTIFACT_TTL`` seconds unless ``ttl`` says otherwise.
    """
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("store_file() takes bytes (or str, stored as UTF-8)")
    if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
        raise ValueError(f"store_file(): {content_type!r} is not a content type like 'text/csv'")
    job = get_current_job()
    if owner is None:
        if job is None or "owner" not in job.meta:
            raise RuntimeError("store_file() outside a jobapp job needs owner= (and connection=)")
        owner = job.meta["owner"]
    connection = connection or (job.connection if job is not None else None)
    if connection is None:
        raise RuntimeError("store_file() outside a job needs connection=")
    file_id = uuid.uuid4().hex
    mapping = {"owner": owner, "contentType": content_type, "data": bytes(data), "size": len(data)}
    if filename:
        mapping["filename"] = re.sub(r'[\x00-\x1f"\\/]', "_", filename)[:200]
    if job is not None:
        mapping["jobId"] = job.id
    key = keys.file(file_id)
    with connection.pipeline() as pipe:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl or settings().ARTIFACT_TTL)
        pipe.execute()
    return URL_PREFIX + file_id


def read_file(connection: redis.Redis, file_id: str, owner: str) -> Optional[dict]:
    """The file ``file_id`` if ``owner`` owns it (``contentType``, ``data``, ``filename``), else None."""
    if not FILE_ID.match(file_id):
        return None
    owner_raw, content_type, data, filename = connection.hmget(keys.file(file_id), "owner", "contentType", "data",
                                                                "filename")
    if owner_raw is None or owner_raw.decode() != owner:
        return None
    return {"contentType": content_type.decode(), "data": data, "filename": filename.decode() if filename else None}
