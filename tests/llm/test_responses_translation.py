"""The Responses door's translation for vendors without a Responses API, over a socket with the
official SDK: reasoning becomes reasoning items (and summary events), images and earlier turns
become the vendor's message parts, a cut-off reply is `incomplete`, a vendor failing mid-stream
ends the stream with response.failed and costs only what was produced."""

import base64
import io
from decimal import Decimal

import openai
import pytest
from PIL import Image

from ..conftest import make_user, usage_rows


@pytest.fixture
def kim(committed):
    # Kim: $5, uses the Responses API with non-OpenAI models.
    return make_user("kim", "5")


def sdk(server, user):
    return openai.OpenAI(api_key=user.raw_key, base_url=f"{server}/v1/openai", max_retries=0)


def png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_reasoning_becomes_a_reasoning_item_before_the_message(api_server, kim, vendors):
    resp = sdk(api_server, kim).responses.create(
        model="gemini-2.5-flash", input="why is the sky blue", reasoning={"effort": "low", "summary": "auto"}
    )
    assert [item.type for item in resp.output] == ["reasoning", "message"]
    assert resp.output[0].summary[0].text.startswith("Thinking about:")
    assert resp.output_text == "Echo: why is the sky blue"
    [row] = usage_rows(kim)
    assert resp.usage.output_tokens_details.reasoning_tokens == row.reasoning_tokens > 0


def test_streamed_reasoning_comes_as_summary_events(api_server, kim, vendors):
    events = list(
        sdk(api_server, kim).responses.create(model="gemini-2.5-flash", input="think out loud", stream=True)
    )
    kinds = [e.type for e in events]
    assert "response.reasoning_summary_text.delta" in kinds
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index("response.output_text.delta")
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary.startswith("Thinking about:")
    assert [i.type for i in events[-1].response.output] == ["reasoning", "message"]


def test_images_and_earlier_turns_reach_an_anthropic_model(api_server, kim, vendors):
    resp = sdk(api_server, kim).responses.create(
        model="claude-haiku-4-5",
        input=[
            {"role": "user", "content": "remember the colour"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is in this image"},
                    {"type": "input_image", "image_url": png_data_url()},
                ],
            },
        ],
    )
    sent = vendors["anthropic"].requests[-1]["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[-1]["content"]] == ["text", "image"]
    assert sent[-1]["content"][1]["source"]["media_type"] == "image/png"
    assert resp.output_text == "Echo: what is in this image"


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
def test_a_reply_cut_by_max_output_tokens_is_incomplete(api_server, kim, vendors, model):
    resp = sdk(api_server, kim).responses.create(
        model=model, input="one two three four five six", max_output_tokens=2
    )
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output_text == "Echo: one"


def test_a_vendor_failing_mid_stream_ends_with_response_failed(api_server, kim, vendors):
    vendors["anthropic"].script("midstream_error")
    events = list(
        sdk(api_server, kim).responses.create(model="claude-haiku-4-5", input="a b c d e f g h", stream=True)
    )
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.code == "server_error"
    [row] = usage_rows(kim)
    assert row.status == "error"


def test_tools_without_a_chat_form_reach_only_openai_and_are_held_for(api_server, kim, vendors):
    from billing.models import Hold

    patch_tool = {"type": "custom", "name": "apply_patch", "description": "Apply a patch. " + "word " * 4000}
    client = sdk(api_server, kim)
    client.responses.create(model="gpt-4o", input="plain")
    client.responses.create(model="gpt-4o", input="with a freeform tool", tools=[patch_tool])
    assert vendors["openai"].requests[-1]["json"]["tools"] == [patch_tool]
    plain, with_tool = Hold.objects.filter(account=kim.account).order_by("id")
    # its ~4,000 tokens at $2.00/1M are in the bound (counted exactly; the plain prompt by its bytes,
    # a few over)
    assert with_tool.amount - plain.amount >= Decimal("0.0075")

    client.responses.create(model="claude-haiku-4-5", input="with a freeform tool", tools=[patch_tool])
    assert "tools" not in vendors["anthropic"].requests[-1]["json"]


def test_freeform_tool_calls_in_history_reach_a_translated_model(api_server, kim, vendors):
    resp = sdk(api_server, kim).responses.create(
        model="claude-haiku-4-5",
        input=[
            {"role": "user", "content": "patch the file"},
            {
                "type": "custom_tool_call",
                "call_id": "call_1",
                "name": "apply_patch",
                "input": "*** Begin Patch",
            },
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        ],
    )
    sent = vendors["anthropic"].requests[-1]["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0]["type"] == "tool_use" and sent[1]["content"][0]["input"] == {
        "input": "*** Begin Patch"
    }
    assert resp.output_text == "The tool said: Done!"
