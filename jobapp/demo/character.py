"""The character job: builds a character profile in stages and stores it in Redis."""

from __future__ import annotations

import json
import random
import time
import uuid

from rq import get_current_job

from jobapp import job_type, progress
from jobapp.config import settings

from .. import keys
from .pacing import pause
from .schemas import CharacterRequest

SPECIES = ["human", "elf", "dwarf", "orc", "android", "dragonborn", "halfling"]
OCCUPATIONS = ["smuggler", "cartographer", "healer", "bard", "engineer", "knight", "alchemist", "pilot"]
TRAITS = ["brave", "curious", "stubborn", "witty", "loyal", "reckless", "patient", "secretive",
          "cheerful", "cunning", "gentle", "ambitious"]
PLACES = ["a harbour town", "the northern wastes", "a floating city", "a quiet monastery", "the capital's slums"]
EVENTS = ["lost a sibling to a storm", "found a map that should not exist", "broke an ancient oath",
          "won a duel they should have lost", "was raised by travelling players"]
GOALS = ["to find the edge of the world", "to repay an old debt", "to build something that outlasts them",
         "to clear their family's name", "to see every sea"]


@job_type("character", route="characters", schema=CharacterRequest,
          describe=lambda p: f"Create character {p['name']!r} (age {p['age']})")
def create_character(owner: str, params: dict) -> dict:
    """Build the character described by ``params`` for ``owner``; returns ``{"characterId": ...}``."""
    progress.report(5, "validate", "Checking the request")
    rng = random.Random(f"{params['name']}|{params['age']}|{params.get('species')}")
    pause()

    progress.report(30, "traits", "Choosing traits")
    species = params.get("species") or rng.choice(SPECIES)
    occupation = params.get("occupation") or rng.choice(OCCUPATIONS)
    traits = list(params.get("traits") or rng.sample(TRAITS, 3))
    stats = {stat: rng.randint(3, 18) for stat in ("strength", "dexterity", "intellect", "charisma")}
    progress.log(f"Species: {species}; occupation: {occupation}", f"Traits: {', '.join(traits)}",
                 "Stats: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    pause()

    progress.report(60, "backstory", "Writing backstory")
    backstory = (
        f"{params['name']}, a {params['age']}-year-old {species} {occupation} from {rng.choice(PLACES)}, "
        f"{rng.choice(EVENTS)}. {', '.join(traits).capitalize()}, they set out {rng.choice(GOALS)}."
    )
    if params.get("description"):
        backstory += f" {params['description']}"
    progress.log(f"Backstory: {len(backstory.split())} words")
    pause()

    progress.report(85, "save", "Saving character")
    character_id = uuid.uuid4().hex
    character = {
        "id": character_id, "name": params["name"], "age": params["age"], "species": species,
        "occupation": occupation, "traits": traits, "stats": stats, "backstory": backstory,
        "createdAt": int(time.time() * 1000),
    }
    connection = get_current_job().connection
    connection.set(keys.character(character_id), json.dumps({"owner": owner, "character": character}),
                   ex=settings().ARTIFACT_TTL)
    pause(0.5)
    return {"characterId": character_id}
