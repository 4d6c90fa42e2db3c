"""The image response's `size` is the size of the image delivered, not the size asked for (a vendor
may return another size: xAI's images are always 1024x768, OpenAI caps a side)."""

import base64
import io

import openai
import pytest
from PIL import Image

from ..conftest import make_user


@pytest.fixture
def jack(committed):
    # Jack: $5, generates images.
    return make_user("jack", "5")


def pixels(b64: str) -> str:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        return f"{img.width}x{img.height}"


@pytest.mark.parametrize("model, asked", [("grok-4-image", "1024x1024"), ("gpt-image-2", "1536x1024")])
def test_size_is_what_was_delivered(api_server, jack, vendors, model, asked):
    client = openai.OpenAI(api_key=jack.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    raw = client.images.with_raw_response.generate(
        model=model, prompt="a red square", size=asked, response_format="b64_json"
    )
    body = raw.http_response.json()
    delivered = pixels(body["data"][0]["b64_json"])
    assert delivered != asked  # the fakes deliver another size, as these vendors do
    assert body["size"] == delivered
