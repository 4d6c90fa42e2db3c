"""How many prompt tokens a request can cost: proven upper bounds for holds, exact counts where a
vendor publishes its tokenizer.

The bound: every BPE or SentencePiece token stands for at least one byte of the text it encodes,
so a text's UTF-8 length bounds its token count. The prompt's text is everything in the request
body except inline image data (images are bounded by the vendor's per-image formula instead),
measured as the body's JSON (escapes only add bytes), plus the tokens a vendor adds to frame
each message and to present tools. Files (PDFs, documents) have no such bound: they count as a
whole context window.

Exact: OpenAI's models share the o200k_base encoding, published with tiktoken; its rank file is
vendored (llm/tokenizer_data, SHA-256 checked) so counting needs no network.
"""

import json
from functools import lru_cache
from pathlib import Path

O200K_FILE = Path(__file__).parent / "tokenizer_data" / "o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# tiktoken_ext.openai_public.o200k_base's split pattern (the encoding's spec, with its ranks)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

PER_MESSAGE = 8  # role and separator tokens a vendor adds around each message (OpenAI: 3-4)
PER_REQUEST = 64  # the reply primer and a system preamble
TOOLS_PREAMBLE = 1_000  # the text a vendor adds to present tools (Anthropic publishes 346 at most)
PER_TOOL = 32
# a vendor-defined tool (Anthropic's computer use, bash, text editor; OpenAI's shell, apply_patch)
# is sent as a type and a name, and presented with a definition the vendor adds: computer use is
# 735 tokens plus a 499-token system prompt, the text editor 700, bash 245 (Anthropic's tables)
PER_TYPED_TOOL = 2_000
UNTYPED_TOOLS = (None, "function", "custom", "namespace")
EXACT_ABOVE_BYTES = 4096
IMAGE_PARTS = ("image_url", "input_image", "image")
FILE_PARTS = ("file", "input_file", "document")


@lru_cache(maxsize=1)
def o200k():
    from tiktoken import Encoding
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(O200K_FILE), expected_hash=O200K_SHA256)
    return Encoding(
        name="o200k_base",
        pat_str=O200K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    )


def exact_count(text: str) -> int:
    """o200k_base tokens of `text` (OpenAI's encoding for GPT-4o, GPT-4.1, GPT-5 and the o-series)."""
    return len(o200k().encode_ordinary(text))


def _data_media_type(part: dict) -> str:
    """The media type of an image part's data URL, lower case ('' for any other URL)."""
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str) and url[:5].lower() == "data:":
        return url[5:].partition(",")[0].partition(";")[0].strip().lower()
    return ""


def _without_media(value, found: dict):
    """The value with inline image data cut out (counted in `found` instead). An image part whose
    data URL is not an image (a PDF, a video) is a file: the translators send it as one (Anthropic's
    document block, Gemini's inlineData of that type), and the vendor bills it by its pages."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in IMAGE_PARTS:
            media_type = _data_media_type(value)
            found["files" if media_type and not media_type.startswith("image/") else "images"] += 1
            return None
        if kind in FILE_PARTS:
            found["files"] += 1
            return None
        return {k: _without_media(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_media(v, found) for v in value]
    return value


def prompt_parts(body: dict) -> tuple[str, int, int]:
    """(the prompt's text as JSON, inline images, files) of a Chat Completions body."""
    found = {"images": 0, "files": 0}
    prompt = {
        k: _without_media(v, found) for k, v in body.items() if k not in ("model", "stream", "stream_options")
    }
    return json.dumps(prompt, ensure_ascii=False, separators=(",", ":")), found["images"], found["files"]


def framing(body: dict) -> int:
    tools = body.get("tools") or body.get("functions") or ()
    messages = body.get("messages") or ()
    base = PER_REQUEST + PER_MESSAGE * len(messages) if isinstance(messages, list) else PER_REQUEST
    if not isinstance(tools, list) or not tools:
        return base
    typed = sum(1 for t in tools if isinstance(t, dict) and t.get("type") not in UNTYPED_TOOLS)
    return base + TOOLS_PREAMBLE + PER_TOOL * len(tools) + PER_TYPED_TOOL * typed


def prompt_bound(body: dict, *, image_tokens: int, context_window: int | None, exact: bool = False) -> int:
    """At most how many prompt tokens the vendor can bill for `body` as sent. `exact`: the model
    uses o200k_base, so the text is counted rather than bounded by its bytes."""
    text, images, files = prompt_parts(body)
    if files and context_window:
        return context_window
    size = len(text.encode("utf-8", "surrogatepass"))
    # counting costs ~1 ms per 4 KB on the hot path; below that the byte bound holds a few cents at most
    counted = exact_count(text) if exact and size > EXACT_ABOVE_BYTES else size
    bound = counted + framing(body) + images * image_tokens
    return min(bound, context_window) if context_window else bound


def counted_prompt_tokens(body: dict) -> int:
    """A Chat Completions prompt's tokens as OpenAI counts them (its cookbook's rule: each
    message's text plus 3, 3 to prime the reply, tools as their JSON; images at 765, a 1024 px
    square in high detail): exact for OpenAI's models, an estimate for other vendors'."""
    total = 3
    images = 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        total += 3
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and part.get("type") in IMAGE_PARTS:
                        images += 1
                    elif isinstance(part, dict):
                        total += exact_count(str(part.get("text") or ""))
            elif isinstance(value, str):
                total += exact_count(value)
            elif value is not None:
                total += exact_count(json.dumps(value, ensure_ascii=False))
    if body.get("tools"):
        total += exact_count(json.dumps(body["tools"], ensure_ascii=False))
    return total + 765 * images
