"""Fake OpenAI Videos API (Sora) for loopback tests.

Wire format follows:
  * https://developers.openai.com/api/docs/guides/video-generation
    (POST /videos -> job; poll GET /videos/{id} until completed; download
    GET /videos/{id}/content; list; delete; remix)
  * https://developers.openai.com/api/reference/go/resources/videos and the
    generated Video schema (openai-client-base VideoResource): ``{"id", "object":
    "video", "model", "status": queued|in_progress|completed|failed, "progress",
    "created_at", "completed_at", "expires_at", "prompt", "size", "seconds"
    (string), "remixed_from_video_id", "error": {"code", "message"} | null}``
  * Create body (JSON or multipart): model (sora-2|sora-2-pro), prompt, seconds
    ("4"|"8"|"12"), size ("720x1280"|"1280x720"|"1024x1792"|"1792x1024"),
    input_reference (image file, multipart).

Faults (``script(name, times=1, on="create"|"retrieve"|"content")`` or
``[[fault:name]]`` in the prompt): 500, 429, 400, slow act on the request;
content_policy -> 400 code ``moderation_blocked`` at create; job_failed -> the
job ends ``failed`` with an error object; never_finishes -> stays in_progress;
no_image -> completed but the content download is empty.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .media_common import (
    FakeMediaServer,
    FakeRequest,
    FakeResponse,
    image_info,
    json_response,
    make_image,
    make_mp4,
    new_id,
)
from .openai_images import check_bearer, openai_error, openai_http_fault

SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
SECONDS = ("4", "8", "12")


@dataclass
class VideoJob:
    obj: dict[str, Any]
    faults: set[str]
    created: float
    polls: int = 0
    input_reference: dict[str, Any] | None = None
    content: bytes | None = field(default=None, repr=False)


class FakeOpenAIVideo(FakeMediaServer):
    """Fake ``api.openai.com/v1/videos``.

    steps: GET /v1/videos/{id} polls answered queued/in_progress before completed
      (first poll queued, rest in_progress with rising progress).
    delay: seconds since create before completion is possible (both must hold).
    """

    primary_kind = "create"

    def __init__(self, *, steps: int = 2, delay: float = 0.0, **kw: Any):
        super().__init__(**kw)
        self.steps = steps
        self.delay = delay
        self.jobs: dict[str, VideoJob] = {}

    async def handle(self, req: FakeRequest) -> FakeResponse:
        parts = req.path.rstrip("/").split("/")[1:]  # ["v1", "videos", ...]
        if parts[:2] != ["v1", "videos"]:
            req.kind = "unknown"
            return openai_error(f"Invalid URL ({req.method} {req.path})", "invalid_request_error", 404)
        rest = parts[2:]
        req.kind = {
            ("POST", 0): "create",
            ("GET", 0): "list",
            ("GET", 1): "retrieve",
            ("DELETE", 1): "delete",
            ("GET", 2): "content",
            ("POST", 2): "remix",
        }.get((req.method, len(rest)), "unknown")
        if req.kind in ("content", "remix") and rest[1] != req.kind:
            req.kind = "unknown"
        if req.kind == "unknown":
            return openai_error(f"Invalid URL ({req.method} {req.path})", "invalid_request_error", 404)
        if (err := check_bearer(req, self.api_key)) is not None:
            return err
        params = (
            {k: v[-1] for k, v in req.form.fields.items()}
            if req.form is not None
            else dict(req.body)
            if isinstance(req.body, dict)
            else {}
        )
        faults = self.take_faults(req, params.get("prompt") if req.kind in ("create", "remix") else None)
        await self.apply_slow(faults)
        if (err := openai_http_fault(faults, self.retry_after)) is not None:
            return err
        if req.kind == "list":
            data = [self._view(j) for j in reversed(list(self.jobs.values()))]
            return json_response(
                {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        if req.kind == "create":
            return self._create(req, params, faults)
        job = self.jobs.get(rest[0])
        if job is None:
            return openai_error(
                f"Video with id '{rest[0]}' not found.",
                "invalid_request_error",
                404,
                "video_id",
                "video_not_found",
            )
        if req.kind == "retrieve":
            return self._retrieve(job)
        if req.kind == "delete":
            del self.jobs[rest[0]]
            return json_response({"id": rest[0], "object": "video.deleted", "deleted": True})
        if req.kind == "remix":
            params = {
                "model": job.obj["model"],
                "seconds": job.obj["seconds"],
                "size": job.obj["size"],
                **params,
            }
            return self._create(req, params, faults, remixed_from=rest[0])
        return self._content(job, req)

    # ---------------------------------------------------------------- create
    def _create(
        self, req: FakeRequest, p: dict[str, Any], faults: set[str], remixed_from: str | None = None
    ) -> FakeResponse:
        prompt = p.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return openai_error(
                "Missing required parameter: 'prompt'.",
                "invalid_request_error",
                400,
                "prompt",
                "missing_required_parameter",
            )
        seconds, size = str(p.get("seconds") or "4"), str(p.get("size") or "720x1280")
        if seconds not in SECONDS:
            return openai_error(
                f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.",
                "invalid_request_error",
                400,
                "seconds",
                "invalid_value",
            )
        if size not in SIZES:
            return openai_error(
                f"Invalid value: '{size}'. Supported values are: " + ", ".join(f"'{s}'" for s in SIZES) + ".",
                "invalid_request_error",
                400,
                "size",
                "invalid_value",
            )
        if "content_policy" in faults:
            return openai_error(
                "Your request was blocked by our moderation system.",
                "invalid_request_error",
                400,
                None,
                "moderation_blocked",
            )
        ref = None
        if req.form is not None and req.form.files_named("input_reference"):
            f = req.form.files_named("input_reference")[0]
            ref = {"filename": f.filename, "content_type": f.content_type, **image_info(f.data)}
        elif isinstance(p.get("input_reference"), dict):
            ref = dict(p["input_reference"])
        vid = new_id("video_")
        obj = {
            "id": vid,
            "object": "video",
            "model": str(p.get("model") or "sora-2"),
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "completed_at": None,
            "expires_at": None,
            "prompt": prompt,
            "size": size,
            "seconds": seconds,
            "remixed_from_video_id": remixed_from,
            "error": None,
        }
        self.jobs[vid] = VideoJob(obj, faults, time.monotonic(), input_reference=ref)
        req.meta.update(video_id=vid, input_reference=ref, requested_size=size)
        return json_response(dict(obj))

    # ---------------------------------------------------------------- state
    def _advance(self, job: VideoJob) -> None:
        o = job.obj
        if o["status"] in ("completed", "failed"):
            return
        job.polls += 1
        done = job.polls > self.steps and time.monotonic() - job.created >= self.delay
        if "never_finishes" in job.faults:
            o.update(status="in_progress", progress=min(99, 10 * job.polls))
        elif done and "job_failed" in job.faults:
            o.update(
                status="failed",
                error={
                    "code": "video_generation_failed",
                    "message": "Video generation failed due to an internal error.",
                },
            )
        elif done:
            now = int(time.time())
            o.update(status="completed", progress=100, completed_at=now, expires_at=now + 3600)
        else:
            elapsed = time.monotonic() - job.created
            frac = min(
                job.polls / (self.steps + 1) if self.steps else 1.0,
                elapsed / self.delay if self.delay else 1.0,
            )
            queued = job.polls == 1 and (self.steps > 1 or elapsed < self.delay / 2)
            o.update(
                status="queued" if queued else "in_progress",
                progress=0 if queued else max(o["progress"], min(99, int(100 * frac))),
            )

    def _view(self, job: VideoJob) -> dict[str, Any]:
        return dict(job.obj)

    def _retrieve(self, job: VideoJob) -> FakeResponse:
        self._advance(job)
        return json_response(self._view(job))

    def _content(self, job: VideoJob, req: FakeRequest) -> FakeResponse:
        o = job.obj
        if o["status"] != "completed":
            return openai_error(
                f"Video is not ready yet, current status: {o['status']}.",
                "invalid_request_error",
                404,
                None,
                "video_not_ready",
            )
        variant = req.query.get("variant", "video")
        w, h = (int(x) for x in o["size"].split("x"))
        headers = {"x-fake-requested-size": o["size"]}
        if variant == "video":
            if job.content is None:
                job.content = (
                    b"" if "no_image" in job.faults else make_mp4(float(o["seconds"]), w, h, seed=o["prompt"])
                )
            return FakeResponse(200, job.content, {"content-type": "video/mp4", **headers})
        if variant == "thumbnail":
            return FakeResponse(
                200,
                make_image(w, h, o["prompt"], 0, "webp", self.max_side),
                {"content-type": "image/webp", **headers},
            )
        if variant == "spritesheet":
            return FakeResponse(
                200,
                make_image(w * 2, h * 2, o["prompt"], 1, "jpeg", self.max_side),
                {"content-type": "image/jpeg", **headers},
            )
        return openai_error(
            f"Invalid value: '{variant}'. Supported values are: 'video', 'thumbnail', and 'spritesheet'.",
            "invalid_request_error",
            400,
            "variant",
            "invalid_value",
        )
