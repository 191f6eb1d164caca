"""Redis clients for each part of jobapp: the one place that knows timeouts, retries, the breaker and Sentinel.

Three roles, because they want opposite things from a Redis that stalls or fails over:

- ``web``: a request must answer within a second either way. Short socket and pool timeouts, no
  retry after a timeout, and a per-process circuit breaker: after one timeout (or refused
  connection) every command fails at once with ``RedisUnavailable`` until a probe gets through,
  so a stall costs one timeout per process, not one per request. The limiter, the stream cap,
  the hub's reads and the reaper all use this client.
- ``listen``: the hub's pub/sub subscription, which blocks reading by design. No socket timeout
  and no breaker: it resumes when Redis answers, and the hub's safety-net re-read covers the gap.
- ``patient``: workers. Retries ride out a restart or failover of about half a minute instead of
  failing the running job; RQ raises the socket timeout above its own dequeue timeout.

With ``REDIS_SENTINELS`` set, every role finds the current primary through Sentinel on each new
connection, and a connection to a demoted primary is dropped at its first ``READONLY`` answer.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager
from queue import Empty, Full
from typing import Any, Iterator, Optional

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import SSLConnection, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.utils import HIREDIS_AVAILABLE, SENTINEL

from .config import Config

if HIREDIS_AVAILABLE:
    import hiredis

log = logging.getLogger("jobapp.redis")

#: While the breaker is open, one caller per this many seconds is let through to probe Redis.
PROBE_SECONDS = 0.5


class RedisUnavailable(redis.ConnectionError):
    """Refused without asking Redis: the breaker is open (Redis did not answer a moment ago)."""


class Breaker:
    """A per-process circuit breaker: open after one failure, closed by the first success."""

    def __init__(self, probe_seconds: float = PROBE_SECONDS) -> None:
        self.probe_seconds = probe_seconds
        self.is_open = False
        self.opened_at = 0.0
        self._next_probe = 0.0

    def admit(self) -> bool:
        """May this caller talk to Redis now? While open, one caller per ``probe_seconds`` may."""
        if not self.is_open:
            return True
        now = time.monotonic()
        if now >= self._next_probe:
            self._next_probe = now + self.probe_seconds
            return True
        return False

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if not self.is_open:
            self.is_open, self.opened_at = True, now
            log.warning("redis not answering (%s); failing fast until a probe succeeds", type(exc).__name__)
        self._next_probe = now + self.probe_seconds

    def succeeded(self) -> None:
        if self.is_open:
            self.is_open = False
            log.warning("redis answering again after %.1fs", time.monotonic() - self.opened_at)

    def __deepcopy__(self, memo: dict) -> "Breaker":
        return self  # redis-py deep-copies the Retry holding it into every connection: keep one per process


class ReportingRetry(Retry):
    """A ``Retry`` that tells the breaker when a command, pipeline or connect fails (every one of
    them runs through ``call_with_retry`` in redis-py). Success is told by the connection, when a
    reply is read: a TCP connect alone proves nothing (a stopped Redis's kernel still accepts)."""

    def __init__(self, backoff, retries: int, breaker: Breaker, supported_errors=(redis.ConnectionError,)) -> None:
        super().__init__(backoff, retries, supported_errors)
        self.breaker = breaker

    def call_with_retry(self, do, fail, *args, **kwargs):
        try:
            return super().call_with_retry(do, fail, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, socket.timeout, OSError) as exc:
            if not isinstance(exc, RedisUnavailable):
                self.breaker.failed(exc)
            raise


class SentAt:
    """A script argument the connection fills in as it sends the command: the local epoch ms at that
    moment plus ``plus_ms`` (the moment itself is kept in ``local_ms``).

    A stalled Redis runs what it was sent when it resumes, after the request that sent it was already
    answered 503. A script told the moment its client gives up (in Redis's clock) can refuse work that
    reaches it too late. Only the first argument after a script's keys is looked at.
    """

    __slots__ = ("plus_ms", "local_ms")

    def __init__(self, plus_ms: float) -> None:
        self.plus_ms = plus_ms
        self.local_ms = 0.0

    def fill(self) -> str:
        self.local_ms = time.time() * 1000
        return str(int(self.local_ms + self.plus_ms))


class _ReportsReplies:
    """Mixed into the pool's connection class: each reply read closes the breaker; ``SentAt``
    arguments are filled in as a script is sent."""

    def send_command(self, *args, **kwargs):
        if args[0] in ("EVALSHA", "EVAL") and len(args) > 3 + args[2]:  # name, script, numkeys, keys..., argv...
            at = 3 + args[2]
            if type(args[at]) is SentAt:
                args = (*args[:at], args[at].fill(), *args[at + 1:])
        return super().send_command(*args, **kwargs)

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except redis.ResponseError:
            self._answered()  # an error, but an answer
            raise
        self._answered()
        return response

    def _answered(self) -> None:
        breaker = getattr(self.retry, "breaker", None)
        if breaker is not None:
            breaker.succeeded()


def _reporting(connection_class: type) -> type:
    return type(f"Reporting{connection_class.__name__}", (_ReportsReplies, connection_class), {})


def _pool_exhausted(exc: BaseException) -> bool:
    return isinstance(exc, redis.ConnectionError) and str(exc) == "No connection available."


class _Waiter:
    __slots__ = ("event", "item", "served")

    def __init__(self) -> None:
        self.event = threading.Event()  # gevent's under gunicorn's gevent worker (monkey-patched)
        self.item: Any = None
        self.served = False


class FairLifoQueue:
    """The pool's free connections, handed out first come first served to those waiting for one.

    redis-py's pool uses ``queue.LifoQueue`` (gevent's own queue under gunicorn's gevent worker).
    Both wake a waiter on ``put`` but let any caller that arrives meanwhile take the connection
    first, and the woken waiter waits again. With more requests in flight than
    ``REDIS_MAX_CONNECTIONS`` some requests lost that race over and over: the queue route's p99 was
    12x its p50 over 16 keep-alive connections. Here a returned connection goes straight to the
    longest waiter, and a newcomer waits behind those already waiting. Free connections stay
    last in, first out, as redis-py expects (it opens new ones only on demand). The part of
    ``queue.Queue`` redis-py uses: ``get``, ``put_nowait`` (raising ``Full``) and ``queue``.
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self.queue: list[Any] = []  # free connections (None: room for a new one); the last is handed out first
        self._waiters: deque[_Waiter] = deque()  # never non-empty while ``queue`` is
        self._mutex = threading.Lock()  # gevent's under gunicorn's gevent worker (monkey-patched)

    def qsize(self) -> int:
        return len(self.queue)

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        with self._mutex:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.item, waiter.served = item, True
                waiter.event.set()
                return
            if 0 < self.maxsize <= len(self.queue):
                raise Full  # redis-py fills the pool with put_nowait until Full, and never blocks here
            self.queue.append(item)

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        with self._mutex:
            if self.queue:
                return self.queue.pop()
            if not block:
                raise Empty
            waiter = _Waiter()
            self._waiters.append(waiter)
        waiter.event.wait(timeout)
        with self._mutex:
            if waiter.served:
                return waiter.item
            self._waiters.remove(waiter)  # timed out
            raise Empty

    def get_nowait(self) -> Any:
        return self.get(block=False)


class GuardedPool(redis.BlockingConnectionPool):
    """A bounded pool that refuses at once while its breaker is open (``breaker`` None: never); the
    one caller let through to probe sends a ``PING`` first and is refused too if it goes unanswered.
    A burst waits for a free connection in arrival order (``FairLifoQueue``)."""

    breaker: Optional[Breaker] = None

    def __init__(self, *args: Any, queue_class: type = FairLifoQueue, **kwargs: Any) -> None:
        super().__init__(*args, queue_class=queue_class, **kwargs)

    def get_connection(self, *args, **kwargs):
        breaker = self.breaker
        if breaker is None:
            return super().get_connection(*args, **kwargs)
        probing = breaker.is_open
        if not breaker.admit():
            raise RedisUnavailable("Redis is not answering")
        try:
            connection = super().get_connection(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not _pool_exhausted(exc) and not isinstance(exc, RedisUnavailable):
                breaker.failed(exc)  # the connect or its handshake failed
            raise
        if breaker.is_open and not probing:  # it opened while this caller waited for the pool
            self.release(connection)
            raise RedisUnavailable("Redis is not answering")
        if probing:
            self._probe(connection, breaker)
        return connection

    def _probe(self, connection, breaker: Breaker) -> None:
        """Ask with a ``PING`` before the caller's own commands: a write sent into a Redis that is
        still frozen would be applied when it thaws, after its request was answered 503."""
        try:
            connection.send_command("PING")
            connection.read_response()  # a reply closes the breaker
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            breaker.failed(exc)
            connection.disconnect()
            self.release(connection)
            raise RedisUnavailable("Redis is not answering") from None


class DroppingSentinelConnection(SentinelManagedConnection):
    """redis-py 8.1's Sentinel connection keeps a connection whose read was interrupted (its
    ``read_response`` defaults ``disconnect_on_error`` to False, unlike the plain one), so the
    unread reply of an interrupted command (an RQ worker's BLPOP cut by SIGTERM) is later read as
    the answer to the next command: the worker hangs on shutdown. Default it back to True."""

    def read_response(self, disable_decoding=False, *, timeout=SENTINEL, disconnect_on_error=True,
                      push_request=False):
        return super().read_response(disable_decoding, timeout=timeout, disconnect_on_error=disconnect_on_error,
                                     push_request=push_request)


class DroppingSentinelSSLConnection(DroppingSentinelConnection, SSLConnection):
    pass


class GuardedSentinelPool(SentinelConnectionPool, GuardedPool):
    """The same, for the primary Sentinel names (asked again on every new connection)."""


def _options(config: Config, role: str, breaker: Optional[Breaker]) -> dict[str, Any]:
    options: dict[str, Any] = {"health_check_interval": 30, "socket_keepalive": True}
    if role == "web":
        options.update(socket_timeout=config.REDIS_SOCKET_TIMEOUT, socket_connect_timeout=config.REDIS_SOCKET_TIMEOUT,
                       retry=ReportingRetry(NoBackoff(), 1, breaker))  # one reconnect, never a second timeout
    elif role == "listen":
        options.update(socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
    else:  # patient
        options.update(socket_connect_timeout=2, retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 20),
                       retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    if config.REDIS_URL.startswith("rediss://") and not config.REDIS_TLS_VERIFY:
        options["ssl_cert_reqs"] = "none"
    return options


def sentinel_addresses(config: Config) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, _, port in (a.rpartition(":") for a in config.REDIS_SENTINELS)]


def connect(config: Config, role: str = "web") -> redis.Redis:
    """A client (bytes in and out, as RQ needs) for ``role``: ``web``, ``listen`` or ``patient``."""
    breaker = Breaker() if role == "web" else None
    options = _options(config, role, breaker)
    max_connections = 2 if role == "listen" else config.REDIS_MAX_CONNECTIONS
    timeout = config.REDIS_POOL_TIMEOUT if role == "web" else 5
    if config.REDIS_SENTINELS:
        url = parse_url(config.REDIS_URL)  # credentials, db and TLS of the primary; its host is Sentinel's to say
        for name in ("host", "port", "path"):
            url.pop(name, None)
        tls = url.pop("connection_class", None) is SSLConnection
        url["connection_class"] = DroppingSentinelSSLConnection if tls else DroppingSentinelConnection
        sentinel_timeout = config.REDIS_SOCKET_TIMEOUT if role == "web" else 2
        sentinel = Sentinel(sentinel_addresses(config), sentinel_kwargs={
            "socket_timeout": sentinel_timeout, "socket_connect_timeout": sentinel_timeout,
            "password": config.REDIS_SENTINEL_PASSWORD, "retry": Retry(NoBackoff(), 0)})
        pool = GuardedSentinelPool(config.REDIS_SENTINEL_MASTER, sentinel, max_connections=max_connections,
                                   timeout=timeout, **url, **options)
    else:
        pool = GuardedPool.from_url(config.REDIS_URL, max_connections=max_connections, timeout=timeout, **options)
    pool.breaker = breaker
    if breaker is not None:
        pool.connection_class = _reporting(pool.connection_class)
    return redis.Redis(connection_pool=pool)


class _OneConnectionPool:
    """A pool that hands out one connection already taken, so a transaction and the ``WAIT``
    after it run on the same connection (``WAIT`` counts the replicas that have *this* client's writes)."""

    def __init__(self, pool: redis.ConnectionPool, connection) -> None:
        self._pool = pool
        self._connection = connection

    def get_connection(self, *args, **kwargs):
        return self._connection

    def release(self, connection) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self._pool, name)


@contextmanager
def replicated(client: redis.Redis, replicas: int, timeout_ms: int) -> Iterator[redis.Redis]:
    """Yield a client for some writes; with ``replicas`` > 0, wait after them until that many replicas
    have them (or ``timeout_ms`` passes: logged, since the writes stand on the primary alone)."""
    if replicas <= 0:
        yield client
        return
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        held = redis.Redis(connection_pool=_OneConnectionPool(pool, connection))
        yield held
        acknowledged = held.execute_command("WAIT", replicas, timeout_ms)
        if acknowledged < replicas:
            log.warning("queued on the primary, but only %d of %d replicas acknowledged within %d ms",
                        acknowledged, replicas, timeout_ms)
    finally:
        pool.release(connection)


def memory_report(client: redis.Redis) -> dict[str, Any]:
    """Redis's memory policy and fill, from ``INFO memory`` (allowed where ``CONFIG`` is not)."""
    info = client.info("memory")
    policy = info.get("maxmemory_policy", "noeviction")
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    limit, used = int(info.get("maxmemory", 0) or 0), int(info.get("used_memory", 0) or 0)
    return {"maxmemoryPolicy": policy, "evicts": policy != "noeviction",
            "full": bool(limit) and used >= limit}


EVICTION_WARNING = ("Redis maxmemory-policy is {policy!r}: when memory fills, Redis deletes keys and jobs "
                    "vanish silently. Set maxmemory-policy noeviction (RQ needs it).")


def _pack(connection: Any, commands: list[tuple[Any, ...]]) -> Any:
    """The commands in Redis's protocol, ready to send: hiredis's packer straight (our arguments are
    str, bytes and numbers, never what redis-py's own pass converts first), else the connection's."""
    if HIREDIS_AVAILABLE:
        return [b"".join([hiredis.pack_command(command) for command in commands])]
    return connection.pack_commands(commands)


class _Call:
    __slots__ = ("script", "keys", "args", "event", "reply", "error", "taken", "done")

    def __init__(self, script: Any, keys: list, args: list) -> None:
        self.script, self.keys, self.args = script, keys, args
        self.event = threading.Event()  # done, or: lead the next batch
        self.reply: Any = None
        self.error: Optional[BaseException] = None
        self.taken = self.done = False


def _sent_once(retry: Retry) -> Retry:
    """``retry`` (the breaker still told) without its reconnect-and-resend: scripts that write must not
    go twice. Redis may have run a batch before its connection dropped, and a second send would queue
    its jobs again; a caller answered 503 instead may find its job queued, as after a stall."""
    if isinstance(retry, ReportingRetry):
        return ReportingRetry(NoBackoff(), 0, retry.breaker)
    return Retry(NoBackoff(), 0)


class ScriptBatcher:
    """Script calls that many requests make at the same moment go to Redis together.

    Each call joins a queue; while fewer than ``max_in_flight`` batches are on the wire, a caller
    takes every queued call (its own among them) and sends them as one pipeline: no ``MULTI`` (each
    script is atomic on its own), one ``send``, the replies read in order, each caller woken with
    its own. Under load a batch forms while the one before is on the wire, so a request pays a share
    of one round trip instead of one of its own, and takes no pooled connection of its own. One
    batch at a time (the default) measured best: 16 keep-alive connections of queue requests cost
    10 % less web CPU than with three, p99 lower too. ``SentAt`` arguments are filled as the batch
    is packed. Each call's Redis error is its own; a connection
    error or timeout fails the whole batch (the breaker is told, as for any command).
    """

    def __init__(self, client: redis.Redis, max_in_flight: int = 1) -> None:
        self.client = client
        self.max_in_flight = max_in_flight
        self._queue: list[_Call] = []
        self._in_flight = 0
        self._lock = threading.Lock()  # gevent's under gunicorn's gevent worker

    def call(self, script: Any, keys: list, args: list) -> Any:
        """``script(keys=keys, args=args)``'s reply (or its error, raised)."""
        me = _Call(script, keys, args)
        with self._lock:
            self._queue.append(me)
        while True:
            with self._lock:
                if me.done:
                    break
                batch: Optional[list[_Call]] = None
                if not me.taken and self._in_flight < self.max_in_flight:
                    self._in_flight += 1
                    batch, self._queue = self._queue, []
                    for call in batch:
                        call.taken = True
                else:
                    me.event.clear()
            if batch is None:
                try:
                    me.event.wait()
                except BaseException:  # this greenlet is killed while it waits: it may hold the turn to lead
                    with self._lock:
                        if not me.taken:
                            self._queue.remove(me)
                        self._hand_on()
                    raise
                continue
            try:
                self._run(batch)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._hand_on()
        if me.error is not None:
            raise me.error
        return me.reply

    def _hand_on(self) -> None:
        """(Under the lock.) If a batch may go now, the longest waiting call leads it."""
        if self._queue and self._in_flight < self.max_in_flight:
            self._queue[0].event.set()

    def _run(self, batch: list[_Call]) -> None:
        pool = self.client.connection_pool
        replies: list[Any] = []
        try:
            connection = pool.get_connection()
            try:
                commands = [("EVALSHA", call.script.sha, len(call.keys), *call.keys,
                             *(a.fill() if type(a) is SentAt else a for a in call.args)) for call in batch]

                packed = _pack(connection, commands)

                def send_and_read() -> list[Any]:
                    replies.clear()
                    connection.send_packed_command(packed)
                    for _ in commands:
                        try:
                            replies.append(connection.read_response())
                        except redis.ResponseError as exc:  # this script's own error: the others stand
                            replies.append(exc)
                    return replies

                _sent_once(connection.retry).call_with_retry(send_and_read, lambda error: connection.disconnect())
            except BaseException:
                connection.disconnect()  # replies may be left unread
                raise
            finally:
                pool.release(connection)
        except BaseException as exc:
            shared = exc if isinstance(exc, Exception) else redis.ConnectionError("the batch was interrupted")
            self._settle(batch, [shared] * len(batch))
            if shared is not exc:
                raise  # the leader's own greenlet is being killed: let it end
            return
        try:
            for index, (call, reply) in enumerate(zip(batch, replies)):
                if isinstance(reply, redis.exceptions.NoScriptError):  # a restarted Redis: load it, once per call
                    try:
                        replies[index] = call.script(keys=call.keys, args=call.args, client=self.client)
                    except Exception as exc:  # noqa: BLE001 - the caller's to handle
                        replies[index] = exc
        finally:
            self._settle(batch, replies)  # every caller is answered, even if this greenlet is killed

    def _settle(self, batch: list[_Call], replies: list[Any]) -> None:
        with self._lock:
            for call, reply in zip(batch, replies):
                if isinstance(reply, BaseException):
                    call.error = reply
                else:
                    call.reply = reply
                call.done = True
                call.event.set()
