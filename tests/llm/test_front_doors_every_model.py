"""Both new front doors stand in front of every chat model in the catalog (issue #15): the
Anthropic Messages API (plain and streamed, with the official `anthropic` SDK) and the OpenAI
Responses API (with the official `openai` SDK), each answered by the model's own first route,
billed, and listed by the Messages door's GET /v1/models."""

import tomllib
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest

from ..conftest import balance_of, make_user, usage_rows

CATALOG = tomllib.loads((Path(__file__).resolve().parents[2] / "llm" / "catalog.toml").read_text())
CHAT = {m["slug"]: m["routes"][0]["provider"] for m in CATALOG["models"] if m["kind"] == "chat"}
pytestmark = pytest.mark.e2e


def _answered_by_first_route(user, slug: str, endpoint: str, stream: bool) -> None:
    [row] = usage_rows(user)
    assert (row.endpoint, row.status, row.stream) == (endpoint, "ok", stream)
    assert row.route.split(":")[0] == CHAT[slug], row.route  # not a fallback
    assert Decimal(5) - balance_of(user) == row.cost_usd > 0


@pytest.mark.parametrize("slug", sorted(CHAT))
def test_every_chat_model_answers_through_messages_and_responses(api_server, committed, vendors, slug):
    text = f"hello {slug}"
    # one user per request ($5 each: a reasoning model's hold covers thinking beyond max_tokens),
    # so each usage row and charge stands alone
    plain, streamed, responder = (make_user(label, "5") for label in ("msg", "msg-stream", "resp"))

    def messages(user):
        return anthropic.Anthropic(
            api_key=user.raw_key, base_url=f"{api_server}/v1/anthropic", max_retries=0
        ).messages

    ask = {"model": slug, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    message = messages(plain).create(**ask)
    assert message.model == slug and message.content[-1].text == f"Echo: {text}"
    _answered_by_first_route(plain, slug, "anthropic_messages", False)

    with messages(streamed).stream(**ask) as events:
        assert "".join(events.text_stream) == f"Echo: {text}"
    _answered_by_first_route(streamed, slug, "anthropic_messages", True)

    sdk = openai.OpenAI(api_key=responder.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    response = sdk.responses.create(model=slug, input=text, max_output_tokens=64)
    assert response.status == "completed" and response.output_text == f"Echo: {text}"
    _answered_by_first_route(responder, slug, "responses", False)

    models = anthropic.Anthropic(api_key=plain.raw_key, base_url=f"{api_server}/v1/anthropic").models
    assert slug in {m.id for m in models.list().data}  # and the Messages door lists it
