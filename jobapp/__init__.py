"""jobapp: queue slow work on RQ and stream its progress to browsers over Server-Sent Events."""

from __future__ import annotations

from typing import Optional

from flask import Flask

from .config import Config


def create_app(config: Optional[Config] = None) -> Flask:
    """Build the web app: settings, extensions, error handlers and blueprints, wired in one place."""
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config.update(config.flask_settings())
    app.config["JOBAPP"] = config

    from . import auth, cli, dashboard, errors, logs, pages
    from . import ratelimit
    from .extensions import cors, jwt, redis_client
    from .streamcap import StreamCap
    from .watch import make_watcher

    logs.init_app(app)
    redis_client.init_app(app, config)
    jwt.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": config.CORS_ORIGINS}},
                  allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "Accept"],
                  methods=["GET", "POST", "OPTIONS"], max_age=600)
    ratelimit.init_app(app, config.RATE_LIMIT_QUEUE, app.extensions["jobapp.redis"])
    app.extensions["jobapp.watcher"] = make_watcher(config, app.extensions["jobapp.redis"])
    app.extensions["jobapp.streamcap"] = StreamCap(app.extensions["jobapp.redis"], config.MAX_STREAMS_PER_USER)
    errors.init_app(app)
    auth.init_app(app)

    from . import api
    api.init_app(app)
    app.register_blueprint(pages.bp)
    dashboard.init_app(app, config)
    cli.init_app(app)
    return app
