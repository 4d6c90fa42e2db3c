"""Fit a canonical request to what its model accepts, from the catalog's capabilities.

OpenAI's reasoning models (o-series, gpt-5.x; capability `fixed_sampling`) answer 400 to
`max_tokens` and to sampling parameters. Every surface (OpenAI-compatible and native chat, chat
sessions, terminal commands, the Responses door) reaches the vendor through llm.gateway, which
applies this once per request, so they all behave the same: the limit is sent as
`max_completion_tokens` and the refused parameters are left out (as OpenRouter and LiteLLM's
drop_params do), instead of failing the request.
"""

from .catalog import ModelInfo
from .providers.base import ChatRequest

FIXED_SAMPLING = "fixed_sampling"
REFUSED = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
)


def fit(request: ChatRequest, model: ModelInfo) -> None:
    """Adjust `request` in place for `model` (a no-op for models without restrictions)."""
    if FIXED_SAMPLING not in getattr(model, "capabilities", ()):
        return
    body = {k: v for k, v in request.body.items() if k not in REFUSED}
    if "max_tokens" in body:
        legacy = body.pop("max_tokens")
        body.setdefault("max_completion_tokens", legacy)
    request.body = body
    if request.responses_body is not None:
        request.responses_body = {k: v for k, v in request.responses_body.items() if k not in REFUSED}
