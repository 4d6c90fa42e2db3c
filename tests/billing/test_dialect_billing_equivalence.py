"""The three front doors bill alike (issue #15): the same conversation sent through Anthropic
Messages (/v1/anthropic/v1/messages), OpenAI Responses (/v1/openai/responses) and Chat
Completions (/v1/openai/chat/completions), with the official SDKs over a socket, costs exactly the
same, and that cost is the vendor's bill at catalog prices: cache reads at the cached price,
Anthropic cache writes at 1.25x input (5-minute TTL) or 2x (1-hour TTL), plain and streamed.

A Responses request has no `cache_control` (OpenAI's API has no such field), so the 1-hour TTL is
compared between Messages and Chat Completions only; a Responses request to a Claude model writes
the cache at Anthropic's default 5-minute TTL, compared through all three doors."""

from decimal import Decimal

import anthropic
import openai
import pytest

from ..conftest import balance_of, make_user, usage_rows

pytestmark = pytest.mark.e2e

# catalog prices per 1M tokens (llm/catalog.toml): input, output, cached input
PRICES = {
    "claude-haiku-4-5": (Decimal("0.80"), Decimal("4.00"), Decimal("0.08")),
    "gpt-4o": (Decimal("2.00"), Decimal("8.00"), Decimal("1.00")),
    "gemini-2.5-pro": (Decimal("1.00"), Decimal("8.00"), Decimal("0.10")),
}
VENDOR = {"claude-haiku-4-5": "anthropic", "gpt-4o": "openai", "gemini-2.5-pro": "gemini"}
ENDPOINT = {"messages": "anthropic_messages", "responses": "responses", "chat": "chat"}
SYSTEM = "You are a terse assistant."
MAX = 64


def _messages(server: str, user, model: str, text: str, cache: dict | None, stream: bool) -> None:
    client = anthropic.Anthropic(api_key=user.raw_key, base_url=f"{server}/v1/anthropic", max_retries=0)
    block = {"type": "text", "text": text, **({"cache_control": cache} if cache else {})}
    body = {
        "model": model,
        "max_tokens": MAX,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": [block]}],
    }
    if stream:
        with client.messages.stream(**body) as events:
            events.get_final_message()
    else:
        client.messages.create(**body)


def _chat(server: str, user, model: str, text: str, cache: dict | None, stream: bool) -> None:
    client = openai.OpenAI(api_key=user.raw_key, base_url=f"{server}/v1/openai", max_retries=0)
    part = {"type": "text", "text": text, **({"cache_control": cache} if cache else {})}
    reply = client.chat.completions.create(
        model=model,
        max_tokens=MAX,
        stream=stream,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": [part]}],
    )
    if stream:
        list(reply)


def _responses(server: str, user, model: str, text: str, cache: dict | None, stream: bool) -> None:
    assert cache is None or "ttl" not in cache, "the Responses API cannot ask for a cache TTL"
    client = openai.OpenAI(api_key=user.raw_key, base_url=f"{server}/v1/openai", max_retries=0)
    reply = client.responses.create(
        model=model,
        instructions=SYSTEM,
        max_output_tokens=MAX,
        stream=stream,
        input=[{"role": "user", "content": [{"type": "input_text", "text": text}]}],
    )
    if stream:
        list(reply)


DOORS = {"messages": _messages, "chat": _chat, "responses": _responses}


def vendor_bill_at_catalog_prices(model: str, bill: dict) -> Decimal:
    """What the vendor billed, priced by hand: the rule docs/billing states, not billing.pricing."""
    price_in, price_out, price_cached = PRICES[model]
    w5, w1h, cached = bill["cache_write_tokens"], bill["cache_write_1h_tokens"], bill["cached_tokens"]
    uncached = bill["prompt_tokens"] - cached - w5 - w1h
    raw = (
        uncached * price_in
        + cached * price_cached
        + w5 * price_in * Decimal("1.25")
        + w1h * price_in * 2
        + bill["completion_tokens"] * price_out
    )
    return (raw / 1_000_000).quantize(Decimal("0.00000001"))


CASES = [
    # model, marker in the prompt, cache_control, doors
    ("claude-haiku-4-5", "[[bill:cache_write]]", {"type": "ephemeral"}, ("messages", "chat", "responses")),
    ("claude-haiku-4-5", "[[bill:cache_write]]", {"type": "ephemeral", "ttl": "1h"}, ("messages", "chat")),
    ("claude-haiku-4-5", "[[cached]]", None, ("messages", "chat", "responses")),
    ("gpt-4o", "[[cached]]", None, ("messages", "chat", "responses")),
    ("gemini-2.5-pro", "[[cached]]", None, ("messages", "chat", "responses")),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "model,marker,cache,doors",
    CASES,
    ids=["claude-write-5m", "claude-write-1h", "claude-read", "gpt-4o-read", "gemini-read"],
)
def test_the_same_usage_costs_the_same_through_every_door(
    api_server, committed, vendors, model, marker, cache, doors, stream
):
    text = f"{marker} " + "the policy reads " * 300 + "summarise it"
    charged, bills = {}, {}
    for door in doors:
        # one user per door, $5 each, so each balance shows that door's charge alone
        user = make_user(f"{door}-payer", "5")
        DOORS[door](api_server, user, model, text, cache, stream)
        [row] = usage_rows(user)
        assert (row.endpoint, row.status, row.stream) == (ENDPOINT[door], "ok", stream)
        assert row.route.startswith(VENDOR[model])
        bills[door] = vendors[VENDOR[model]].billed[-1]
        expected = vendor_bill_at_catalog_prices(model, bills[door])
        assert row.cost_usd == expected > 0, (door, bills[door])
        assert Decimal(5) - balance_of(user) == expected, door
        charged[door] = expected
    first = doors[0]
    assert all(bills[door] == bills[first] for door in doors), bills  # the same usage...
    assert len(set(charged.values())) == 1, charged  # ...the same charge
    written = bills[first]["cache_write_tokens"] + bills[first]["cache_write_1h_tokens"]
    if marker == "[[bill:cache_write]]":
        ttl_key = "cache_write_1h_tokens" if cache and cache.get("ttl") == "1h" else "cache_write_tokens"
        assert bills[first][ttl_key] == bills[first]["prompt_tokens"] > 300
    else:
        assert written == 0 and bills[first]["cached_tokens"] > 300
