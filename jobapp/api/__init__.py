"""Every blueprint, registered in one place."""

from flask import Flask

from .. import metrics, openapi
from . import health, jobs, queue, results, stream

API_PREFIX = "/api/v1"


def init_app(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(queue.bp, url_prefix=API_PREFIX)
    app.register_blueprint(jobs.bp, url_prefix=API_PREFIX)
    app.register_blueprint(stream.bp, url_prefix=API_PREFIX)
    app.register_blueprint(results.bp, url_prefix=API_PREFIX)
    app.register_blueprint(openapi.bp, url_prefix=API_PREFIX)
