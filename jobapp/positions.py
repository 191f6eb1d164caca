"""A pending job's place in line: its 1-based index in its RQ queue (1 = the next one a worker takes).

RQ pushes jobs on the right of ``rq:queue:<name>`` and workers pop from the left, so the place
is the list index + 1. RQ's ``get_position()`` runs ``LPOS`` per job, a scan of the queue each
time; for many watched jobs one ``LRANGE`` of the queue answers them all (see bench/README.md,
"Place in line"). ``find`` picks per queue: ``LPOS`` for a few jobs, one ``LRANGE`` for more.
"""

from __future__ import annotations

from typing import Iterable, Optional

import redis
from rq.queue import Queue

from . import state

#: Up to this many jobs of one queue are looked up with LPOS each; more share one LRANGE
#: (the crossover measured by bench/position.py is about 200, whatever the queue's length).
LPOS_UP_TO = 200
#: A queue this short is read whole (one small reply) whatever the number of jobs looked up in it.
SHORT_QUEUE = 500


def queue_key(queue: str) -> str:
    return Queue.redis_queue_namespace_prefix + queue


def find(connection: redis.Redis, by_queue: dict[str, Iterable[str]],
         lengths: Optional[dict[str, int]] = None) -> dict[str, int]:
    """``{queue: [job ids]}`` -> ``{job id: place}`` for the jobs found waiting in their queue.

    ``lengths`` (queue lengths just read, as ``marks`` gives them): a queue of at most
    ``SHORT_QUEUE`` jobs is read whole, one command, rather than one ``LPOS`` per job."""
    lengths = lengths or {}
    plan = [(queue, list(ids), len(ids) <= LPOS_UP_TO and lengths.get(queue, SHORT_QUEUE + 1) > SHORT_QUEUE)
            for queue, ids in by_queue.items() if ids]
    if not plan:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for queue, ids, one_by_one in plan:
            if one_by_one:
                for job_id in ids:
                    pipe.lpos(queue_key(queue), job_id)
            elif len(ids) <= LPOS_UP_TO:  # a short queue: bounded, in case it grew since its length was read
                pipe.lrange(queue_key(queue), 0, 2 * SHORT_QUEUE - 1)
            else:
                pipe.lrange(queue_key(queue), 0, -1)
        replies = iter(pipe.execute())
    found: dict[str, int] = {}
    for queue, ids, one_by_one in plan:
        if one_by_one:
            for job_id in ids:
                index = next(replies)
                if index is not None:
                    found[job_id] = int(index) + 1
        else:
            wanted = set(ids)
            for index, raw in enumerate(next(replies)):
                job_id = raw.decode()
                if job_id in wanted:
                    found[job_id] = index + 1
    return found


def marks(connection: redis.Redis, queues: Iterable[str]) -> dict[str, tuple[int, Optional[bytes]]]:
    """``{queue: (length, first job id)}`` in one round trip: while neither changes, no job left the
    front and none was put in front, so every waiting job keeps its place (a job removed from the
    middle while another is pushed on the end is the one change it misses: see ``Hub._place``)."""
    names = list(queues)
    with connection.pipeline(transaction=False) as pipe:
        for queue in names:
            pipe.llen(queue_key(queue))
            pipe.lindex(queue_key(queue), 0)
        replies = pipe.execute()
    return {queue: (int(replies[2 * i]), replies[2 * i + 1]) for i, queue in enumerate(names)}


def add_to(connection: redis.Redis, stored: dict) -> dict:
    """``{job id: StoredState}`` -> ``{job id: event}`` with places in line filled in (one round trip)."""
    by_queue: dict[str, list[str]] = {}
    for job_id, record in stored.items():
        if state.in_queue(record.event):
            by_queue.setdefault(record.queue, []).append(job_id)
    places = find(connection, by_queue)
    return {job_id: state.with_position(record.event, places.get(job_id)) for job_id, record in stored.items()}
