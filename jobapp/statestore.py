"""Records each job's contract state in Redis and announces every change.

RQ's job hash stays the source of truth; this keeps a small projection of it per job — the
event payload, its owner, and an ``updatedAt`` that only increases — so streams read one key
(or one ``MGET`` for many jobs) instead of decoding RQ jobs, and so that every change is
announced on one pub/sub channel, with the state itself, so a watcher delivers it without reading
it back. ``record`` is the only writer.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from rq.job import Job

from . import jobstats, joblog, keys, state


class StoredState(dict):
    """``{"owner": str, "queue": str, "event": payload}`` as stored (plus ``"push": true`` while jobapp's
    worker runs it)."""

    @property
    def owner(self) -> str:
        return self["owner"]

    @property
    def queue(self) -> str:
        """The RQ queue the job runs on (older records: its job type, which was the queue name)."""
        return self.get("queue") or self["event"]["jobType"]

    @property
    def event(self) -> dict[str, Any]:
        return self["event"]

    @property
    def pushed(self) -> bool:
        """jobapp's own worker runs this job and records each change itself (the hub need not poll RQ)."""
        return bool(self.get("push"))


def tracked(job: Job) -> bool:
    """Whether jobapp follows ``job``: queued through jobapp, its meta names an owner and a job type.
    Any other RQ job on the same queues (a team's own, queued by its own code) runs untouched."""
    return "owner" in job.meta and "jobType" in job.meta


def _ttl(job: Job, status: str) -> Optional[int]:
    """Unfinished states live as long as the RQ job; finished ones as long as its result."""
    if not state.is_terminal(status):
        return None
    ttl = job.failure_ttl if status == state.FAILED else job.result_ttl
    return int(ttl) if ttl and ttl > 0 else None


def decode(raw: Optional[bytes]) -> Optional[StoredState]:
    return StoredState(json.loads(raw)) if raw else None


#: ``record``'s one round trip. It reads the log head, writes the state, applies the rules to the
#: state it replaced (putting that back, with its expiry, if they refuse the new one; nobody sees
#: the difference, the script being atomic) and announces. An unfinished state, the usual case,
#: costs one ``SET ... GET`` (Redis >= 6.2); a finished one is read first. The new state arrives as
#: JSON in three pieces around its ``progress`` and ``updatedAt`` (the two values decided here;
#: ``_pieces``); an unchanged state is one that the same pieces would write byte for byte. ARGV: 1-3 pieces, 4 progress, 5 status,
#: 6 attempt, 7 now (ms), 8 pushed, 9 forward_only, 10 ttl, 11 job id, 12 channel, then the
#: job-stats increments in threes (field, ``i`` or ``f``, amount). Answers ``{0, stored}`` when
#: nothing was written, ``{1, written}`` for a new state, ``{2, written}`` when only the mark changed.
_RECORD = """
local u = redis.call('HGET', KEYS[2], 'u')
local progress = tonumber(ARGV[4])
local at = tonumber(ARGV[7])
if u then at = math.max(at, math.floor(tonumber(u) / 1000) + 1) end
local push = ARGV[8] == '1'
local ttl = tonumber(ARGV[10])
local function build(p, t, mark)
  return ARGV[1] .. string.format('%d', p) .. ARGV[2] .. string.format('%.0f', t) .. ARGV[3]
    .. (mark and ',"push":true}' or '}')
end
-- A guess at the mark, made good below: an active state usually follows the marked one jobapp's worker wrote.
local new = build(progress, at, push or ARGV[5] == 'active')
local old
if ttl then  -- a finished state: read first, so a refusal leaves the stored state's expiry alone
  old = redis.call('GET', KEYS[1])
else  -- the usual case, one command: write it and see what it replaced (put back below if refused)
  old = redis.call('SET', KEYS[1], new, 'KEEPTTL', 'GET')
end
local written = not ttl
local function refuse(answer)
  if written then redis.call('SET', KEYS[1], old, 'KEEPTTL') end
  return answer
end
if old then
  local ok, prev = pcall(cjson.decode, old)
  if ok and type(prev) == 'table' and type(prev.event) == 'table' then
    local status = prev.event.status
    if status == 'completed' or status == 'failed' or status == 'canceled' then return refuse({0, old}) end
    local attempt = tonumber(prev.event.attempt) or 1
    if ARGV[9] == '1' and status == 'active' and ARGV[5] == 'pending' and tonumber(ARGV[6]) <= attempt then
      return refuse({0, old})
    end
    if tonumber(ARGV[6]) == attempt then progress = math.max(progress, tonumber(prev.event.progress) or 0) end
    local marked = prev.push == true
    push = push or (marked and status == ARGV[5])
    local old_at = tonumber(prev.event.updatedAt) or 0
    if old == build(progress, old_at, marked) then  -- unchanged (the same pieces wrote it)
      if push ~= marked then
        local same = build(progress, old_at, push)
        redis.call('SET', KEYS[1], same)
        return {2, same}
      end
      return refuse({0, old})
    end
    at = math.max(at, old_at + 1)
  end
end
local final = build(progress, at, push)
if final ~= new then
  new = final
  written = false
end
if ttl then
  redis.call('SET', KEYS[1], new, 'EX', ttl)
  if u then
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
elseif not written then
  redis.call('SET', KEYS[1], new)
end
for i = 13, #ARGV, 3 do
  redis.call(ARGV[i + 1] == 'f' and 'HINCRBYFLOAT' or 'HINCRBY', KEYS[4], ARGV[i], ARGV[i + 2])
end
redis.call('PUBLISH', ARGV[12], ARGV[11] .. ' ' .. new)
return {1, new}
"""
_record_script = Script(None, _RECORD.encode())  # bytes: no client needed to hash it; each call names its client

#: What the pieces stand in for: the JSON of ``null`` where ``progress`` and ``updatedAt`` go.
_PROGRESS, _UPDATED_AT = '"progress":null', '"updatedAt":null'


def _pieces(owner: str, queue: str, event: dict) -> tuple[str, str, str]:
    """The stored JSON (without ``push`` and the closing brace) split around ``progress`` and
    ``updatedAt``. Every value before them is a string (or an object of strings), in which a quote is
    always escaped, so the first match of each is the field itself."""
    text = json.dumps({"owner": owner, "queue": queue, "event": {**event, "progress": None, "updatedAt": None}},
                      separators=(",", ":"))
    p = text.index(_PROGRESS)
    u = text.index(_UPDATED_AT, p)
    return text[:p + 11], text[p + len(_PROGRESS):u + 12], text[u + len(_UPDATED_AT):-1]


def record(connection: redis.Redis, job: Job, *, status: Optional[str] = None,
           pipeline: Optional[Pipeline] = None, pushed: bool = False,
           forward_only: bool = False) -> Optional[dict[str, Any]]:
    """Record ``job``'s current state if it changed, and announce it.

    Rules kept here for every writer: progress never decreases within an attempt (a new attempt
    starts again from its own progress), a finished state is final, an unchanged state is not
    written again, ``updatedAt`` strictly increases and stays above the job's last log line's id
    (see ``joblog``: states and lines share one order).
    Returns the event now stored. With ``pipeline`` (a new job being queued) the first state is
    written inside the caller's transaction. ``pushed`` marks a state jobapp's worker recorded as it
    started the job: later states of the same status keep the mark, and the hub skips polling RQ for
    them. ``forward_only`` (the hub's poll of RQ, which may read a stale hash) never takes an
    active job back to pending.

    One Lua script (``_RECORD``) does it all in one round trip, all or nothing: the state, the log's
    expiry and the job-stats counts of a finished job, then the announcement, ``"<job id> <stored
    JSON>"`` on ``keys.CHANGES_CHANNEL`` (so a hub needs no read to deliver it).
    """
    new = state.payload(job, job_type=job.meta["jobType"], status=status)
    key = keys.job_state(job.id)
    owner = job.meta["owner"]
    ttl = _ttl(job, new["status"])
    if pipeline is not None:
        new["updatedAt"] = state.epoch_ms()
        _write(pipeline, key, owner, job.origin, new, ttl, job.id)
        return new
    stats: list = []
    if state.is_terminal(new["status"]):
        for field, amount in jobstats.increments(new["status"], _run_seconds(job), new.get("failedReason")):
            stats += [field, "f", repr(amount)] if isinstance(amount, float) else [field, "i", amount]
    code, stored = _record_script(
        keys=[key, keys.job_log_head(job.id), keys.job_log(job.id), keys.job_stats(new["jobType"])],
        args=[*_pieces(owner, job.origin, new), new["progress"], new["status"], new["attempt"], state.epoch_ms(),
              "1" if pushed else "", "1" if forward_only else "", ttl or "", job.id, keys.CHANGES_CHANNEL, *stats],
        client=connection)
    event = decode(stored).event
    if code == 1 and state.is_terminal(event["status"]):
        from . import dependencies  # it records the dependents through this module
        dependencies.settle(connection, job, event)
    return event


def _run_seconds(job: Job) -> Optional[float]:
    """How long the job ran, if it started (its end is now when RQ has not stamped it yet)."""
    if job.started_at is None:
        return None
    return max(0.0, (state.epoch_ms(job.ended_at) - state.epoch_ms(job.started_at)) / 1000)


def _write(pipe: Pipeline, key: str, owner: str, queue: str, event: dict, ttl: Optional[int], job_id: str,
           push: bool = False) -> None:
    stored = {"owner": owner, "queue": queue, "event": event}
    if push:
        stored["push"] = True
    raw = json.dumps(stored, separators=(",", ":"))
    pipe.set(key, raw, ex=ttl)
    joblog.expire(pipe, job_id, ttl)
    pipe.publish(keys.CHANGES_CHANNEL, announcement(job_id, raw))


def announcement(job_id: str, raw: str) -> str:
    """What ``keys.CHANGES_CHANNEL`` carries: the job id, a space, and the state as stored."""
    return f"{job_id} {raw}"


def read(connection: redis.Redis, job_id: str) -> Optional[StoredState]:
    return decode(connection.get(keys.job_state(job_id)))


def read_many(connection: redis.Redis, job_ids: Iterable[str], chunk: int = 1000) -> dict[str, StoredState]:
    """Stored states of many jobs in as few round trips as possible (one ``MGET`` per ``chunk``)."""
    return {job_id: decode(raw) for job_id, raw in read_many_raw(connection, job_ids, chunk).items()}


def read_many_raw(connection: redis.Redis, job_ids: Iterable[str], chunk: int = 1000) -> dict[str, bytes]:
    """The stored bytes of many jobs, undecoded: the hub compares bytes and decodes only what it delivers."""
    ids = list(job_ids)
    found: dict[str, bytes] = {}
    with connection.pipeline(transaction=False) as pipe:
        for start in range(0, len(ids), chunk):
            pipe.mget([keys.job_state(i) for i in ids[start:start + chunk]])
        replies = pipe.execute() if ids else []
    for start, values in zip(range(0, len(ids), chunk), replies):
        for job_id, raw in zip(ids[start:start + chunk], values):
            if raw:
                found[job_id] = raw
    return found
