"""The admission path's Redis client (gpuniq_site.redis_pipe) against a real Redis: concurrent
callers each get their own reply, a caller that gives up does not shift the others', errors come
back as redis-py's, and a lost or silent server costs one failed call, not a stuck connection."""

import asyncio

import pytest
import redis
from django.test import override_settings

from gpuniq_site import redis_pipe

pytestmark = pytest.mark.redis


async def _fresh_pipe():
    await redis_pipe.close_pipe()
    return redis_pipe.pipe()


async def test_concurrent_calls_each_get_their_own_reply():
    pipe = await _fresh_pipe()
    replies = await asyncio.gather(*(pipe.call("ECHO", f"call-{n}") for n in range(200)))
    assert replies == [f"call-{n}".encode() for n in range(200)]
    assert await pipe.call("EVAL", "return {1, ARGV[1], tonumber(ARGV[2])}", 0, "x", 7) == [1, b"x", 7]


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_others():
    pipe = await _fresh_pipe()
    calls = [asyncio.ensure_future(pipe.call("ECHO", str(n))) for n in range(20)]
    await asyncio.sleep(0)  # all queued
    calls[5].cancel()
    calls[12].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[5], asyncio.CancelledError) and isinstance(done[12], asyncio.CancelledError)
    assert [d for n, d in enumerate(done) if n not in (5, 12)] == [
        str(n).encode() for n in range(20) if n not in (5, 12)
    ]
    assert await pipe.call("ECHO", "after") == b"after"


async def test_error_replies_raise_like_redis_py_and_the_connection_goes_on():
    pipe = await _fresh_pipe()
    with pytest.raises(redis.ResponseError, match="NOSCRIPT"):
        await pipe.call("EVALSHA", "0" * 40, 0)
    assert await pipe.call("ECHO", "still") == b"still"


async def test_a_connection_the_server_closes_fails_its_calls_and_is_replaced():
    pipe = await _fresh_pipe()
    await pipe.call("CLIENT", "SETNAME", "pipe-under-test")
    from django.conf import settings

    admin = redis.Redis.from_url(settings.REDIS_URL)
    try:
        killed = [c for c in admin.client_list() if c.get("name") == "pipe-under-test"]
        assert killed
        admin.client_kill(killed[0]["addr"])
    finally:
        admin.close()
    with pytest.raises(redis.ConnectionError):
        for _ in range(50):  # the close reaches the client a moment later
            await pipe.call("ECHO", "x")
            await asyncio.sleep(0.01)
    assert await pipe.call("ECHO", "again") == b"again"


async def test_a_server_that_never_answers_times_out_and_does_not_wedge_the_pipe(monkeypatch):
    accepted = []

    async def silent(reader, writer):
        accepted.append(writer)
        await reader.read()  # reads and never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(redis_pipe, "TIMEOUT", 0.3)
    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
            await redis_pipe.close_pipe()
            pipe = redis_pipe.pipe()
            with pytest.raises(redis.TimeoutError):
                await pipe.call("ECHO", "x")
            with pytest.raises(redis.TimeoutError):  # a new connection, which times out on its own
                await pipe.call("ECHO", "y")
            assert len(accepted) == 2
            await redis_pipe.close_pipe()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_tls_urls_are_left_to_redis_py():
    with override_settings(REDIS_URL="rediss://127.0.0.1:6380/0"):
        assert redis_pipe.pipe() is None
    with override_settings(REDIS_URL=""):
        assert redis_pipe.pipe() is None
