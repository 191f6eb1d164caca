"""Identity: access tokens (verified, never issued for users), stream tokens, the current user.

Access tokens are plain HS256 JWTs from any issuer with ``sub`` and ``exp``; flask-jwt-extended
verifies them. Stream tokens are minted here for one job (or one user's job list), carry the
audience ``jobapp:stream`` so they can never pass as an access token, and are the only tokens
accepted in a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import jwt as pyjwt
from flask import current_app, request
from flask_jwt_extended import create_access_token

from .errors import ApiError, error_response
from .extensions import jwt

STREAM_AUDIENCE = "jobapp:stream"
#: The scope of a stream token for the caller's many-jobs stream (``/api/v1/sse/jobs``).
USER_SCOPE = "user"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Caller:
    """Who is asking, and until when their token lets them."""

    user_id: str
    expires_at: Optional[float]  # epoch seconds, None when the token has no exp


def init_app(app) -> None:
    """Make every auth failure of flask-jwt-extended a JSON 401 in the contract's shape."""

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return error_response(401, "Missing token: send 'Authorization: Bearer <token>'")

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return error_response(401, f"Invalid token: {reason}")

    @jwt.expired_token_loader
    def _expired(header, data):
        return error_response(401, "Token has expired", code="token_expired")

    @jwt.token_verification_loader
    def _not_a_stream_token(header, data) -> bool:
        audience = data.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        return STREAM_AUDIENCE not in audiences

    @jwt.token_verification_failed_loader
    def _failed(header, data):
        return error_response(401, "Stream tokens are read-only and valid only in their streamUrl")


def current_caller() -> Caller:
    """The caller of an ordinary API route: a valid access token in the Authorization header."""
    if request.args.get("token") is not None:
        raise ApiError(401, "Tokens are not accepted in the URL on this route; send 'Authorization: Bearer <token>'")
    return _access_token_caller()


def stream_caller(scope: str) -> Caller:
    """The caller of an SSE route: a Bearer access token, or a stream token for ``scope`` in ``?token=``.

    ``scope`` names what the stream shows: ``job:<type>:<id>`` or ``user``.
    """
    token = request.args.get("token")
    if token is None or request.headers.get("Authorization"):
        return _access_token_caller()  # the header wins; a URL token beside it is ignored
    try:
        claims = pyjwt.decode(
            token, current_app.config["JWT_SECRET_KEY"], algorithms=[ALGORITHM],
            audience=STREAM_AUDIENCE, options={"require": ["exp", "sub", "aud"]},
        )
    except pyjwt.ExpiredSignatureError:
        raise ApiError(401, "Stream token has expired; fetch a fresh streamUrl", code="token_expired") from None
    except (pyjwt.InvalidAudienceError, pyjwt.MissingRequiredClaimError):
        raise ApiError(401, "Access tokens are not accepted in URLs; open the streamUrl from the queue "
                            "or snapshot answer, or send 'Authorization: Bearer <token>'") from None
    except pyjwt.InvalidTokenError as exc:
        raise ApiError(401, f"Invalid stream token: {exc}") from None
    if claims.get("scope") != scope:
        raise ApiError(401, "This stream token is for another stream")
    return Caller(str(claims["sub"]), claims["exp"])


def _access_token_caller() -> Caller:
    """Verify the Bearer access token in the Authorization header, decoding it once (PyJWT).

    The same rules and answers as flask-jwt-extended's ``verify_jwt_in_request`` (which decoded
    every token twice and parsed its header a third time): HS256 only, ``sub`` required, ``exp``
    and ``nbf`` checked when present, stream tokens and refresh tokens refused.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing token: send 'Authorization: Bearer <token>'")
    secret = current_app.config["JWT_SECRET_KEY"]
    accepted = _accepted.get(secret, token)
    if accepted is not None:
        return accepted
    try:
        claims = pyjwt.decode(token, secret, algorithms=[ALGORITHM],
                              options={"require": ["sub"], "verify_aud": False})
    except pyjwt.ExpiredSignatureError:
        raise ApiError(401, "Token has expired", code="token_expired") from None
    except pyjwt.InvalidTokenError as exc:
        raise ApiError(401, f"Invalid token: {exc}") from None
    audience = claims.get("aud")
    if STREAM_AUDIENCE in (audience if isinstance(audience, list) else [audience]):
        raise ApiError(401, "Stream tokens are read-only and valid only in their streamUrl")
    if claims.get("type", "access") != "access":
        raise ApiError(401, "Invalid token: only access tokens are accepted")
    caller = Caller(str(claims["sub"]), claims.get("exp"))
    _accepted.put(secret, token, caller)
    return caller


class _AcceptedTokens:
    """Access tokens this process verified and accepted, newest ``size`` of them, with their caller.

    A client sends the same token with every request until it expires, and verifying it again
    (PyJWT: two base64 and JSON decodes, the key's checks, the HMAC, the claims) was 3 % of a queue
    request's CPU. A token is found only by its exact text under the same secret; a hit checks
    ``exp`` again (the only claim whose verdict changes with time once ``nbf`` has passed), and an
    expired one is dropped and verified in full, which answers 401 as before.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Caller] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, secret: str, token: str) -> Optional[Caller]:
        key = (secret, token)
        with self._lock:
            caller = self._items.get(key)
            if caller is None:
                return None
            if caller.expires_at is not None and time.time() >= caller.expires_at:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return caller

    def put(self, secret: str, token: str, caller: Caller) -> None:
        with self._lock:
            self._items[(secret, token)] = caller
            if len(self._items) > self.size:
                self._items.popitem(last=False)


_accepted = _AcceptedTokens()


def job_scope(job_type: str, job_id: str) -> str:
    return f"job:{job_type}:{job_id}"


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


#: The JOSE header PyJWT writes for HS256 (sorted keys, no spaces), encoded once.
_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


def mint_stream_token(user_id: str, scope: str, ttl_seconds: int, secret: Optional[str] = None) -> str:
    """A read-only token for one stream, valid for ``ttl_seconds`` (``secret``: outside a Flask app).

    Byte for byte the token ``pyjwt.encode(claims, secret, "HS256")`` makes (tests/test_auth.py checks
    it), signed here with the standard library at a third of the cost: every queue answer carries one.
    PyJWT verifies it (``stream_caller``)."""
    now = int(time.time())
    claims = {"sub": user_id, "aud": STREAM_AUDIENCE, "scope": scope, "iat": now, "exp": now + int(ttl_seconds)}
    signing_input = _HEADER + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    key = (secret or current_app.config["JWT_SECRET_KEY"]).encode()
    return (signing_input + b"." + _b64(hmac.new(key, signing_input, hashlib.sha256).digest())).decode()


def mint_access_token(user_id: str, ttl_seconds: int = 86400) -> str:
    """An access token for ``user_id`` (for development and the ``token`` CLI command)."""
    return create_access_token(identity=user_id, expires_delta=timedelta(seconds=ttl_seconds))
