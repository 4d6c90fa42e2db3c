"""The models page for people: the catalog with search and filters, prices in the units people
compare (per 1M tokens, per image, per second of video), context windows and availability.
Server-rendered; htmx swaps only the results when a filter changes."""

from dataclasses import dataclass
from decimal import Decimal

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.web import wants_fragment
from billing.money import format_usd

from .catalog import ModelInfo, snapshot

KINDS = [("", "Any kind"), ("chat", "Chat"), ("image", "Image"), ("video", "Video")]
CAPABILITIES = [
    ("", "Any capability"),
    ("vision", "Vision"),
    ("tools", "Tools"),
    ("reasoning", "Reasoning"),
    ("image_input", "Image input"),
    ("edit", "Image editing"),
]


@dataclass(frozen=True)
class Row:
    model: ModelInfo
    prices: list[tuple[str, str]]  # (label, "$x.xx unit")
    per_second: Decimal | None


def _usd(value: Decimal | None) -> str:
    return "–" if value is None else format_usd(value)


def _prices(model: ModelInfo) -> tuple[list[tuple[str, str]], Decimal | None]:
    if model.kind == "chat":
        prices = [
            ("Input", f"{_usd(model.input_per_mtok)} / 1M tokens"),
            ("Output", f"{_usd(model.output_per_mtok)} / 1M tokens"),
        ]
        if model.cached_input_per_mtok is not None:
            prices.append(("Cached input", f"{_usd(model.cached_input_per_mtok)} / 1M tokens"))
        return prices, None
    if model.kind == "image":
        return [("Image", f"{_usd(model.per_image)} / image")], None
    seconds = model.video_options.get("default_duration") or 0
    per_second = (
        (model.per_video / seconds).quantize(Decimal("0.0001")) if model.per_video and seconds else None
    )
    return [
        ("Video", f"{_usd(per_second)} / second"),
        ("Default clip", f"{_usd(model.per_video)} for {seconds} s"),
    ], per_second


def search(params) -> tuple[list[Row], dict]:
    """The catalog narrowed by the page's filters: q (name, slug or vendor), kind, vendor, capability,
    available."""
    models = sorted(snapshot().models.values(), key=lambda m: (m.kind, m.vendor, m.name))
    chosen = {name: (params.get(name) or "").strip()[:100] for name in ("q", "kind", "vendor", "capability")}
    chosen["available"] = params.get("available") == "1"
    q = chosen["q"].lower()
    rows = []
    for model in models:
        if q and q not in f"{model.slug} {model.name} {model.vendor}".lower():
            continue
        if chosen["kind"] and model.kind != chosen["kind"]:
            continue
        if chosen["vendor"] and model.vendor != chosen["vendor"]:
            continue
        if chosen["capability"] and chosen["capability"] not in model.capabilities:
            continue
        if chosen["available"] and not model.available:
            continue
        prices, per_second = _prices(model)
        rows.append(Row(model, prices, per_second))
    vendors = sorted({m.vendor for m in models})
    return rows, {**chosen, "vendors": vendors, "total": len(models)}


@require_GET
def models_page(request):
    rows, filters = search(request.GET)
    context = {"rows": rows, "filters": filters, "kinds": KINDS, "capabilities": CAPABILITIES}
    if wants_fragment(request) and request.htmx.target == "model-results":
        return render(request, "llm/_model_results.html", context)
    return render(request, "llm/models.html", context)
