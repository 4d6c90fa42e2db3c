"""Copy-paste snippets for the quick-start page, written for this site's base URL.

Content follows the public API docs (OpenAI-compatible surface at /v1/openai, Anthropic Messages at
/v1/anthropic, native at /v1/llm).
Snippets read the key from $GPUNIQ_API_KEY: the raw key is shown once at creation and never again.
"""

from dataclasses import dataclass, replace

DEFAULT_MODEL = "claude-haiku-4-5"


@dataclass(frozen=True)
class Snippet:
    id: str
    label: str
    language: str
    code: str
    note: str = ""


_TEMPLATES = [
    Snippet(
        "curl",
        "curl",
        "bash",
        """curl {openai_base}/chat/completions \\
  -H "Authorization: Bearer $GPUNIQ_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": "{model}",
    "messages": [{{"role": "user", "content": "Write a binary search in Rust."}}]
  }}'

# Native API: balance in USD
curl {native_base}/balance -H "X-API-Key: $GPUNIQ_API_KEY\"""",
    ),
    Snippet(
        "python",
        "Python (OpenAI SDK)",
        "python",
        """import os
from openai import OpenAI

client = OpenAI(
    api_key=os.environ["GPUNIQ_API_KEY"],
    base_url="{openai_base}",
)
resp = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Write a binary search in Rust."}}],
)
print(resp.choices[0].message.content)""",
        note="pip install openai",
    ),
    Snippet(
        "node",
        "JavaScript (OpenAI SDK)",
        "javascript",
        """import OpenAI from "openai";

const client = new OpenAI({{
  apiKey: process.env.GPUNIQ_API_KEY,
  baseURL: "{openai_base}",
}});
const resp = await client.chat.completions.create({{
  model: "{model}",
  messages: [{{ role: "user", content: "Write a binary search in Rust." }}],
}});
console.log(resp.choices[0].message.content);""",
        note="npm install openai",
    ),
    Snippet(
        "claude-code",
        "Claude Code",
        "bash",
        """export ANTHROPIC_BASE_URL={anthropic_base} ANTHROPIC_AUTH_TOKEN=$GPUNIQ_API_KEY
claude --model {model}   # or any chat slug, e.g. --model gpt-5.2""",
        note="Claude models are forwarded to Anthropic as sent; other models are translated. "
        "All tokens are billed to your GPUniq balance; no Anthropic account needed.",
    ),
    Snippet(
        "anthropic",
        "Python (Anthropic SDK)",
        "python",
        """import os
from anthropic import Anthropic

client = Anthropic(api_key=os.environ["GPUNIQ_API_KEY"], base_url="{anthropic_base}")
msg = client.messages.create(
    model="{model}", max_tokens=1024,
    messages=[{{"role": "user", "content": "Write a binary search in Rust."}}],
)
print(msg.content[0].text)""",
        note="pip install anthropic",
    ),
    Snippet(
        "codex",
        "Codex CLI",
        "toml",
        "# ~/.codex/config.toml, then: codex -m gpt-5.2-codex   (or any chat slug, e.g. {model})\n"
        'model_provider = "gpuniq"\n'
        'model_providers.gpuniq = {{ name = "GPUniq", base_url = "{openai_base}", '
        'env_key = "GPUNIQ_API_KEY", wire_api = "responses" }}',  # two lines, as in the README
        note="Codex speaks the Responses API at /v1/openai/responses; OpenAI models are forwarded, "
        "others translated.",
    ),
    Snippet(
        "cursor",
        "Cursor",
        "text",
        """Settings → Models → Override OpenAI Base URL

Base URL: {openai_base}
API Key:  your gpuniq_… key
Model:    {model}   (or any slug from /v1/openai/models)""",
    ),
    Snippet(
        "aider",
        "Aider / Continue",
        "bash",
        """export OPENAI_API_KEY=$GPUNIQ_API_KEY
export OPENAI_BASE_URL={openai_base}
aider --model {model}""",
        note="Any tool that accepts OPENAI_BASE_URL works the same way.",
    ),
]


def snippets(base_url: str, model: str = DEFAULT_MODEL) -> list[Snippet]:
    """The snippets with this site's URLs and a default model filled in."""
    base = base_url.rstrip("/")
    values = {
        "openai_base": f"{base}/v1/openai",
        "anthropic_base": f"{base}/v1/anthropic",
        "native_base": f"{base}/v1/llm",
        "model": model,
    }
    return [replace(s, code=s.code.format(**values)) for s in _TEMPLATES]
