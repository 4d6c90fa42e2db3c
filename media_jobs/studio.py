"""The studio's operations: the form's fields as the image/video jobs API's body, the price of a
configuration (billing.pricing through the same functions the kickoff holds with), kickoff through
media_jobs.jobs and polls through media_jobs.job_reads (so a job is charged once, by whichever
poll reads its completion first), and the gallery of the user's charged results.
"""

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q

from accounts.keys import Principal
from billing.pricing import image_cost
from gpuniq_site.errors import ApiError
from llm.catalog import ModelInfo, snapshot

from . import jobs, price_covers, routes, storage
from .models import MediaAsset, MediaJob
from .validation import MAX_IMAGES, NANO_BANANA, digits
from .video_options import resolve

KINDS = (MediaJob.IMAGE, MediaJob.VIDEO)
IMAGE_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536", "2048x2048")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
GALLERY_SIZE = 24
REQUEST_ID_WIDTH = 64  # the request_id columns: the hold's, the job's, the usage row's
ESTIMATE_PROMPT = "(estimate)"  # the price does not depend on the prompt
ESTIMATE_INPUT = "https://example.invalid/input"  # never fetched: estimates only resolve options


def models_for(principal: Principal, kind: str) -> list[ModelInfo]:
    """Image: the Nano Banana models (the image-jobs API's); video: every available video model."""
    found = []
    for m in snapshot().models.values():
        if m.kind != kind or not principal.may_use(m.slug) or not routes.live_routes(m):
            continue
        if kind == MediaJob.VIDEO or NANO_BANANA.match(m.slug):
            found.append(m)
    return found


def sizes_for(model: ModelInfo | None) -> tuple[str, ...]:
    """The size choices whose output the model's price covers."""
    if model is None or model.kind != MediaJob.IMAGE:
        return IMAGE_SIZES
    return tuple(s for s in IMAGE_SIZES if s == "auto" or not price_covers.refusal(model, s))


def pick_model(principal: Principal, kind: str, slug: str | None) -> ModelInfo | None:
    choices = models_for(principal, kind)
    return next((m for m in choices if m.slug == slug), choices[0] if choices else None)


def _count(value) -> int:
    count = digits(str(value or ""))
    return count if count is not None and 1 <= count <= MAX_IMAGES else 1


def job_body(kind: str, data) -> dict:
    """The API body from the form (QueryDict or dict); blank fields are left out (model defaults)."""
    body = {"model": data.get("model") or "", "prompt": data.get("prompt") or ""}
    if kind == MediaJob.IMAGE:
        for name in ("size", "output_format"):
            if data.get(name):
                body[name] = data[name]
        if data.get("input_image"):
            body["input_images"] = [data["input_image"]]
        return body
    for name in ("resolution", "aspect_ratio", "mode", "image_url"):
        if data.get(name):
            body[name] = data[name]
    if data.get("duration"):  # anything but a number goes as typed: the API's validation refuses it
        seconds = digits(str(data["duration"]))
        body["duration"] = data["duration"] if seconds is None else seconds
    body["audio"] = data.get("audio") in ("on", "true", "1")
    return body


@dataclass
class Estimate:
    total: Decimal | None
    each: Decimal | None
    count: int
    problem: str = ""


def estimate(principal: Principal, kind: str, data) -> Estimate:
    """What the kickoff would hold (and a completed job charges): the API's own pricing path."""
    model = pick_model(principal, kind, data.get("model"))
    if model is None:
        return Estimate(None, None, 0, "No model of this kind is available.")
    count = _count(data.get("n")) if kind == MediaJob.IMAGE else 1
    if kind == MediaJob.IMAGE:
        each = image_cost(model.per_image or Decimal(0), 1)
        problem = price_covers.refusal(model, data.get("size") or None)
        if problem:  # the kickoff would refuse it: the price does not cover this size
            return Estimate(None, None, count, problem)
        return Estimate(image_cost(model.per_image or Decimal(0), count), each, count)
    body = {**job_body(kind, data), "model": model.slug, "prompt": ESTIMATE_PROMPT}
    tasks = model.video_options.get("tasks") or ["t2v"]
    if "t2v" not in tasks:  # the price does not depend on the input either: stand-ins pass validation
        body.setdefault("image_url", ESTIMATE_INPUT)
        if "v2v" in tasks:
            body.setdefault("video_url", ESTIMATE_INPUT)
    try:
        each = resolve(model, body).cost(model)
    except ApiError as error:
        return Estimate(None, None, 1, error.message)
    return Estimate(each, each, 1)


async def start(principal: Principal, kind: str, data, request_id: str) -> list[MediaJob]:
    """Kick off the job(s): an image batch of n is n jobs of one image (the jobs API's rule)."""
    body = job_body(kind, data)
    if kind == MediaJob.VIDEO:
        return [await jobs.start_video_job(principal, body, request_id=request_id, key="")]
    started = []
    for index in range(_count(data.get("n"))):
        each = image_request_id(request_id, index)
        started.append(await jobs.start_image_job(principal, body, request_id=each, key=""))
    return started


def image_request_id(request_id: str, index: int) -> str:
    """The request id of the batch's `index`th image: the base cut so that the suffix fits the
    columns, which a 64-character X-Request-Id fills alone (unique per image: the suffix differs)."""
    suffix = f"-{index}"
    return request_id[: REQUEST_ID_WIDTH - len(suffix)] + suffix


def unfinished(user_id: int) -> list[MediaJob]:
    """Jobs a poll still has to see: running, or completed but not yet read (so not yet charged)."""
    pending = Q(status__in=MediaJob.ACTIVE) | Q(status=MediaJob.COMPLETED, charged_at__isnull=True)
    return list(MediaJob.objects.filter(pending, user_id=user_id).order_by("-created_at")[:10])


@dataclass
class Tile:
    asset: MediaAsset
    url: str
    cost: Decimal | None

    @property
    def download_name(self) -> str:
        return storage.download_name(self.asset.prompt, self.asset.model, self.asset.path)

    @property
    def download_url(self) -> str:
        return f"{self.url}?{urlencode({'name': self.download_name})}"


def gallery(user_id: int) -> list[Tile]:
    """The user's results: files of charged jobs (and of synchronous generations, paid at once).
    A completed job nobody has read yet is not shown: it is delivered, and charged, by a poll."""
    assets = (
        MediaAsset.objects.filter(user_id=user_id)
        .filter(Q(job__isnull=True) | Q(job__charged_at__isnull=False))
        .select_related("job")
        .order_by("-created_at")[:GALLERY_SIZE]
    )
    return [Tile(a, storage.signed_url(a.path), a.job.cost_usd if a.job else None) for a in assets]


def kind_of(job_id: str) -> str:
    for kind, prefix in MediaJob.PREFIX.items():
        if job_id.startswith(prefix):
            return kind
    raise ApiError("job_not_found")
