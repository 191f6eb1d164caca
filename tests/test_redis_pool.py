"""The web pool's queue of free connections serves waiters in arrival order (``redisconn.FairLifoQueue``)."""

from __future__ import annotations

import threading
import time
from queue import Empty, Full

import pytest

from jobapp.redisconn import FairLifoQueue
from tests.probe_support import calls


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.005)


def test_filled_until_full_and_last_in_first_out_while_free():
    q = FairLifoQueue(3)
    for item in (None, None, None):
        q.put_nowait(None)
    with pytest.raises(Full):
        q.put_nowait(None)
    assert [q.get(), q.get(), q.get()] == [None, None, None]
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.get() == "b"  # the connection used last is used again first
    assert q.queue == ["a"]


def test_a_returned_connection_goes_to_the_longest_waiter_not_to_a_newcomer():
    q = FairLifoQueue(1)
    got: list[tuple[str, str]] = []

    def waiter(name: str) -> None:
        got.append((name, q.get(timeout=30)))

    threads = []
    for name in ("first", "second"):
        t = threading.Thread(target=waiter, args=(name,))
        t.start()
        threads.append(t)
        _wait_for(lambda n=len(threads): len(q._waiters) == n)  # arrival order is fixed
    q.put_nowait("conn-1")
    with pytest.raises(Empty):
        q.get(block=False)  # a newcomer finds nothing free: it went to "first"
    _wait_for(lambda: len(got) == 1)
    q.put_nowait("conn-2")
    for t in threads:
        t.join(10)
    assert got == [("first", "conn-1"), ("second", "conn-2")]
    assert q.queue == [] and not q._waiters


def test_a_waiter_that_times_out_leaves_the_line():
    q = FairLifoQueue(1)
    with pytest.raises(Empty):
        q.get(timeout=0.01)
    assert not q._waiters
    q.put_nowait("conn")  # not handed to the waiter that left
    assert q.get(block=False) == "conn"


def test_scripts_called_at_once_share_round_trips_and_keep_their_own_replies_and_errors():
    from concurrent.futures import ThreadPoolExecutor

    import redis

    from jobapp.devredis import RedisServer
    from jobapp.redisconn import ScriptBatcher

    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url)
        echo = client.register_script("if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to') end "
                                      "redis.call('RPUSH', KEYS[1], ARGV[1]) return ARGV[1]")
        client.script_flush()  # the batcher loads a script Redis lost
        batcher = ScriptBatcher(client, max_in_flight=1)
        batches: list[int] = []
        run = batcher._run
        batcher._run = lambda batch: (batches.append(len(batch)), run(batch))[1]
        calls_before = calls(client, "evalsha")
        words = [f"w{i}" if i % 7 else "fail" for i in range(60)]

        def call(word: str):
            try:
                return batcher.call(echo, ["list"], [word])
            except redis.ResponseError as exc:
                return exc

        with ThreadPoolExecutor(20) as pool:
            replies = list(pool.map(call, words))
        for word, reply in zip(words, replies):
            if word == "fail":
                assert isinstance(reply, redis.ResponseError) and "asked to" in str(reply)
            else:
                assert reply == word.encode()
        assert sorted(client.lrange("list", 0, -1)) == sorted(w.encode() for w in words if w != "fail")
        assert calls(client, "evalsha") - calls_before >= len(words)
        assert sum(batches) == len(words) and len(batches) < len(words), "calls made at once went together"
        server.process.send_signal(__import__("signal").SIGSTOP)
        try:
            slow = ScriptBatcher(redis.Redis.from_url(server.url, socket_timeout=0.2))
            with pytest.raises(redis.TimeoutError):
                slow.call(echo, ["list"], ["late"])
        finally:
            server.process.send_signal(__import__("signal").SIGCONT)
    finally:
        server.stop()


def test_a_caller_interrupted_as_its_turn_to_lead_comes_hands_the_turn_on(monkeypatch):
    """A greenlet killed while it waits (a client gone) must not strand the callers behind it."""
    import redis

    from jobapp import redisconn
    from jobapp.devredis import RedisServer

    class Killed(BaseException):
        pass

    class DoomedEvent(threading.Event):
        def wait(self, timeout=None):
            super().wait(timeout)
            raise Killed  # killed just as it was woken to lead

    made: list[redisconn._Call] = []

    class Call(redisconn._Call):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            if not made:
                self.event = DoomedEvent()
            made.append(self)

    monkeypatch.setattr(redisconn, "_Call", Call)
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url)
        echo = client.register_script("return ARGV[1]")
        batcher = redisconn.ScriptBatcher(client)
        batcher._in_flight = 1  # a batch is on the wire: callers line up
        outcome: dict[str, object] = {}

        def call(word: str) -> None:
            try:
                outcome[word] = batcher.call(echo, [], [word])
            except Killed:
                outcome[word] = "killed"

        first = threading.Thread(target=call, args=("first",))
        first.start()
        _wait_for(lambda: len(batcher._queue) == 1)
        second = threading.Thread(target=call, args=("second",))
        second.start()
        _wait_for(lambda: len(batcher._queue) == 2)
        with batcher._lock:  # the batch on the wire ends: the first in line is told to lead
            batcher._in_flight = 0
            batcher._queue[0].event.set()
        first.join(10)
        second.join(10)
        assert outcome == {"first": "killed", "second": b"second"}
        assert batcher._queue == [] and batcher._in_flight == 0
    finally:
        server.stop()
