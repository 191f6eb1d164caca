"""Per-user rate limits on the queue routes: a sliding-window counter, every limit in one Redis command.

``RATE_LIMIT_QUEUE`` keeps Flask-Limiter's syntax ("60/minute;600/hour"; parsed by ``limits``, the
library Flask-Limiter itself uses). Each user has one small hash per route holding, for each
limit, the current fixed window's count and the previous one's. A request is allowed while
``previous * (1 - elapsed share of the current window) + current < amount`` for every limit
(Cloudflare's sliding-window counter: within a fraction of a moving window, at a fraction of the
cost). One Lua script (``EVALSHA``) checks all limits against Redis's clock and counts the request
in all of them only if every one allows it, so a refused request costs nothing, and web processes
never disagree about the time. It replaces Flask-Limiter's moving window, which took 27 Redis
commands (two ``EVALSHA`` plus list reads) and a third of a queue request's CPU.

On the queue routes the same script also makes the new job's writes (``Gate``): the request is
counted and the job queued in one round trip, or refused with nothing written. So the body is
validated first, and only requests that would queue a job are counted.

The caller is authenticated first (``auth.current_caller``): an anonymous request answers 401 and
is never counted. The script runs on the app's Redis client, so whatever guards that client (its
pool, retries, a circuit breaker) guards the limiter too.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import redis
from flask import current_app
from redis.client import Pipeline
from limits import parse_many

from . import keys
from .errors import ApiError
from .extensions import redis_client
from .redisconn import ScriptBatcher, SentAt

log = logging.getLogger(__name__)

# KEYS[1]: the user's hash for this route. ARGV: the deadline (Redis's epoch ms after which the client has
# given up; "" for none), n, amount_1, seconds_1, ..., amount_n, seconds_n, then the writes to make if the
# request is allowed, each as argc, command, arg_1, ..., arg_argc-1.
# Fields "<amount>/<seconds>:w|c|p": that limit's window number, its count and the previous window's.
# Returns {allowed (1/0; -1: past the deadline, nothing done), retry_after_ms, limit, remaining, reset_ms,
# now_ms} for the tightest limit.
# The count is the script's first write: at maxmemory Redis refuses it, and so the whole script, before
# anything is written (a later write could not be refused any more: Redis never stops a script halfway).
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[1])
if deadline and now > deadline then return {-1, 0, 0, 0, 0, now} end
local n = tonumber(ARGV[2])
local names = {}
for i = 1, n do
  local base = ARGV[2 * i + 1] .. '/' .. ARGV[2 * i + 2] .. ':'
  names[3 * i - 2], names[3 * i - 1], names[3 * i] = base .. 'w', base .. 'c', base .. 'p'
end
local h = redis.call('HMGET', KEYS[1], unpack(names))
local allowed, retry, tight_limit, tight_remaining, tight_reset, longest = 1, 0, 0, math.huge, 0, 0
local writes = {}
for i = 1, n do
  local amount = tonumber(ARGV[2 * i + 1])
  local span = tonumber(ARGV[2 * i + 2]) * 1000
  if span > longest then longest = span end
  local window = math.floor(now / span)
  local w, c, p = tonumber(h[3 * i - 2]), tonumber(h[3 * i - 1]) or 0, tonumber(h[3 * i]) or 0
  local cur, prev = 0, 0
  if w == window then cur, prev = c, p elseif w == window - 1 then prev = c end
  local weighted = prev * (1 - (now - window * span) / span) + cur
  if weighted + 1 > amount then
    allowed = 0
    local wait
    if cur + 1 <= amount and prev > 0 then
      wait = math.ceil((1 - (amount - cur - 1) / prev) * span + window * span - now)
    else
      local f = 0
      if cur > 0 then f = math.max(0, 1 - (amount - 1) / cur) end
      wait = math.ceil((window + 1 + f) * span - now)
    end
    if wait > retry then retry = wait end
  end
  local remaining = math.max(0, math.floor(amount - weighted - 1))
  if remaining < tight_remaining or (remaining == tight_remaining and (window + 1) * span > tight_reset) then
    tight_limit, tight_remaining, tight_reset = amount, remaining, (window + 1) * span
  end
  for _, v in ipairs({names[3 * i - 2], window, names[3 * i - 1], cur + 1, names[3 * i], prev}) do
    writes[#writes + 1] = v
  end
end
if allowed == 1 then
  redis.call('HSET', KEYS[1], unpack(writes))
  redis.call('PEXPIRE', KEYS[1], 2 * longest)
  local i = 2 * n + 3  -- the first write's argc
  while i <= #ARGV do
    local argc = tonumber(ARGV[i])
    redis.call(unpack(ARGV, i + 1, i + argc))
    i = i + argc + 1
  end
else
  tight_remaining = 0
end
return {allowed, retry, tight_limit, tight_remaining, tight_reset, now}
"""


@dataclass(frozen=True)
class Verdict:
    """What the script decided, and the X-RateLimit-* headers that describe it."""

    allowed: bool
    retry_after: int  # whole seconds, at least 1 when refused
    limit: int
    remaining: int
    reset: int  # epoch seconds when the tightest limit's window ends

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimit:
    """``RATE_LIMIT_QUEUE`` parsed once, checked with one script call per request."""

    def __init__(self, spec: str, connection: redis.Redis) -> None:
        self.script = connection.register_script(SCRIPT)
        self.items = parse_many(spec)  # raises ValueError on a malformed setting: the app must not start
        self.argv: list[int] = [len(self.items)]
        for item in self.items:
            self.argv += [item.amount, item.get_expiry()]
        self.batcher = ScriptBatcher(connection)  # concurrent requests' scripts share round trips
        self._offset_ms: Optional[float] = None  # Redis's epoch ms minus this process's, learned from answers
        self.describe = "; ".join(f"{i.amount} per {i.multiples} {i.GRANULARITY.name}" for i in self.items)

    def check(self, connection: redis.Redis, scope: str, user_id: str) -> Optional[Verdict]:
        """Count one request of ``user_id`` on ``scope``; None when Redis could not be asked
        (fail open, as before: the queue request itself then meets the same Redis and answers 503)."""
        try:
            return self._verdict(self._run(connection, scope, user_id, "", ()))
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable (%s); request allowed", type(exc).__name__)
            return None

    def _run(self, connection: redis.Redis, scope: str, user_id: str, deadline: Any,
             writes: Iterable[tuple[Any, ...]]) -> list[int]:
        args: list[Any] = [deadline, *self.argv]
        for command in writes:
            args.append(len(command))
            args.extend(command)
        if connection is self.batcher.client:  # the app's client (not a connection held for a WAIT)
            return self.batcher.call(self.script, [keys.rate_limit(scope, user_id)], args)
        return self.script(keys=[keys.rate_limit(scope, user_id)], args=args, client=connection)

    @staticmethod
    def _verdict(reply: list[int]) -> Verdict:
        allowed, retry_ms, limit, remaining, reset_ms = (int(v) for v in reply[:5])
        return Verdict(bool(allowed), max(1, math.ceil(retry_ms / 1000)) if not allowed else 0,
                       limit, remaining, math.ceil(reset_ms / 1000))

    def apply(self, connection: redis.Redis, scope: str, user_id: str, writes: list[tuple[Any, ...]]) -> Verdict:
        """Count one request and make ``writes`` (commands, as a pipeline holds them) in the same script,
        only if every limit allows it: one round trip, all of it or none of it. Redis errors propagate.

        The script is told when this process stops waiting for its answer (the socket timeout, in Redis's
        clock as learned from earlier answers) and does nothing if it runs later: a stalled Redis that
        resumes never queues a job whose request was answered 503. Without a socket timeout it always runs.
        """
        patience = connection.connection_pool.connection_kwargs.get("socket_timeout")
        if not patience:
            return self._verdict(self._run(connection, scope, user_id, "", writes))
        if self._offset_ms is None:
            started = time.time() * 1000
            seconds, micros = connection.time()
            self._offset_ms = seconds * 1000 + micros / 1000 - started
        for _ in range(2):
            sent = SentAt(self._offset_ms + patience * 1000)
            reply = self._run(connection, scope, user_id, sent, writes)
            self._offset_ms = int(reply[5]) - sent.local_ms  # Redis's clock minus ours, as of this answer
            if int(reply[0]) != -1:
                return self._verdict(reply)
            # Past the deadline, yet answered in time: the clock estimate was off. Nothing was done; again.
        raise redis.TimeoutError("Redis ran the request after its deadline")


def _refused(limit: RateLimit, verdict: Verdict) -> ApiError:
    return ApiError(429, f"Rate limit exceeded ({limit.describe}); retry in {verdict.retry_after} s",
                    code="rate_limited", headers=verdict.headers())


class Gate:
    """One request of an authenticated user on a limited route, counted as its writes are made.

    ``commit(connection, pipe)`` runs the commands queued in ``pipe`` inside the limiter's script
    (one round trip instead of the limiter's and the transaction's), or answers 429 and writes
    nothing. A pipeline that watches keys (RQ checking a job's dependencies) cannot travel in a
    script: the limiter then counts first, once, and the pipeline's own ``MULTI``/``EXEC`` follows.
    ``headers``: the X-RateLimit-* headers for the answer.
    """

    def __init__(self, scope: str, user_id: str) -> None:
        self.limit: RateLimit = current_app.extensions["jobapp.ratelimit"]
        self.scope, self.user_id = scope, user_id
        self.headers: dict[str, str] = {}
        self._counted = False

    def commit(self, connection: redis.Redis, pipe: Pipeline) -> None:
        if pipe.watching:
            if not self._counted:  # a WatchError retry does not count again
                self.headers = enforce(self.scope, self.user_id)
                self._counted = True
            pipe.execute()
            return
        verdict = self.limit.apply(connection, self.scope, self.user_id, [args for args, _ in pipe.command_stack])
        pipe.reset()
        self.headers = verdict.headers()
        if not verdict.allowed:
            raise _refused(self.limit, verdict)


def enforce(scope: str, user_id: str) -> dict[str, str]:
    """Count a request of an authenticated user; 429 with ``Retry-After`` past the limit.
    Returns the X-RateLimit-* headers for the answer."""
    limit: RateLimit = current_app.extensions["jobapp.ratelimit"]
    verdict = limit.check(redis_client.connection, scope, user_id)
    if verdict is None:
        return {}
    if not verdict.allowed:
        raise _refused(limit, verdict)
    return verdict.headers()


def init_app(app, spec: str, connection: redis.Redis) -> None:
    app.extensions["jobapp.ratelimit"] = RateLimit(spec, connection)
