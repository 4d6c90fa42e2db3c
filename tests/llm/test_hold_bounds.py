"""llm.bounds / llm.tokens: the hold covers everything that raises a vendor's bill for the request as sent."""

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from billing.pricing import CACHE_WRITE_1H, CACHE_WRITE_5M
from llm import tokens
from llm.bounds import GEMINI_THINKING_CEILING, IMAGE_TOKENS, STREAM_OUTPUT_RESERVE, route_output, chat_bound
from llm.catalog import snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(catalog_loaded, vendors_in_this_process):
    return snapshot().models


def ask(text: str = "hi", **extra) -> dict:
    return {"messages": [{"role": "user", "content": text}], **extra}


def test_every_candidate_is_in_the_output_bound(models):
    assert chat_bound(models["gpt-4o"], ask(n=16, max_tokens=215), stream=False).output_tokens == 16 * 215
    assert chat_bound(models["gemini-2.5-flash"], ask(n=3, max_tokens=100), stream=False).output_tokens >= 300


def test_the_larger_of_max_tokens_and_max_completion_tokens_bounds_the_output(models):
    body = ask(max_tokens=10, max_completion_tokens=5000)
    assert chat_bound(models["gpt-4o"], body, stream=False).output_tokens == 5000


def test_a_thinking_budget_is_added_to_the_anthropic_output_limit(models):
    body = ask(max_tokens=100, thinking={"type": "enabled", "budget_tokens": 30000})
    assert chat_bound(models["claude-sonnet-4-5"], body, stream=False).output_tokens == 30100


def test_gemini_thinking_without_a_budget_is_bounded_by_the_thinking_ceiling(models):
    model = models["gemini-2.5-pro"]
    assert route_output("gemini", ask(), 100, "gemini-2.5-pro", model) == 100 + GEMINI_THINKING_CEILING
    assert route_output("gemini", ask(reasoning_effort="low"), 100, "gemini-2.5-pro", model) == 100 + 1024
    # behind the OpenRouter fallback a Google model's thinking stays inside max_tokens: the Gemini
    # route decides
    assert chat_bound(model, ask(max_tokens=100), stream=False).output_tokens == 100 + GEMINI_THINKING_CEILING


def test_a_reasoning_model_behind_an_openai_compatible_vendor_may_think_beyond_max_tokens(models):
    model = models["deepseek-reasoner"]
    assert chat_bound(model, ask(max_tokens=100), stream=False).output_tokens == 100 + model.max_output


@pytest.mark.parametrize(
    "switch",
    [
        {"thinking": {"type": "enabled"}},
        {"enable_thinking": True},
        {"thinking_budget": 30000},
        {"reasoning": {"max_tokens": 30000}},
        {"reasoning": {"effort": "high"}},
        {"reasoning_effort": "high"},
    ],
)
def test_thinking_turned_on_for_a_hybrid_model_is_held_like_a_reasoning_model(models, switch):
    """deepseek-chat is listed as not reasoning, but DeepSeek's `thinking` (and the other vendors'
    switches, forwarded as they are) turns its chain of thought on."""
    model = models["deepseek-chat"]
    assert (
        chat_bound(model, ask(max_tokens=100, **switch), stream=False).output_tokens == 100 + model.max_output
    )


@pytest.mark.parametrize(
    "switch",
    [{}, {"thinking": {"type": "disabled"}}, {"enable_thinking": False}, {"reasoning_effort": "none"}],
)
def test_a_hybrid_model_without_thinking_is_held_at_its_limit(models, switch):
    model = models["deepseek-chat"]
    assert chat_bound(model, ask(max_tokens=100, **switch), stream=False).output_tokens == 100


def test_without_a_limit_the_default_is_held_and_is_what_the_providers_send(models):
    bound = chat_bound(models["gpt-4o"], ask(), stream=True)
    assert bound.output_tokens == bound.base_output == min(models["gpt-4o"].max_output, STREAM_OUTPUT_RESERVE)


def test_predicted_output_is_billable_output(models):
    body = ask(max_tokens=10, prediction={"type": "content", "content": "x" * 500})
    assert chat_bound(models["gpt-4o"], body, stream=False).output_tokens == 510


def test_images_count_by_the_vendor_formula_not_by_their_base64_size(models):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400_000}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, image, image]}]}
    plain = chat_bound(models["claude-sonnet-4-5"], ask("look"), stream=False).prompt_tokens
    assert (
        chat_bound(models["claude-sonnet-4-5"], body, stream=False).prompt_tokens
        < plain + 2 * IMAGE_TOKENS + 100
    )
    assert chat_bound(models["claude-sonnet-4-5"], body, stream=False).prompt_tokens >= 2 * IMAGE_TOKENS


@pytest.mark.parametrize("slug", ["claude-sonnet-4-5", "gemini-2.5-pro"])
@pytest.mark.parametrize("media_type", ["application/pdf", "video/mp4", "Application/PDF"])
def test_a_file_sent_as_an_image_part_is_held_as_a_file(models, slug, media_type):
    """The translators send a non-image data URL in an image part as what it is (Anthropic's
    document block, Gemini's inlineData), billed by its pages: held as a file, the whole window."""
    model = models[slug]
    part = {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,JVBERi0xLjQK"}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "read"}, part]}]}
    assert chat_bound(model, body, stream=False).prompt_tokens == model.context_window
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]}
    assert chat_bound(model, body, stream=False).prompt_tokens < IMAGE_TOKENS + 200  # an image stays one


def test_anthropic_cache_writes_are_held_at_their_premium(models):
    def part(ttl=None):
        control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
        return {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "doc", "cache_control": control}]}
            ]
        }

    assert chat_bound(models["claude-sonnet-4-5"], ask("doc"), stream=False).prompt_price_factor == 1
    assert chat_bound(models["claude-sonnet-4-5"], part(), stream=False).prompt_price_factor == CACHE_WRITE_5M
    assert (
        chat_bound(models["claude-sonnet-4-5"], part("1h"), stream=False).prompt_price_factor
        == CACHE_WRITE_1H
    )


def test_a_prompt_larger_than_the_context_window_is_bounded_by_the_window(models):
    model = models["claude-sonnet-4-5"]
    huge = ask("y" * (model.context_window * 2))
    assert chat_bound(model, huge, stream=False).prompt_tokens == model.context_window


def test_openai_prompts_are_counted_exactly_and_stay_above_the_vendors_count(models):
    text = " ".join(["hello"] * 10_000)
    bound = chat_bound(models["gpt-4o"], ask(text), stream=False).prompt_tokens
    counted = tokens.counted_prompt_tokens(ask(text))
    assert counted <= bound < counted + 200  # exact, not the 60,000 bytes


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_the_byte_bound_is_never_below_the_exact_count(text):
    body = ask(text)
    assert tokens.counted_prompt_tokens(body) <= tokens.prompt_bound(
        body, image_tokens=0, context_window=None
    )
    assert tokens.counted_prompt_tokens(body) <= tokens.prompt_bound(
        body, image_tokens=0, context_window=None, exact=True
    )


def test_the_vendored_tokenizer_is_the_published_o200k_base():
    assert tokens.exact_count("Hello, world!") == 4
    assert json.dumps(tokens.o200k().encode("tiktoken is great!")) == "[83, 8251, 2488, 382, 2212, 0]"
    assert Decimal(tokens.exact_count("")) == 0


def test_a_dearer_service_tier_than_the_catalog_prices_is_refused():
    from gpuniq_site.errors import ApiError
    from llm.validation import validate_chat

    with pytest.raises(ApiError) as refused:
        validate_chat(ask(model="gpt-4o", service_tier="priority"))
    assert refused.value.code == "unsupported_parameter" and refused.value.meta == {"field": "service_tier"}
    assert validate_chat(ask(model="gpt-4o", service_tier="flex"))[0] == "gpt-4o"


@pytest.mark.parametrize(
    "field, value",
    [
        ("plugins", [{"id": "web", "max_results": 10}]),  # OpenRouter: web results per 1,000
        ("models", ["anthropic/claude-opus-4.7"]),  # OpenRouter: fallbacks to a dearer model
        ("web_search_options", {"search_context_size": "high"}),  # fees per search
        ("search_parameters", {"mode": "on", "max_search_results": 30}),  # xAI Live Search, per source
    ],
)
def test_fields_a_vendor_bills_beyond_tokens_are_refused_before_any_hold(field, value):
    from gpuniq_site.errors import ApiError
    from llm.validation import validate_chat

    with pytest.raises(ApiError) as refused:
        validate_chat(ask(model="deepseek-v4-pro", **{field: value}))
    assert refused.value.code == "unsupported_parameter" and refused.value.meta == {"field": field}


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search"},  # xAI: per call, and the results grow the context
        {"type": "x_search"},
        {"type": "code_execution"},
        {"type": "collections_search", "collection_ids": ["c1"]},
        {"type": "web_search_preview"},  # OpenAI's hosted tools
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "mcp", "server_label": "x", "server_url": "https://mcp.example.invalid"},
        {"type": "openrouter:web_search"},
    ],
)
def test_a_tool_the_vendor_runs_and_bills_per_call_is_refused_before_any_hold(tool):
    from gpuniq_site.errors import ApiError
    from llm.validation import validate_chat

    function = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(ApiError) as refused:
        validate_chat(ask(model="grok-4", tools=[function, tool]))
    assert refused.value.code == "unsupported_parameter" and refused.value.meta == {"field": "tools[1]"}
    assert (
        validate_chat(ask(model="grok-4", tools=[function, {"type": "custom", "name": "c"}]))[0] == "grok-4"
    )


def native(**extra) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "doc"}],
        **extra,
    }


def test_a_request_level_cache_control_is_held_at_its_premium(models):
    # Anthropic's automatic caching: cache_control on the request writes the whole prompt
    model = models["claude-sonnet-4-5"]
    body = native(cache_control={"type": "ephemeral", "ttl": "1h"})
    assert (
        chat_bound(model, ask("doc"), stream=False, anthropic_body=body).prompt_price_factor == CACHE_WRITE_1H
    )
    body = native(cache_control={"type": "ephemeral"})
    assert (
        chat_bound(model, ask("doc"), stream=False, anthropic_body=body).prompt_price_factor == CACHE_WRITE_5M
    )


def test_a_vendor_defined_tool_is_held_with_the_definition_the_vendor_adds(models):
    # computer use: 735 tokens of tool definition and a 499-token system prompt Anthropic adds
    model = models["claude-sonnet-4-5"]
    computer = {
        "type": "computer_20250124",
        "name": "computer",
        "display_width_px": 1024,
        "display_height_px": 768,
    }
    custom = {"name": "computer", "input_schema": {"type": "object"}}
    typed = chat_bound(model, ask("doc"), stream=False, anthropic_body=native(tools=[computer])).prompt_tokens
    plain = chat_bound(model, ask("doc"), stream=False, anthropic_body=native(tools=[custom])).prompt_tokens
    assert typed - plain >= 735 + 499
