"""A job's own log for its user: lines a job writes with ``progress.log(...)``, kept in Redis.

Apart from the worker's logging (operators') on purpose: these lines are shown to the job's
owner on the stream, the snapshot (``?log=1``) and the live page.

Storage: a sorted set per job (``keys.job_log``) whose members are ``"<seq>:<line>"`` scored by
the line's **line id**, and a small hash (``keys.job_log_head``) with ``seq`` (lines written so
far), ``u`` (the last line's id) and ``dropped`` (lines removed by ``JOB_LOG_MAX_LINES``). One
Lua script appends (atomic: ids, cap and counters agree), then publishes ``"<job id> <u>"`` on
``keys.LOG_CHANNEL`` so every web process's hub wakes the streams watching that job.

Event ids (the scheme ``streaming.py`` sends, written down here because it starts here):

* a state's id is ``updatedAt * 1000`` (as before); a line's id is an **even** number in the
  same units (epoch microseconds, roughly): ``max(now_us, previous line + 2, state id + 2)``;
* the statestore stamps the next state of a job above the job's last line id, so within a job
  states and lines share one strictly increasing order, the order they were written in;
* a stream never sends a state before the lines below it; events not tied to a write (a state
  replayed on reconnect, a new place in line, a state that reached the stream after newer lines)
  take the next **odd** id above the last one sent, so they never equal a line id;
* so a client holding id ``X`` has every line of that job whose id is ``<= X``: a reconnect is
  sent exactly the lines above ``X``, and a client holding a terminal event (written after every
  line) has every line, which keeps the 204 rule true.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Optional

import redis
from redis.commands.core import Script

from . import keys

#: Lines per ``job_log`` event at most; a longer backlog goes out as several events.
EVENT_MAX_LINES = 200

_APPEND = """
local head = redis.call('HMGET', KEYS[2], 'u', 'seq', 'dropped')
local u = tonumber(head[1] or '0')
local seq = tonumber(head[2] or '0')
local kept = seq - tonumber(head[3] or '0')
local id = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[3])
if raw then
  local ok, stored = pcall(cjson.decode, raw)
  if ok and type(stored) == 'table' and type(stored.event) == 'table' and tonumber(stored.event.updatedAt) then
    id = math.max(id, tonumber(stored.event.updatedAt) * 1000 + 2)
  end
end
id = math.max(id, u + 2)
if id % 2 == 1 then id = id + 1 end
for i = 6, #ARGV do
  seq = seq + 1
  kept = kept + 1
  redis.call('ZADD', KEYS[1], string.format('%.0f', id), seq .. ':' .. ARGV[i])
  u = id
  id = id + 2
end
local max = tonumber(ARGV[2])
if kept > max then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, kept - max - 1)
  kept = max
end
local last = string.format('%.0f', u)
redis.call('HSET', KEYS[2], 'u', last, 'seq', seq, 'dropped', seq - kept)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[5], ARGV[4] .. ' ' .. last)
return {seq, last}
"""

_append = Script(None, _APPEND.encode())  # EVALSHA: the script's text is sent once per server, not per append


@dataclass
class Chunk:
    """Lines of one job read in order, each as ``(line id, seq, text)``; ``dropped`` so far."""

    job_id: str
    lines: list[tuple[int, int, str]]
    dropped: int
    complete: bool  # no more lines after these at the time of reading

    @property
    def last_id(self) -> int:
        return self.lines[-1][0]

    def split(self, line_id: int) -> tuple[Optional["Chunk"], Optional["Chunk"]]:
        """The lines below ``line_id`` and those above it (either may be None)."""
        below = [line for line in self.lines if line[0] < line_id]
        above = [line for line in self.lines if line[0] > line_id]
        return (Chunk(self.job_id, below, self.dropped, self.complete or bool(above)) if below else None,
                Chunk(self.job_id, above, self.dropped, self.complete) if above else None)

    def event(self) -> dict:
        """The ``job_log`` event: ``seq`` is the number of the last line in it, across the whole log."""
        return {"type": "job_log", "jobId": self.job_id, "seq": self.lines[-1][1],
                "lines": [text for _, _, text in self.lines], "dropped": self.dropped}


def clean(line: object, max_chars: int) -> str:
    """One line of text: newlines become spaces (one line stays one line), cut to ``max_chars``."""
    text = str(line).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text if len(text) <= max_chars else text[: max(0, max_chars - 1)] + "…"


def append(connection: redis.Redis, job_id: str, lines: Iterable[object], *, max_lines: int,
           max_chars: int, ttl: int) -> Optional[int]:
    """Append ``lines`` to the job's log; returns the seq of the last one (None when nothing to add)."""
    cleaned = [clean(line, max_chars) for line in lines]
    if not cleaned:
        return None
    now_us = int(time.time() * 1000) * 1000
    seq, _ = _append(keys=[keys.job_log(job_id), keys.job_log_head(job_id), keys.job_state(job_id)],
                     args=[now_us, max_lines, ttl, job_id, keys.LOG_CHANNEL, *cleaned], client=connection)
    return int(seq)


def log(*lines: object) -> Optional[int]:
    """In a running job: append ``lines`` to its log for the user (``progress.log`` is this).

    Each argument is one line; a line longer than ``JOB_LOG_MAX_LINE_CHARS`` is cut, and past
    ``JOB_LOG_MAX_LINES`` the oldest lines are dropped. Returns the last line's number.
    """
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("progress.log() must be called inside an RQ job")
    config = _settings()
    return append(job.connection, job.id, lines, max_lines=config.JOB_LOG_MAX_LINES,
                  max_chars=config.JOB_LOG_MAX_LINE_CHARS, ttl=config.JOB_TIMEOUT + config.JOB_RESULT_TTL)


def _settings():
    from .config import settings
    return settings()


def last_line_id(connection, job_id: str) -> int:
    """The id of the job's last line (0 without a log); ``connection`` may be a pipeline in WATCH mode."""
    raw = connection.hget(keys.job_log_head(job_id), "u")
    return int(raw) if raw else 0


def expire(pipe, job_id: str, ttl: Optional[int]) -> None:
    """Let the log expire with the job's finished state (kept while the job is unfinished)."""
    if ttl:
        pipe.expire(keys.job_log(job_id), ttl)
        pipe.expire(keys.job_log_head(job_id), ttl)


def _score(raw) -> int:
    return int(float(raw))


def _parse(job_id: str, rows: list, head: list, limit: int) -> Optional[Chunk]:
    if not rows:
        return None
    lines: list[tuple[int, int, str]] = []
    for member, score in rows:
        number, _, text = member.decode("utf-8", "replace").partition(":")
        lines.append((int(score), int(number), text))
    dropped = int(head[1] or 0) if head else 0
    return Chunk(job_id, lines, dropped, complete=len(rows) < limit)


def read_after(connection: redis.Redis, after: dict[str, int],
               limit: int = EVENT_MAX_LINES) -> dict[str, Chunk]:
    """For each job id, up to ``limit`` lines whose id is above ``after[job_id]``, in one round trip."""
    ids = list(after)
    if not ids:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.zrangebyscore(keys.job_log(job_id), f"({after[job_id]}", "+inf", start=0, num=limit,
                               withscores=True, score_cast_func=_score)
            pipe.hmget(keys.job_log_head(job_id), "seq", "dropped")
        replies = pipe.execute()
    found: dict[str, Chunk] = {}
    for index, job_id in enumerate(ids):
        chunk = _parse(job_id, replies[2 * index], replies[2 * index + 1], limit)
        if chunk is not None:
            found[job_id] = chunk
    return found


#: A read's answer is also given to identical asks for this long after it (streams woken together
#: by one append reach their read within about ``streaming.LOG_BATCH_SECONDS`` of each other).
SHARE_SECONDS = 0.25

_reading: dict[tuple, tuple[Optional[float], "AsyncResult"]] = {}  # what was asked -> (done at, answer)
_pruned = 0.0


def read_after_shared(connection: redis.Redis, after: dict[str, int], heads: dict[str, int],
                      limit: int = EVENT_MAX_LINES) -> dict[str, Chunk]:
    """``read_after``, shared by the streams that ask the same thing at about the same time.

    One append wakes every stream of its job at once, and they all ask for the lines after the same
    id; each would otherwise read them itself (two commands per stream per append). A stream that
    asks what a read in flight (or done less than ``SHARE_SECONDS`` ago) asked takes its answer.
    Same ask means the same ids to read after *and* the same log heads known, so that read started
    after every line the asker knows of was written: it cannot miss any of them (a later line moves
    the head, which makes a new ask).
    """
    from gevent.event import AsyncResult

    global _pruned
    now = time.monotonic()
    if now - _pruned > 1.0:
        _pruned = now
        for old in [k for k, (done, _) in _reading.items() if done is not None and now - done > SHARE_SECONDS]:
            _reading.pop(old, None)
    key = (id(connection), limit, tuple(sorted((i, after[i], heads.get(i, 0)) for i in after)))
    entry = _reading.get(key)
    if entry is not None and (entry[0] is None or now - entry[0] <= SHARE_SECONDS):
        shared = entry[1].get()
        if shared is not None:
            return shared
        return read_after(connection, after, limit)  # the reader's greenlet was killed: read it here
    mine = (None, AsyncResult())
    _reading[key] = mine
    try:
        found = read_after(connection, after, limit)
    except BaseException as exc:
        if _reading.get(key) is mine:
            _reading.pop(key, None)
        if isinstance(exc, Exception):
            mine[1].set_exception(exc)
        else:
            mine[1].set(None)
        raise
    mine[1].set(found)
    if _reading.get(key) is mine:
        _reading[key] = (time.monotonic(), mine[1])
    return found


def snapshot(connection: redis.Redis, job_id: str) -> dict:
    """Every kept line of the job: ``{"lines": [...], "seq": last seq, "dropped": n}`` (for ``?log=1``)."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.job_log(job_id), 0, -1)
        pipe.hmget(keys.job_log_head(job_id), "seq", "dropped")
        members, (seq, dropped) = pipe.execute()
    return {"lines": [m.decode("utf-8", "replace").partition(":")[2] for m in members],
            "seq": int(seq or 0), "dropped": int(dropped or 0)}
