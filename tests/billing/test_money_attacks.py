"""Money under attack: what a determined user tries to get more tokens than they pay for (issue 12).

Every attack goes through two real ASGI server processes on one database (and Redis when
configured), against fake vendors that bill the most the real vendor legitimately could for the
request as sent (`[[bill:max]]`, tests/fakes/common.py). For each attack:

- value delivered = the vendors' bills (their reported usage at catalog prices) for every request
  they answered; value paid = what left the user's balance through charges;
- delivered <= paid + 1e-8 USD, no `loss` ledger entry, billing.ledger.find_mismatches() clean,
  no hold left open; for the cap attack, settled spend <= the cap (0.00% overshoot).

GPUNIQ_MONEY_REPORT=<file> appends one JSON line of figures per attack (docs/reliability.md's
table comes from such a run).
"""

import asyncio
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from decimal import Decimal

import httpx
import pytest

from billing import ledger
from billing.models import Hold, LedgerEntry
from billing.pricing import TokenPrices, TokenUsage, chat_cost

from ..conftest import balance_of, make_user, service_extra_env, usage_rows
from ..live import LiveServer

CHAT = "/v1/openai/chat/completions"
RESPONSES = "/v1/openai/responses"
MESSAGES = "/v1/anthropic/v1/messages"
EPSILON = Decimal("0.00000001")
# a 1x1 PNG: the vendors bill an image by their formula, not by its bytes
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/"
    "iZk9HQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def servers(catalog_loaded, fake_vendors):
    """Two app processes on the same database and Redis; attacks alternate between them. Each
    model's own vendor only: a generic OpenAI-compatible fallback is bounded by a reasoning model's
    whole output ceiling (128,000 tokens on Opus), which no $0.50 user could ever hold."""
    env = {k: v for k, v in service_extra_env(fake_vendors).items() if "_FALLBACK_" not in k}
    started = [LiveServer(env=env).start()]
    try:
        started.append(LiveServer(env=env).start())
        yield [server.url for server in started]
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def mallory(committed):
    # Mallory: $0.50, tries to get more than she pays for.
    return make_user("mallory", "0.50")


@dataclass
class Figures:
    attack: str
    requests: int
    served: int
    delivered: Decimal
    paid: Decimal
    overshoot_pct: Decimal = Decimal(0)
    losses: int = 0


def send_all(
    servers: list[str], user, bodies: list[dict], path: str = CHAT, headers: dict | None = None
) -> list[httpx.Response]:
    """POST every body to `path` at once, alternating between the servers."""

    async def run():
        limits = httpx.Limits(max_connections=len(bodies) + 1)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        servers[i % len(servers)] + path,
                        json=body,
                        headers={"Authorization": f"Bearer {user.raw_key}", **(headers or {})},
                    )
                    for i, body in enumerate(bodies)
                )
            )

    return asyncio.run(run())


def vendor_bill(vendors, slug: str) -> Decimal:
    """What the vendors billed for every request they answered, at the catalog's prices of `slug`
    (the one model an attack calls)."""
    from llm.catalog import snapshot
    from llm.chat import prices

    price = prices(snapshot().models[slug])
    bills = [b for name in ("openai", "anthropic", "gemini") for b in vendors[name].billed]
    return sum(
        (chat_cost(price, TokenUsage(**{k: v for k, v in b.items() if k != "model"})) for b in bills),
        Decimal(0),
    )


def wait_until(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def no_open_holds(user) -> bool:
    return not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def assert_paid_for(
    attack: str,
    slug: str,
    user,
    before: Decimal,
    vendors,
    responses,
    *,
    refunded=Decimal(0),
    cap: Decimal | None = None,
) -> Figures:
    """Delivered <= paid to 1e-8, no loss entry, the ledger re-adds, spend within `cap`; returns
    the attack's figures."""
    wait_until(lambda: no_open_holds(user), what="every hold closed")
    paid = before - balance_of(user) - refunded
    served = sum(1 for r in responses if r.status_code == 200)
    figures = Figures(
        attack,
        len(responses),
        served,
        vendor_bill(vendors, slug),
        paid,
        losses=LedgerEntry.objects.filter(account=user.account, kind=LedgerEntry.LOSS).count(),
    )
    if cap is not None:
        figures.overshoot_pct = max(paid - cap, Decimal(0)) / cap * 100
    record(figures)
    assert figures.delivered <= figures.paid + EPSILON, figures
    answered = sum(len(vendors[name].billed) for name in ("openai", "anthropic", "gemini"))
    assert answered == served  # no refused request reached a vendor
    assert figures.losses == 0
    assert ledger.find_mismatches() == []
    assert figures.overshoot_pct == 0
    return figures


def assert_refused_for_money(responses) -> None:
    """Only served (200) and refused-before-the-vendor (402 insufficient_balance) answers."""
    refused = [r for r in responses if r.status_code != 200]
    assert all(
        r.status_code == 402 and r.json()["error"]["code"] == "insufficient_balance" for r in refused
    ), {r.status_code: r.text[:200] for r in refused}
    assert 0 < len(refused) < len(responses)  # the attack ran the balance out


def record(figures: Figures) -> None:
    path = os.environ.get("GPUNIQ_MONEY_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({k: str(v) for k, v in asdict(figures).items()}) + "\n")


def ask(model: str, text: str, **extra) -> dict:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}


# --- the hold bounds what the vendor can bill ----------------------------------------------------


def test_n16_on_gpt4o_cannot_buy_sixteen_replies_for_the_price_of_one(servers, mallory, vendors):
    before = balance_of(mallory)
    body = ask("gpt-4o", "[[bill:max]] tell me a story", n=16, max_tokens=215)
    responses = send_all(servers, mallory, [body] * 30)
    assert_paid_for("gpt-4o n=16, max_tokens=215", "gpt-4o", mallory, before, vendors, responses)
    assert_refused_for_money(responses)
    assert all(len(r.json()["choices"]) == 16 for r in responses if r.status_code == 200)


def test_a_client_chosen_anthropic_thinking_budget_is_paid_for(servers, mallory, vendors):
    before = balance_of(mallory)
    body = ask(
        "claude-sonnet-4-5",
        "[[bill:max]] think hard",
        max_tokens=64,
        thinking={"type": "enabled", "budget_tokens": 30000},
    )
    responses = send_all(servers, mallory, [body] * 4)
    assert vendors["anthropic"].requests[0]["json"]["thinking"]["budget_tokens"] == 30000
    assert_paid_for(
        "claude-sonnet-4-5 thinking budget 30,000", "claude-sonnet-4-5", mallory, before, vendors, responses
    )
    assert_refused_for_money(responses)


@pytest.mark.parametrize("budget", [60000.0, "60000", 10**30, True, None, [60000]])
def test_a_thinking_budget_that_is_not_a_whole_number_of_tokens_is_refused_on_both_doors(
    servers, mallory, vendors, budget
):
    """60000.0 or "60000" once passed as "no budget" (held at the default) and reached Anthropic
    as int(budget): 60,000 thinking tokens nobody held for, written off as a loss."""
    before = balance_of(mallory)
    thinking = {"type": "enabled", "budget_tokens": budget}
    chat = ask("claude-haiku-4-5", "[[bill:max]] think hard", max_tokens=100, thinking=thinking)
    messages = ask("claude-haiku-4-5", "[[bill:max]] think hard", max_tokens=100, thinking=thinking)
    responses = send_all(servers, mallory, [chat]) + send_all(servers, mallory, [messages], path=MESSAGES)
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_parameter"
        assert "thinking" in response.text
    assert not vendors["anthropic"].requests and not vendors["openai"].requests
    assert balance_of(mallory) == before
    assert not LedgerEntry.objects.filter(account=mallory.account, kind=LedgerEntry.LOSS).exists()


def pdf_part(pages: int) -> dict:
    """A PDF of `pages` pages sent as an image_url part (the fakes bill it by its pages)."""
    import base64

    body = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % n for n in range(pages))
    data = base64.b64encode(body + b"%%EOF\n").decode()
    return {"type": "image_url", "image_url": {"url": f"data:application/pdf;base64,{data}"}}


@pytest.mark.parametrize(("slug", "pages"), [("claude-sonnet-4-5", 30), ("gemini-2.5-pro", 1000)])
def test_a_pdf_sent_as_an_image_part_is_paid_for(servers, mallory, vendors, slug, pages):
    """The translators send it as a document (Anthropic) or inlineData of its type (Gemini), billed
    by the page (up to 3,000 and 258 tokens a page), while the hold once counted one image."""
    before = balance_of(mallory)
    content = [{"type": "text", "text": "[[bill:max]] read this"}, pdf_part(pages)]
    body = {"model": slug, "max_tokens": 16, "messages": [{"role": "user", "content": content}]}
    responses = send_all(servers, mallory, [body] * 4)
    assert_paid_for(f"{slug} PDF of {pages} pages as image_url", slug, mallory, before, vendors, responses)
    assert all(r.status_code in (200, 402) for r in responses), [r.text[:200] for r in responses]


@pytest.mark.parametrize(
    ("slug", "prompt"),
    [
        ("gemini-2.5-pro", "a" * 250_000),  # the fake counts Gemini's prompt by its bytes
        ("grok-4", " ".join(f"w{i}" for i in range(60_000))),  # o200k: 179,000 tokens
    ],
)
def test_a_prompt_past_the_long_context_threshold_pays_the_vendors_long_context_price(
    servers, committed, vendors, slug, prompt
):
    """Google bills a prompt above 200K tokens at a dearer tier, xAI one above 128K, every token of
    the request; the catalog's standard price would sell it below what the vendor charges."""
    from llm.catalog import snapshot
    from llm.chat import prices

    rich = make_user(f"longctx-{slug}", "5")
    body = ask(slug, "[[bill:max]] " + prompt, max_tokens=100)
    [response] = send_all(servers, rich, [body])
    assert response.status_code == 200, response.text[:300]
    [bill] = [b for name in ("gemini", "openai") for b in vendors[name].billed]
    tier = snapshot().models[slug].long_context
    assert bill["prompt_tokens"] > tier["above"]
    usage = TokenUsage(**{k: v for k, v in bill.items() if k != "model"})
    long = chat_cost(TokenPrices(Decimal(tier["input"]), Decimal(tier["output"])), usage)
    assert chat_cost(prices(snapshot().models[slug]), usage) == long  # the tier, not the standard price
    wait_until(lambda: no_open_holds(rich), what="the hold closed")
    assert Decimal("5") - balance_of(rich) == long
    assert not LedgerEntry.objects.filter(account=rich.account, kind=LedgerEntry.LOSS).exists()


def test_images_in_a_tool_output_on_the_responses_door_are_held_for(servers, mallory, vendors):
    """OpenAI's Responses API gets a function_call_output's image parts as they are; the hold once
    counted only their text: 80 images (5,000 tokens each held) for the price of none."""
    before = balance_of(mallory)
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    body = {
        "model": "gpt-4o",
        "max_output_tokens": 16,
        "tools": [{"type": "function", "name": "shoot", "parameters": {"type": "object", "properties": {}}}],
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "shoot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [image] * 80},
            {"role": "user", "content": "[[bill:max]] describe them"},
        ],
    }
    from llm.catalog import snapshot

    [response] = send_all(servers, mallory, [body], path=RESPONSES)
    assert response.status_code == 200, response.text[:300]
    model = snapshot().models["gpt-4o"]
    window = Decimal(model.context_window) * model.input_per_mtok / 1_000_000  # what 80 images can fill
    [hold] = Hold.objects.filter(account=mallory.account)
    assert hold.amount >= window  # was $0.0031: the text alone
    assert_paid_for("Responses tool output with 80 images", "gpt-4o", mallory, before, vendors, [response])


def test_gemini_high_reasoning_effort_times_n_is_paid_for(servers, mallory, vendors):
    before = balance_of(mallory)
    body = ask(
        "gemini-2.5-flash", "[[bill:max]] reason about it", n=4, max_tokens=100, reasoning_effort="high"
    )
    responses = send_all(servers, mallory, [body] * 4)
    sent = vendors["gemini"].requests[0]["json"]["generationConfig"]
    assert sent["candidateCount"] == 4 and sent["thinkingConfig"]["thinkingBudget"] == 24576
    assert_paid_for(
        "gemini-2.5-flash effort high, n=4", "gemini-2.5-flash", mallory, before, vendors, responses
    )
    assert_refused_for_money(responses)


def ten_thousand_words() -> str:
    # words a BPE tokenizer splits into several tokens each: the old characters/3 estimate undercounts
    return "[[bill:max]] " + " ".join(f"zq{(i * 7919) % 100003}xj{i % 97}" for i in range(10_000))


@pytest.mark.parametrize("model,copies", [("gpt-4o", 8), ("claude-sonnet-4-5", 4), ("gemini-2.5-flash", 10)])
def test_a_ten_thousand_word_prompt_is_held_at_its_bound(servers, mallory, vendors, model, copies):
    before = balance_of(mallory)
    responses = send_all(servers, mallory, [ask(model, ten_thousand_words())] * copies)
    assert_paid_for(f"10,000-word prompt, {model}", model, mallory, before, vendors, responses)
    assert_refused_for_money(responses)


def test_a_megabyte_prompt_is_held_at_its_bound_and_a_larger_one_refused(servers, mallory, vendors):
    before = balance_of(mallory)
    megabyte = "[[bill:max]] " + "abcdefghi " * 100_000  # 1 MB: within Gemini's 1M-token window
    responses = send_all(servers, mallory, [ask("gemini-2.5-flash", megabyte)] * 3)
    assert_paid_for("1 MB prompt, gemini-2.5-flash", "gemini-2.5-flash", mallory, before, vendors, responses)
    assert_refused_for_money(responses)

    [huge] = send_all(servers, mallory, [ask("claude-opus-4-7", "[[bill:max]] " + "abcdefghi " * 300_000)])
    assert huge.status_code == 402 and huge.json()["error"]["code"] == "insufficient_balance"
    assert vendors["anthropic"].requests == []  # refused before the vendor was called


def test_images_are_held_at_the_vendors_largest_per_image_count(servers, mallory, vendors):
    # Opus 4.7 reads images at high resolution: up to 4,784 tokens each (the old hold counted 1,500)
    model, copies = "claude-opus-4-7", 5
    before = balance_of(mallory)
    content = [{"type": "text", "text": "[[bill:max]] describe these"}] + [
        {"type": "image_url", "image_url": {"url": PNG}} for _ in range(8)
    ]
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": content}]}
    responses = send_all(servers, mallory, [body] * copies)
    assert_paid_for(f"8 images, {model}", model, mallory, before, vendors, responses)
    assert_refused_for_money(responses)


def test_large_tool_definitions_are_held_for(servers, mallory, vendors):
    before = balance_of(mallory)
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": "d" * 5_000 + f" {i}",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for i in range(20)
    ]
    responses = send_all(servers, mallory, [ask("claude-sonnet-4-5", "[[bill:max]] hi", tools=tools)] * 8)
    assert_paid_for(
        "20 tools of 5 KB, claude-sonnet-4-5", "claude-sonnet-4-5", mallory, before, vendors, responses
    )
    assert_refused_for_money(responses)


@pytest.mark.parametrize("ttl,premium", [(None, Decimal("1.25")), ("1h", Decimal(2))])
def test_an_anthropic_cache_write_costs_its_premium_exactly(servers, mallory, vendors, ttl, premium):
    before = balance_of(mallory)
    cache = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    text = "[[bill:cache_write]] " + "policy " * 2_000
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text, "cache_control": cache}]}],
    }
    [response] = send_all(servers, mallory, [body])
    assert response.status_code == 200, response.text
    [bill] = vendors["anthropic"].billed
    written = bill["cache_write_1h_tokens" if ttl else "cache_write_tokens"]
    assert written == bill["prompt_tokens"] > 2_000
    expected = (
        written * Decimal("2.40") * premium + bill["completion_tokens"] * Decimal("12.00")
    ) / 1_000_000
    assert balance_of(mallory) == before - expected.quantize(EPSILON)
    assert Decimal(str(response.json()["usage"]["cost_usd"])) == expected.quantize(EPSILON)
    assert_paid_for(
        f"cache write {ttl or '5m'}, claude-sonnet-4-5",
        "claude-sonnet-4-5",
        mallory,
        before,
        vendors,
        [response],
    )


def test_a_responses_request_without_max_output_tokens_is_held_for_what_openai_may_write(
    servers, mallory, vendors
):
    # OpenAI's own Responses API writes up to the model's output limit when no max_output_tokens is
    # sent (16,384 on gpt-4o); the pass-through sends the limit its hold covers, as Chat Completions'
    # providers do
    before = balance_of(mallory)
    body = {"model": "gpt-4o", "input": "[[bill:max]] tell me everything"}
    responses = send_all(servers, mallory, [body] * 20, path=RESPONSES)
    assert_paid_for(
        "Responses door, gpt-4o, no max_output_tokens", "gpt-4o", mallory, before, vendors, responses
    )
    assert all(r["json"]["max_output_tokens"] == 4096 for r in vendors["openai"].requests)
    assert_refused_for_money(responses)


def test_hosted_tools_that_openai_runs_and_bills_per_call_never_reach_it(servers, mallory, vendors):
    # web search ($ per call, and its results become input tokens after the hold was taken), code
    # interpreter (per container), ...: no hold can bound them, so the pass-through sends only the
    # tools the client runs, as the translated routes do (Codex CLI sends web_search every turn)
    before = balance_of(mallory)
    function = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    body = {
        "model": "gpt-4o",
        "input": "[[bill:max]] search the web",
        "max_output_tokens": 64,
        "tools": [
            {"type": "web_search"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            function,
        ],
    }
    [response] = send_all(servers, mallory, [body], path=RESPONSES)
    assert response.status_code == 200, response.text
    [sent] = vendors["openai"].requests
    assert sent["json"]["tools"] == [function] and "tool_choice" not in sent["json"]
    assert_paid_for("Responses door, hosted tools, gpt-4o", "gpt-4o", mallory, before, vendors, [response])


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 50}]},
        {"tools": [{"type": "code_execution_20250825", "name": "code_execution"}]},
        {"mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "mine"}]},
        {"speed": "fast"},  # Opus fast mode: 6x the standard price the catalog sells
    ],
)
def test_what_anthropic_runs_or_prices_beyond_tokens_is_refused_before_it(servers, mallory, vendors, extra):
    body = {"model": "claude-opus-4-7", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    [response] = send_all(servers, mallory, [{**body, **extra}], path=MESSAGES)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "unsupported_parameter"
    assert vendors["anthropic"].requests == []


def test_a_top_level_anthropic_cache_control_is_held_at_its_premium(servers, mallory, vendors):
    # automatic prompt caching: a request-level cache_control writes the whole prompt, at 2x for 1h
    before = balance_of(mallory)
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "messages": [{"role": "user", "content": "[[bill:max]] [[bill:cache_write]] " + "policy " * 10_000}],
    }
    responses = send_all(servers, mallory, [body] * 3, path=MESSAGES)
    figures = assert_paid_for(
        "Messages door, request-level 1h cache write, claude-sonnet-4-5",
        "claude-sonnet-4-5",
        mallory,
        before,
        vendors,
        responses,
    )
    assert figures.paid == figures.delivered  # every written token at 2x input, exactly
    assert_refused_for_money(responses)


def test_the_long_context_beta_lifts_the_window_the_prompt_bound_stops_at(servers, mallory, vendors):
    # the catalog gives claude-sonnet-4-5 a 200K window; with Anthropic's context-1m beta the vendor
    # reads (and bills) a larger prompt, so the bound may not stop at 200K tokens
    before = balance_of(mallory)
    body = ask("claude-sonnet-4-5", "[[bill:max]] " + "abcdefghi " * 25_000)  # 250 KB
    beta = {"anthropic-beta": "context-1m-2025-08-07"}
    [response] = send_all(servers, mallory, [body], path=MESSAGES, headers=beta)
    assert_paid_for(
        "Messages door, 250 KB prompt, context-1m beta",
        "claude-sonnet-4-5",
        mallory,
        before,
        vendors,
        [response],
    )
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_balance"
    assert vendors["anthropic"].requests == []  # refused before the vendor was called


# --- an abandoned stream pays for what the vendor did --------------------------------------------


@pytest.mark.parametrize(
    "model,vendor", [("gpt-4o", "openai"), ("claude-opus-4-7", "anthropic"), ("gemini-2.5-flash", "gemini")]
)
def test_a_stream_dropped_after_the_first_event_pays_for_the_whole_prompt(
    servers, mallory, vendors, model, vendor
):
    from llm.catalog import snapshot

    before = balance_of(mallory)
    # ~10,000 prompt tokens as each vendor bills them: o200k tokens for OpenAI, bytes for the others
    filler = "alpha " * (10_000 if vendor == "openai" else 1_670)
    body = ask(model, f"{filler}[[bill:max]] [[fault:stall_early]]", stream=True, max_tokens=64)
    with httpx.stream(
        "POST",
        servers[1] + CHAT,
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {mallory.raw_key}"},
    ) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if line.startswith("data:"))  # then leave
    wait_until(lambda: usage_rows(mallory) and no_open_holds(mallory), what="the cut stream settled")
    [row] = usage_rows(mallory)
    [bill] = vendors[vendor].billed
    prompt_cost = bill["prompt_tokens"] * snapshot().models[model].input_per_mtok / 1_000_000
    assert bill["prompt_tokens"] >= 10_000
    assert row.cost_usd >= prompt_cost > 0
    if vendor == "anthropic":  # message_start's own count, exactly
        assert row.prompt_tokens == bill["prompt_tokens"]
    assert before - balance_of(mallory) == row.cost_usd
    figures = Figures(
        f"stream dropped after 1st event, {model}",
        1,
        1,
        prompt_cost.quantize(EPSILON),
        before - balance_of(mallory),
    )
    record(figures)
    assert not LedgerEntry.objects.filter(account=mallory.account, kind=LedgerEntry.LOSS).exists()
    assert ledger.find_mismatches() == []


# --- caps count money in flight; refunds while money is held ------------------------------------


def test_a_monthly_cap_holds_against_100_concurrent_slow_requests_over_two_processes(
    servers, committed, vendors
):
    cap = Decimal("0.05")
    capped = make_user("capped", "5", monthly_spend_cap_usd=cap)
    before = balance_of(capped)
    body = ask("gpt-4o", "[[bill:max]] [[fault:slow_first_byte]] go", max_tokens=250)
    responses = send_all(servers, capped, [body] * 100)
    figures = assert_paid_for(
        "100 slow requests, $0.05 cap, 2 processes", "gpt-4o", capped, before, vendors, responses, cap=cap
    )
    settled = sum(row.cost_usd for row in usage_rows(capped))
    assert settled == figures.paid and 0 < settled <= cap
    refused = [r for r in responses if r.status_code != 200]
    assert refused and all(
        r.status_code == 403 and r.json()["error"]["code"] == "spend_cap_reached" for r in refused
    ), {r.status_code: r.text[:200] for r in refused}


def test_a_refund_while_requests_are_in_flight_leaves_nothing_unpaid(servers, mallory, vendors):
    before = balance_of(mallory)
    body = ask("gpt-4o", "[[bill:max]] [[fault:slow_first_byte]] go", max_tokens=2000)
    results: list = []
    sender = threading.Thread(target=lambda: results.extend(send_all(servers, mallory, [body] * 6)))
    sender.start()
    wait_until(
        lambda: Hold.objects.filter(account=mallory.account, status=Hold.OPEN).count() == 6,
        what="six holds open",
    )
    refund = Decimal("-0.45")
    ledger.post(
        account_id=mallory.account.pk,
        amount=refund,
        kind=LedgerEntry.REFUND,
        idempotency_key=f"refund:{mallory.pk}",
        reason="Stripe refund while requests run",
    )
    [late] = send_all(servers, mallory, [ask("gpt-4o", "one more")])
    assert late.status_code == 402  # nothing is left to hold
    sender.join(30)
    assert [r.status_code for r in results] == [200] * 6
    assert_paid_for(
        "refund of $0.45 during 6 requests", "gpt-4o", mallory, before, vendors, results, refunded=-refund
    )
