"""Fallback across a slug's route chain, inside one request or one job.

Each live route is tried in order until one delivers: a failure or an empty delivery moves on
to the next route (and counts toward that route's cool-down); a content-policy refusal stops
the chain (another vendor of the same model would refuse too, and we do not shop for one).
The user sees one request, our slug and a stable price; route identifiers stay in logs.
"""

import logging
from dataclasses import dataclass, field

from gpuniq_site.errors import ApiError
from llm import route_health
from llm.catalog import ModelInfo

from . import routes
from .providers.base import (
    Deadline,
    GeneratedImage,
    GeneratedVideo,
    ImageSpec,
    Route,
    UpstreamError,
    VideoSpec,
    redact,
)

log = logging.getLogger("gpuniq.media.chain")
MIN_ATTEMPT_SECONDS = 1.0  # no new route is started with less of the budget left

_GENERIC = {
    "timeout": "the provider did not finish in time",
    "rate_limited": "the provider is rate limiting",
    "auth": "the provider is misconfigured",
    "connect": "the provider could not be reached",
    "malformed": "the provider sent an unusable reply",
    "no_output": "the provider returned nothing",
}


@dataclass
class Delivered:
    route: Route
    attempts: int
    simulated: bool
    images: list[GeneratedImage] = field(default_factory=list)
    video: GeneratedVideo | None = None


async def generate_images(spec: ImageSpec, model: ModelInfo) -> Delivered:
    async def attempt(route: Route) -> Delivered:
        images = await routes.adapter(route, "image").generate(spec, route)
        if not images:
            raise UpstreamError("no_output", "the provider returned no image")
        return Delivered(route, 0, routes.is_sandbox(route), images=images[: spec.n])

    return await _run(model, attempt, "image", spec.deadline)


async def generate_video(spec: VideoSpec, model: ModelInfo, keep=None) -> Delivered:
    """`keep(video, route)` stores the delivery inside the attempt: if it fails, the next route runs."""

    async def attempt(route: Route) -> Delivered:
        video = await routes.adapter(route, "video").generate(spec, route)
        if video is None or not (video.data or video.url):
            raise UpstreamError("no_output", "the provider returned no video")
        if keep is not None:
            await keep(video, route)
        return Delivered(route, 0, routes.is_sandbox(route), video=video)

    return await _run(model, attempt, "video", spec.deadline)


async def _run(model: ModelInfo, attempt, kind: str, deadline: Deadline) -> Delivered:
    chain = await routes.ordered_routes(model)
    if not chain:
        raise ApiError("model_not_found", model=model.slug, meta={"model": model.slug})
    last: tuple[Route, UpstreamError] | None = None
    for number, route in enumerate(chain, start=1):
        try:
            delivered = await attempt(route)
            delivered.attempts = number
            return delivered
        except UpstreamError as error:
            level = logging.ERROR if error.kind == "auth" else logging.WARNING
            log.log(level, "%s route %s failed for %s: %s", kind, route, model.slug, error)
            last = (route, error)
            if error.kind == "content_policy":
                break
            await route_health.record_failure(str(route))
            if deadline.remaining() < MIN_ATTEMPT_SECONDS:  # the budget is spent: stop trying
                raise ApiError("upstream_timeout", meta={"attempts": number}) from None
    assert last is not None  # the chain had a route, and each one tried failed
    raise user_error(last[1], last[0], model.slug, kind, attempts=number)


def user_error(error: UpstreamError, route: Route, slug: str, kind: str, *, attempts: int) -> ApiError:
    """What the user sees: our codes, our slug, no vendor or route names."""
    message = redact(error.message, route, slug)
    meta = {"attempts": attempts}
    if error.kind == "content_policy":
        return ApiError("content_policy_violation", reason=message, meta=meta)
    if error.kind == "no_output":
        return ApiError("no_output_delivered", kind=kind, meta=meta)
    if error.kind == "bad_request" and attempts == 1:
        return ApiError(
            "invalid_parameter",
            f"The model provider rejected the request: {message}",
            field="request",
            reason=message,
            meta={**meta, "field": "request"},
        )
    reason = (
        message
        if error.kind in ("bad_request", "server", "not_found") and message
        else _GENERIC.get(error.kind, "the provider failed")
    )
    if attempts > 1:
        return ApiError("all_routes_failed", model=slug, reason=reason, meta=meta)
    if error.kind == "timeout":
        return ApiError("upstream_timeout", meta=meta)
    if error.kind == "rate_limited":
        headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else None
        return ApiError("upstream_rate_limited", meta=meta, headers=headers)
    return ApiError("upstream_error", reason=reason, meta=meta)
