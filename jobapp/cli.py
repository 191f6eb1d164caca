"""Flask CLI commands: ``flask --app wsgi token <user-id>`` mints an access token; ``watch`` follows a job."""

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

    app.cli.add_command(watchcli.watch)
