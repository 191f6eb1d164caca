"""jobapp: queue slow work on RQ and stream its progress to browsers over Server-Sent Events.

The public surface a team's own code uses is exactly what this module exports:

- ``job_type``: register a function as a job type (``JOBAPP_JOBS`` lists the modules that do);
- ``progress``: ``progress.report(pct, stage, message)`` and ``progress.track(iterable)`` inside a job
  (RQ's own ``job.meta[...] = ...; job.save_meta()`` streams as well), and ``progress.log(line, ...)``
  for lines of the job's own log its user sees on the stream;
- ``store_file``: keep a file a job made, owner-only, and get the URL to put in its result;
- ``enqueue``: queue a job from a view, a script or a cron job, and get its ``streamUrl``
  (``depends_on=[job ids]`` or ``run_at=datetime`` to make it wait);
- ``JobFailed``: raise it to fail a job with a reason the user sees; ``InvalidParams``: what
  ``enqueue`` raises for bad params (``.fields``).

Everything else is internal and free to change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from flask import Flask

    from . import progress
    from .config import Config
    from .exceptions import InvalidParams, JobFailed, UnknownJobType
    from .files import store_file
    from .queueing import enqueue
    from .registry import job_type

#: Public name -> the module that defines it. Imported on first use (PEP 562), so ``import jobapp``
#: stays light: gunicorn imports it for its log formatter before gevent patches the standard library.
_PUBLIC = {"job_type": ".registry", "enqueue": ".queueing", "store_file": ".files", "JobFailed": ".exceptions",
           "InvalidParams": ".exceptions", "UnknownJobType": ".exceptions", "progress": None}

__all__ = [*_PUBLIC, "create_app"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'jobapp' has no attribute {name!r}")
    module = _PUBLIC[name]
    value = importlib.import_module(f"{__name__}.{name}") if module is None else \
        getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def create_app(config: Optional["Config"] = None) -> "Flask":
    """Build the web app: job types, settings, extensions, error handlers and blueprints, wired in one place.

    Loads the job types of ``JOBAPP_JOBS`` first; a module that cannot be imported, a clash, or a
    function RQ could not import raises ``RegistryError`` and nothing starts.
    """
    from flask import Flask

    from . import registry
    from .config import Config

    config = config or Config.from_env()
    registry.load(config.JOBAPP_JOBS)
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
    # The limiter counts through the app's own pool: its breaker, its timeouts, its Sentinel.
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
    api.health.warn_if_evicting(app.extensions["jobapp.redis"])
    return app
