"""Flask CLI commands: ``token <user-id>`` mints an access token; ``queue <type> --user <id> '<json>'`` queues a job;
``watch <type> <jobId> --user <id>`` follows one."""

import json

import click
from flask import Flask

from . import auth, watchcli


def init_app(app: Flask) -> None:
    @app.cli.command("token")
    @click.argument("user_id")
    @click.option("--ttl", default=86400, show_default=True, help="Seconds until the token expires.")
    def token(user_id: str, ttl: int) -> None:
        """Print an access token for USER_ID, signed with JWT_SECRET_KEY."""
        click.echo(auth.mint_access_token(user_id, ttl))

    @app.cli.command("queue")
    @click.argument("job_type")
    @click.argument("params", default="{}")
    @click.option("--user", "user_id", required=True, help="The user who owns the job (and may watch it).")
    def queue(job_type: str, params: str, user_id: str) -> None:
        """Queue a JOB_TYPE job with PARAMS (a JSON object) for --user; print the queue answer's data as JSON,
        with the streamUrl a browser or `curl -N` can watch."""
        from .exceptions import InvalidParams, UnknownJobType
        from .queueing import enqueue

        try:
            body = json.loads(params)
        except ValueError as exc:
            raise click.ClickException(f"PARAMS is not valid JSON: {exc}") from None
        try:
            data = enqueue(job_type, body, user_id)
        except InvalidParams as exc:
            fields = "".join(f"\n  {name}: {message}" for name, message in exc.fields.items())
            raise click.ClickException(f"invalid params for {job_type!r}: {exc.message}{fields}") from None
        except UnknownJobType as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(data))

    app.cli.add_command(watchcli.watch)
