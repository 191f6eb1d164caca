"""rq-dashboard for operators, mounted at /rq behind HTTP basic auth.

Mounted only when ``RQ_DASHBOARD_USERNAME`` and ``RQ_DASHBOARD_PASSWORD`` are both set; it reads
jobs with RQ's JSON serializer like everything else here, over the app's own Redis client (its
bounded pool), so the dashboard adds no connection of its own to the Redis budget.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from flask import Flask, Response, current_app, request
from redis.connection import parse_url

from .config import Config
from .extensions import SERIALIZER

PREFIX = "/rq"


def dashboard_redis_url(config: Config) -> str:
    """rq-dashboard builds its own client from a URL, so the TLS switch travels in the URL.

    With ``REDIS_SENTINELS`` it gets a ``redis+sentinel://`` URL, which rq-dashboard 0.9.0 resolves
    through Sentinel itself (its ``redis-sentinel-url`` dependency); the passwords travel beside it,
    in its own settings, never in the URL its pages show.
    """
    if config.REDIS_SENTINELS:
        db = parse_url(config.REDIS_URL).get("db", 0)
        return f"redis+sentinel://{','.join(config.REDIS_SENTINELS)}/{config.REDIS_SENTINEL_MASTER}/{db}"
    if not (config.REDIS_URL.startswith("rediss://") and not config.REDIS_TLS_VERIFY):
        return config.REDIS_URL
    parts = urlsplit(config.REDIS_URL)
    query = dict(parse_qsl(parts.query), ssl_cert_reqs="none")
    return urlunsplit(parts._replace(query=urlencode(query)))


def init_app(app: Flask, config: Config) -> None:
    if not (config.RQ_DASHBOARD_USERNAME and config.RQ_DASHBOARD_PASSWORD):
        return
    import rq_dashboard
    from rq_dashboard.web import config as dashboard_config, setup_rq_connection

    dashboard_config.serializer = SERIALIZER
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = dashboard_redis_url(config)
    if config.REDIS_SENTINELS:
        app.config["RQ_DASHBOARD_REDIS_PASSWORD"] = parse_url(config.REDIS_URL).get("password")
        app.config["RQ_DASHBOARD_REDIS_SENTINEL_PASSWORD"] = config.REDIS_SENTINEL_PASSWORD
    bp = rq_dashboard.blueprint

    @bp.before_request
    def _basic_auth():
        auth = request.authorization
        ok = auth is not None and auth.type == "basic" and \
            hmac.compare_digest(auth.username or "", config.RQ_DASHBOARD_USERNAME) and \
            hmac.compare_digest(auth.password or "", config.RQ_DASHBOARD_PASSWORD)
        if not ok:
            return Response("Authentication required", 401, {"WWW-Authenticate": 'Basic realm="rq-dashboard"'})
        return None

    @bp.before_request
    def _shared_client():
        # rq-dashboard builds a client of its own per request (lazily: no connection until used);
        # hand it the app's instead, so its queries share the bounded pool.
        current_app.redis_conn = current_app.extensions["jobapp.redis"]

    with app.app_context():
        setup_rq_connection(app)
    app.redis_conn = app.extensions["jobapp.redis"]
    app.register_blueprint(bp, url_prefix=PREFIX)
