"""Route cool-down against a real Redis: a route that failed FAILURES_TO_TRIP times is tried last
by every request of its model for COOLDOWN seconds, its flag read on the admission's lean pipe."""

import uuid

import pytest

from gpuniq_site import shared_state
from llm import gateway, route_health
from llm.catalog import asnapshot

pytestmark = pytest.mark.redis


async def _clear(*routes: str) -> None:
    client = shared_state.async_redis()
    for route in routes:
        await client.delete(route_health._down_key(route), route_health._fail_key(route))


async def test_a_route_that_keeps_failing_cools_down_and_the_others_do_not():
    tripped, fine = f"openai:t-{uuid.uuid4().hex}", f"openai:f-{uuid.uuid4().hex}"
    try:
        for _ in range(route_health.FAILURES_TO_TRIP - 1):
            await route_health.record_failure(tripped)
        assert await route_health.cooling([tripped, fine]) == set()  # not yet
        await route_health.record_failure(tripped)
        assert await route_health.cooling([tripped, fine]) == {tripped}
        assert await route_health.cooling([fine, tripped]) == {tripped}
        assert await route_health.cooling([tripped]) == set()  # a lone route is always tried
        ttl = await shared_state.async_redis().ttl(route_health._down_key(tripped))
        assert 0 < ttl <= route_health.COOLDOWN
    finally:
        await _clear(tripped, fine)


async def test_a_cooling_route_goes_last_for_its_model(committed, vendors_in_this_process):
    model = (await asnapshot()).models["gpt-4o"]
    first, second = (str(route) for route in await gateway.ordered_routes(model))
    assert (first, second) == ("openai:gpt-4o", "openai_compat_fallback:openai/gpt-4o")
    try:
        for _ in range(route_health.FAILURES_TO_TRIP):
            await route_health.record_failure(first)
        assert [str(r) for r in await gateway.ordered_routes(model)] == [second, first]
    finally:
        await _clear(first)
    assert [str(r) for r in await gateway.ordered_routes(model)] == [first, second]
