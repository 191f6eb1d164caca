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

The caller is authenticated first (``auth.current_caller``): an anonymous request answers 401 and
is never counted. The script runs on the app's Redis client, so whatever guards that client (its
pool, retries, a circuit breaker) guards the limiter too.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import redis
from flask import current_app
from limits import parse_many

from . import keys
from .errors import ApiError
from .extensions import redis_client

log = logging.getLogger(__name__)

# KEYS[1]: the user's hash for this route. ARGV: amount_1, seconds_1, amount_2, seconds_2, ...
# Fields "<amount>/<seconds>:w|c|p": that limit's window number, its count and the previous window's.
# Returns {allowed (1/0), retry_after_ms, limit, remaining, reset_ms} for the tightest limit.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #ARGV / 2
local names = {}
for i = 1, n do
  local base = ARGV[2 * i - 1] .. '/' .. ARGV[2 * i] .. ':'
  names[3 * i - 2], names[3 * i - 1], names[3 * i] = base .. 'w', base .. 'c', base .. 'p'
end
local h = redis.call('HMGET', KEYS[1], unpack(names))
local allowed, retry, tight_limit, tight_remaining, tight_reset, longest = 1, 0, 0, math.huge, 0, 0
local writes = {}
for i = 1, n do
  local amount = tonumber(ARGV[2 * i - 1])
  local span = tonumber(ARGV[2 * i]) * 1000
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
else
  tight_remaining = 0
end
return {allowed, retry, tight_limit, tight_remaining, tight_reset}
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
        self.argv: list[int] = []
        for item in self.items:
            self.argv += [item.amount, item.get_expiry()]
        self.describe = "; ".join(f"{i.amount} per {i.multiples} {i.GRANULARITY.name}" for i in self.items)

    def check(self, connection: redis.Redis, scope: str, user_id: str) -> Optional[Verdict]:
        """Count one request of ``user_id`` on ``scope``; None when Redis could not be asked
        (fail open, as before: the queue request itself then meets the same Redis and answers 503)."""
        try:
            allowed, retry_ms, limit, remaining, reset_ms = self.script(
                keys=[keys.rate_limit(scope, user_id)], args=self.argv, client=connection)
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable (%s); request allowed", type(exc).__name__)
            return None
        return Verdict(bool(allowed), max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
                       int(limit), int(remaining), math.ceil(int(reset_ms) / 1000))


def enforce(scope: str, user_id: str) -> dict[str, str]:
    """Count a request of an authenticated user; 429 with ``Retry-After`` past the limit.
    Returns the X-RateLimit-* headers for the answer."""
    limit: RateLimit = current_app.extensions["jobapp.ratelimit"]
    verdict = limit.check(redis_client.connection, scope, user_id)
    if verdict is None:
        return {}
    if not verdict.allowed:
        raise ApiError(429, f"Rate limit exceeded ({limit.describe}); retry in {verdict.retry_after} s",
                       code="rate_limited", headers=verdict.headers())
    return verdict.headers()


def init_app(app, spec: str, connection: redis.Redis) -> None:
    app.extensions["jobapp.ratelimit"] = RateLimit(spec, connection)
