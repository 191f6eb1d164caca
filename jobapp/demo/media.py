"""The media job: renders a file for a character — a PNG portrait, a WAV theme or a GIF animation."""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import wave

from PIL import Image, ImageDraw
from rq import get_current_job

from jobapp import JobFailed, job_type, progress, store_file

from .. import keys
from .pacing import pause
from .schemas import MediaRequest

CONTENT_TYPES = {"image": "image/png", "audio": "audio/wav", "video": "image/gif"}


@job_type("media", schema=MediaRequest, describe=lambda p: f"Render {p['kind']} for character {p['characterId']}")
def render_media(owner: str, params: dict) -> dict:
    """Render ``params['kind']`` for the owner's character ``params['characterId']``."""
    job = get_current_job()
    connection = job.connection
    progress.report(5, "load", "Loading character")
    raw = connection.get(keys.character(_character_id(job, params["characterId"])))
    stored = json.loads(raw) if raw else None
    if stored is None or stored["owner"] != owner:
        raise JobFailed("Character not found")
    character = stored["character"]
    pause()

    progress.report(35, "compose", f"Composing {params['kind']}")
    palette = _palette(character)
    pause()

    progress.report(65, "render", f"Rendering {params['kind']}")
    kind = params["kind"]
    data = {"image": _portrait, "audio": _theme, "video": _animation}[kind](character, palette)
    pause()

    progress.report(90, "save", "Saving file")
    url = store_file(data, CONTENT_TYPES[kind])  # owner-only, kept ARTIFACT_TTL
    return {"mediaId": url.rsplit("/", 1)[-1], "characterId": character["id"], "kind": kind,
            "contentType": CONTENT_TYPES[kind], "bytes": len(data), "url": url}


def _character_id(job, given: str) -> str:
    """``given``, or (queued with ``dependsOn`` while its character was being made) the character the
    ``character`` job named ``given`` made: RQ's own idiom, the dependency's return value."""
    if given in job.dependency_ids:
        for dependency in job.fetch_dependencies():
            if dependency.id == given and isinstance(dependency.return_value(), dict):
                return dependency.return_value().get("characterId", given)
    return given


def _palette(character: dict) -> list[tuple[int, int, int]]:
    """Three colours derived from the character's traits, so the same character looks the same."""
    digest = hashlib.sha256(("|".join(character["traits"]) + character["species"]).encode()).digest()
    return [tuple(digest[i:i + 3]) for i in (0, 3, 6)]


def _face(draw: ImageDraw.ImageDraw, size: int, character: dict, palette, blink: bool = False) -> None:
    bg, skin, accent = palette
    s = size
    draw.rectangle([0, 0, s, s], fill=bg)
    draw.ellipse([s * .2, s * .15, s * .8, s * .85], fill=tuple(min(255, c + 80) for c in skin), outline=accent, width=3)
    eye_h = 2 if blink else s * .05
    for x in (.38, .62):
        draw.ellipse([s * x - s * .05, s * .42 - eye_h, s * x + s * .05, s * .42 + eye_h], fill=(20, 20, 30))
    mood = character["stats"]["charisma"] - 10
    draw.arc([s * .35, s * .5 - mood, s * .65, s * .7 + mood], 20, 160, fill=accent, width=4)
    draw.text((s * .05, s * .9), character["name"][:24], fill=(255, 255, 255))


def _portrait(character: dict, palette) -> bytes:
    image = Image.new("RGB", (256, 256))
    _face(ImageDraw.Draw(image), 256, character, palette)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _animation(character: dict, palette) -> bytes:
    frames = []
    for i in range(8):
        frame = Image.new("RGB", (128, 128))
        _face(ImageDraw.Draw(frame), 128, character, palette, blink=(i == 5))
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    return out.getvalue()


def _theme(character: dict, palette, rate: int = 16000) -> bytes:
    """A two-second melody whose notes come from the character's stats."""
    notes = [220 * 2 ** (v / 12) for v in character["stats"].values()]
    samples = bytearray()
    for index in range(rate * 2):
        freq = notes[(index * len(notes)) // (rate * 2)]
        samples += struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * index / rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(samples))
    return out.getvalue()
