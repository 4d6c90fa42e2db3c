"""Synchronous image generation (POST /v1/openai/images/generations and /v1/llm/images/generations).

validate → fetch reference images (safe_fetch) → hold price × n → the route chain within the
5-minute budget → re-encode to output_format → store the files → settle price × delivered →
one usage row. Fewer images than asked are billed as delivered; none is an error and costs
nothing; a client that hangs up before the reply pays nothing either.
"""

import asyncio
import base64
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from accounts.keys import Principal
from billing.pricing import image_cost
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.logs import request_id_var
from llm.catalog import ModelInfo, asnapshot

from . import chain, charging, price_covers, routes, storage
from .imaging import dimensions, reencode
from .inputs import fetch_images
from .models import MediaAsset
from .providers.base import Deadline, GeneratedImage, ImageSpec
from .validation import ImageRequest, check_image_model, parse_image_request, size_of


async def resolve_model(slug: str, principal: Principal, kind: str, *, endpoint: str) -> ModelInfo:
    """The model `slug` of `kind` if this key may use it; a 403 model_not_allowed is logged as a
    refused call of `endpoint` at cost 0 (request id: the one the response sends)."""
    model = (await asnapshot()).models.get(slug)
    if model is not None and model.kind != kind:
        raise ApiError("wrong_model_kind", model=slug, kind=model.kind)
    if model is None or not routes.live_routes(model):
        raise ApiError("model_not_found", model=slug, meta={"model": slug})
    if not principal.may_use(slug):
        await run_db(
            charging.usage_row,
            user_id=principal.user_id,
            key_id=principal.key_id,
            request_id=request_id_var.get(),
            endpoint=endpoint,
            model=slug,
            status="error",
            error_code="model_not_allowed",
        )
        raise ApiError("model_not_allowed", model=slug)
    return model


def requested_size(req: ImageRequest) -> tuple[int, int] | None:
    return req.size or size_of(routes.default_size(req.slug))


@dataclass
class Outcome:
    items: list[dict]
    requested: int
    cost: Decimal
    balance: Decimal
    output_format: str
    size: str | None
    simulated: bool


@dataclass
class _Run:
    principal: Principal
    model: ModelInfo
    req: ImageRequest
    hold_id: int
    request_id: str
    started: float

    def fail(self, code: str) -> None:
        charging.release(self.hold_id, f"{self.model.slug} images: {code}")
        charging.usage_row(
            user_id=self.principal.user_id,
            key_id=self.principal.key_id,
            request_id=self.request_id,
            endpoint="images",
            model=self.model.slug,
            status="error",
            error_code=code,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
        )


def encode_all(images: list[GeneratedImage], output_format: str) -> list[tuple[bytes, str, str | None]]:
    return [(*reencode(image.data, output_format), image.revised_prompt) for image in images]


async def generate(principal: Principal, body: dict, *, request_id: str) -> Outcome:
    req = parse_image_request(body)
    model = await resolve_model(req.slug, principal, "image", endpoint="images")
    check_image_model(model, req)
    req = price_covers.bound(model, req)  # before any hold or vendor call
    inputs = await fetch_images(req.input_images)
    amount = image_cost(model.per_image or Decimal(0), req.n)
    hold_id = await run_db(charging.hold, principal, amount, purpose="images", request_id=request_id)
    run = _Run(principal, model, req, hold_id, request_id, time.perf_counter())
    budget = settings.GPUNIQ_MEDIA_BUDGET_SECONDS
    spec = ImageSpec(
        slug=model.slug,
        prompt=req.prompt,
        n=req.n,
        size=requested_size(req),
        quality=req.quality,
        inputs=inputs,
        request_id=request_id,
        deadline=Deadline.after(budget),
    )
    try:
        async with asyncio.timeout(budget + 5):
            delivered = await chain.generate_images(spec, model)
        encoded = await asyncio.to_thread(encode_all, delivered.images, req.output_format)
    except ApiError as error:
        await run_db(run.fail, error.code)
        raise
    except TimeoutError:
        await run_db(run.fail, "upstream_timeout")
        raise ApiError("upstream_timeout") from None
    except asyncio.CancelledError:  # the client went away: nothing delivered, nothing charged
        await asyncio.shield(run_db(run.fail, "client_disconnected"))
        raise
    except Exception:
        await run_db(run.fail, "internal_error")
        raise
    return await run_db(_deliver, run, encoded, str(delivered.route), delivered.simulated, spec.size_text)


def _deliver(run: _Run, encoded: list, route: str, simulated: bool, size: str | None) -> Outcome:
    """Store the files, settle for what was delivered, write the usage row."""
    try:
        paths = [storage.save("generated", "image", data, mime) for data, mime, _ in encoded]
        MediaAsset.objects.bulk_create(
            MediaAsset(
                user_id=run.principal.user_id,
                kind="image",
                model=run.model.slug,
                path=path,
                mime_type=mime,
                size_bytes=len(data),
                prompt=run.req.prompt,
                request_id=run.request_id,
                simulated=simulated,
            )
            for path, (data, mime, _) in zip(paths, encoded)
        )
    except Exception:
        run.fail("internal_error")
        raise
    cost = image_cost(run.model.per_image or Decimal(0), len(encoded))
    charged = charging.settle(run.hold_id, cost, f"{run.model.slug} x{len(encoded)}") or Decimal(0)
    charging.usage_row(
        user_id=run.principal.user_id,
        key_id=run.principal.key_id,
        request_id=run.request_id,
        endpoint="images",
        model=run.model.slug,
        route=route,
        images=len(encoded),
        cost=charged,
        latency_ms=int((time.perf_counter() - run.started) * 1000),
    )
    items = [
        _item(data, mime, revised, path, run.req.response_format)
        for path, (data, mime, revised) in zip(paths, encoded)
    ]
    delivered = dimensions(encoded[0][0]) if encoded else None  # what was made, not what was asked
    return Outcome(
        items,
        run.req.n,
        charged,
        charging.available(run.principal.account_id),
        run.req.output_format,
        delivered or size,
        simulated,
    )


def _item(data: bytes, mime: str, revised: str | None, path: str, response_format: str) -> dict:
    item = (
        {"b64_json": base64.b64encode(data).decode()}
        if response_format == "b64_json"
        else {"url": storage.signed_url(path)}
    )
    item["mime_type"] = mime
    if revised:
        item["revised_prompt"] = revised
    return item
