"""The demo job types: characters and media rendered for them (``JOBAPP_JOBS=jobapp.demo``, the default).

They register through the public API exactly as a team's own package does; ``blueprint`` adds
the one route of their own, ``GET /api/v1/characters/<characterId>``.
"""

from . import character, media  # noqa: F401 - importing registers the job types
from .routes import blueprint

__all__ = ["blueprint"]
