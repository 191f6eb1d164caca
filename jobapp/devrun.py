"""``make run``: a private Redis unless REDIS_URL is set, a ready token and curl lines, then web + worker."""

from __future__ import annotations

import os
import subprocess
import sys

from .config import DEV_SECRET


def main() -> int:
    env = dict(os.environ)
    # The Procfile's `gunicorn` and `python` must be this virtualenv's.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("PORT", "8088")
    env.setdefault("JWT_SECRET_KEY", DEV_SECRET)
    server = None
    if not env.get("REDIS_URL"):
        from .devredis import RedisServer
        server = RedisServer().start()
        env["REDIS_URL"] = server.url
        print(f"* started a private redis-server at {server.url} (set REDIS_URL to use your own)")
    os.environ.update(env)
    from . import create_app
    from .auth import mint_access_token
    with create_app().app_context():
        token = mint_access_token("alice")
    base = f"http://localhost:{env['PORT']}"
    print(f"""
* jobapp on {base}  (token for user 'alice', valid 24 h; more: .venv/bin/flask --app wsgi token <user>)

  export TOKEN={token}

  # queue a character
  curl -s -X POST {base}/api/v1/characters/queue -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"name": "Aria", "age": 27}}'

  # stream it (put the jobId from the answer above in JOB)
  curl -N {base}/api/v1/sse/jobs/character/$JOB -H "Authorization: Bearer $TOKEN"
""", flush=True)
    try:
        return subprocess.call([sys.executable, "-m", "honcho", "start", "-f", "Procfile", "-p", env["PORT"]], env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
