"""Model lists: OpenAI's list object, the native wrapped list with prices, and the public catalog."""

from django.views.decorators.http import require_GET

from accounts.guard import key_required
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import json_response, native_ok

from ..catalog import ModelInfo, asnapshot

CREATED = 1735689600  # 2025-01-01: OpenAI's list object needs a `created`; ours is fixed


def _public(model: ModelInfo) -> dict:
    data = {
        "id": model.slug,
        "name": model.name,
        "vendor": model.vendor,
        "kind": model.kind,
        "category": model.category,
        "pricing": model.price_dict(),
        "capabilities": list(model.capabilities),
        "available": model.available,
    }
    if model.kind == "chat":
        data.update(
            context_window=model.context_window, max_output_tokens=model.max_output, reasoning=model.reasoning
        )
    if model.kind == "video":
        options = model.video_options
        data["options"] = {
            k: options[k]
            for k in (
                "durations",
                "duration_range",
                "default_duration",
                "resolutions",
                "default_resolution",
                "aspect_ratios",
                "audio",
                "modes",
                "default_mode",
                "tasks",
            )
            if k in options
        }
    return data


def _openai_model(model: ModelInfo) -> dict:
    return {"id": model.slug, "object": "model", "created": CREATED, "owned_by": model.vendor}


@require_GET
@key_required
async def openai_models(request):
    """The models this key may call: available ones, within the key's allow-list."""
    snap = await asnapshot()
    may_use = request.principal.may_use
    data = [_openai_model(m) for m in snap.models.values() if m.available and may_use(m.slug)]
    return json_response({"object": "list", "data": data})


@require_GET
@key_required
async def openai_model(request, model_id: str):
    """OpenAI's models.retrieve: one model object, or 404 for one this key cannot call."""
    model = (await asnapshot()).models.get(model_id)
    if model is None or not model.available or not request.principal.may_use(model_id):
        raise ApiError("model_not_found", model=model_id[:100], meta={"model": model_id[:100]})
    return json_response(_openai_model(model))


@require_GET
@key_required
async def native_models(request):
    snap = await asnapshot()
    models = [_public(m) for m in snap.models.values() if m.available]
    return native_ok(
        request, {"models": models, "default_model": snap.default_chat_model, "count": len(models)}
    )


@require_GET
async def public_catalog(request):
    """No key needed: the whole catalog with prices, including models without a configured route."""
    snap = await asnapshot()
    models = [_public(m) for m in snap.models.values()]
    return native_ok(
        request, {"models": models, "default_model": snap.default_chat_model, "count": len(models)}
    )
