"""Every blueprint, registered in one place (the job types' routes from the registry loaded now)."""

from flask import Flask

from .. import metrics, openapi, registry
from . import health, jobs, queue, results, stream, types

API_PREFIX = "/api/v1"


def init_app(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(queue.make_blueprint(), url_prefix=API_PREFIX)
    app.register_blueprint(jobs.bp, url_prefix=API_PREFIX)
    app.register_blueprint(stream.bp, url_prefix=API_PREFIX)
    app.register_blueprint(results.bp, url_prefix=API_PREFIX)
    app.register_blueprint(types.bp, url_prefix=API_PREFIX)
    app.register_blueprint(openapi.bp, url_prefix=API_PREFIX)
    for blueprint in registry.blueprints():  # routes of the job modules themselves (the demo's characters)
        app.register_blueprint(blueprint, url_prefix=API_PREFIX)
