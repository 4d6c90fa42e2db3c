"""Fake fal.ai queue API (https://queue.fal.run) for loopback tests.

Wire format follows:
  * https://fal.ai/docs/api-reference/inference-api  (model id = owner/app[/path];
    submit to the full id, but status/result/cancel URLs use only owner/app;
    status answers 202 while queued/running, 200 when COMPLETED)
  * https://docs.fal.ai/model-endpoints/queue  (endpoints, submit/status examples)
  * https://fal.ai/docs/inference-api/queue/result  (result returns the model's own
    status/body, including its error)
  * https://fal.ai/docs/errors  (model errors: ``{"detail": [{loc, msg, type, url,
    input}]}``; content_policy_violation is a 422)
  * https://docs.fal.ai/documentation/model-apis/request-errors
    (``{"detail": str, "error_type": str}`` + ``X-Fal-Error-Type`` header)
  * fal_client (github.com/fal-ai/fal, projects/fal_client/.../client.py): reads
    ``queue_position`` for IN_QUEUE and ``logs`` / ``metrics`` for later states.

fal never reports FAILED: a failed job goes to COMPLETED and the error surfaces
when the result is fetched (TanStack/ai#396). This fake adds ``error`` /
``error_type`` to such a COMPLETED status, as the fal CLI reads them.

Usage::

    with FakeFal(api_key="k", steps=2) as fal:
        r = httpx.post(f"{fal.base_url}/fal-ai/flux-2-pro", json={"prompt": "cat"},
                       headers={"Authorization": "Key k"})
        r.json()["status_url"]  # -> {base}/fal-ai/flux-2-pro/requests/<id>/status

Faults (``fal.script(name, times=1, on="submit"|"status"|"result")`` or
``[[fault:name]]`` in the prompt): 500, 429, 400, slow apply to the request
itself; content_policy (result -> 422), job_failed (result -> 503
runner_disconnected), no_image, partial, never_finishes are job properties set
at submit.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .media_common import (
    FakeMediaServer,
    FakeRequest,
    FakeResponse,
    IMAGE_MIME,
    json_response,
    make_image,
    make_mp4,
)

IMAGE_SIZE_PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_STATUS_RE = re.compile(r"^/([^/]+)/([^/]+)/requests/([^/]+)(/status|/cancel)?/?$")


def aspect_dims(aspect: str, long_side: int = 1024) -> tuple[int, int]:
    try:
        a, b = (float(x) for x in str(aspect).split(":"))
    except ValueError:
        return long_side, long_side
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


def requested_image_size(inp: dict[str, Any]) -> tuple[int, int]:
    size = inp.get("image_size")
    if isinstance(size, dict) and "width" in size and "height" in size:
        return int(size["width"]), int(size["height"])
    if isinstance(size, str) and size in IMAGE_SIZE_PRESETS:
        return IMAGE_SIZE_PRESETS[size]
    if inp.get("aspect_ratio"):
        return aspect_dims(inp["aspect_ratio"])
    return IMAGE_SIZE_PRESETS["landscape_4_3"]


@dataclass
class FalJob:
    request_id: str
    model_id: str
    app_path: str  # "owner/app", used for status/result URLs
    input: dict[str, Any]
    faults: set[str]
    created: float
    polls: int = 0
    cancelled: bool = False
    result: dict[str, Any] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)


class FakeFal(FakeMediaServer):
    """Fake ``queue.fal.run``.

    steps: status polls answered IN_QUEUE/IN_PROGRESS before COMPLETED (first
      half IN_QUEUE with a falling queue_position, then IN_PROGRESS).
    delay: seconds since submit before COMPLETED is possible (both must hold).
    video_models: extra model ids treated as video, with their sub-paths (any id
      containing "video" already is).
    """

    primary_kind = "submit"

    def __init__(self, *, steps: int = 2, delay: float = 0.0, video_models: tuple[str, ...] = (), **kw: Any):
        super().__init__(**kw)
        self.steps = steps
        self.delay = delay
        self.video_models = set(video_models)
        self.jobs: dict[str, FalJob] = {}

    def is_video(self, model_id: str) -> bool:
        """Ids containing "video", and ids in (or under, e.g. ".../image-to-video") video_models."""
        return "video" in model_id or any(
            model_id == m or model_id.startswith(m + "/") for m in self.video_models
        )

    # ------------------------------------------------------------ errors
    def _http_fault(self, faults: set[str]) -> FakeResponse | None:
        if "500" in faults:
            return json_response({"detail": "Internal Server Error"}, 500)
        if "429" in faults:
            return json_response(
                {"detail": "Rate limit exceeded. Too many concurrent requests."},
                429,
                {"retry-after": str(self.retry_after)},
            )
        if "400" in faults:
            return json_response(
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "Invalid prompt",
                            "type": "value_error",
                            "input": None,
                        }
                    ]
                },
                400,
            )
        return None

    def _auth_error(self, req: FakeRequest) -> FakeResponse | None:
        if self.api_key is None:
            return None
        auth = req.headers.get("authorization", "")
        if not auth:
            return json_response({"detail": "No user found for Key ID and Secret"}, 401)
        if auth != f"Key {self.api_key}":
            return json_response({"detail": "Invalid Key authorization header format or invalid key"}, 401)
        return None

    # ------------------------------------------------------------ routing
    async def handle(self, req: FakeRequest) -> FakeResponse:
        m = _STATUS_RE.match(req.path)
        if m and req.method in ("GET", "PUT"):
            owner, app, rid, suffix = m.groups()
            req.kind = {"/status": "status", "/cancel": "cancel"}.get(suffix or "", "result")
        elif req.method == "POST":
            req.kind = "submit"
        else:
            req.kind = "unknown"
            return json_response({"detail": "Not Found"}, 404)
        if (err := self._auth_error(req)) is not None:
            return err
        if req.kind == "submit":
            return await self._submit(req)
        faults = self.take_faults(req)
        await self.apply_slow(faults)
        if (err := self._http_fault(faults)) is not None:
            return err
        job = self.jobs.get(rid)
        if job is None or job.app_path != f"{owner}/{app}":
            return json_response({"detail": f"Request {rid} not found"}, 404)
        if req.kind == "status":
            return self._status(job, req)
        if req.kind == "cancel":
            return self._cancel(job)
        return self._result(job, req)

    def _urls(self, job: FalJob) -> dict[str, str]:
        base = self.url(f"/{job.app_path}/requests/{job.request_id}")
        return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}

    async def _submit(self, req: FakeRequest) -> FakeResponse:
        model_id = req.path.strip("/")
        parts = model_id.split("/")
        if len(parts) < 2:
            return json_response({"detail": "Application not found"}, 404)
        inp = req.body if isinstance(req.body, dict) else {}
        faults = self.take_faults(req, inp.get("prompt"))
        await self.apply_slow(faults)
        if (err := self._http_fault(faults)) is not None:
            return err
        if not isinstance(req.body, dict):
            return json_response(
                {
                    "detail": [
                        {"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}
                    ]
                },
                422,
            )
        job = FalJob(str(uuid.uuid4()), model_id, "/".join(parts[:2]), inp, faults, time.monotonic())
        self.jobs[job.request_id] = job
        req.meta["request_id"] = job.request_id
        return json_response(
            {"status": "IN_QUEUE", "request_id": job.request_id, **self._urls(job), "queue_position": 0}
        )

    def _state(self, job: FalJob) -> str:
        if job.cancelled:
            return "COMPLETED"
        if "never_finishes" in job.faults:
            return "IN_PROGRESS" if job.polls > 0 else "IN_QUEUE"
        elapsed = time.monotonic() - job.created
        if job.polls >= self.steps and elapsed >= self.delay:
            return "COMPLETED"
        if job.polls < (self.steps + 1) // 2 or elapsed < self.delay / 2:
            return "IN_QUEUE"
        return "IN_PROGRESS"

    def _status(self, job: FalJob, req: FakeRequest) -> FakeResponse:
        state = self._state(job)
        job.polls += 1
        body: dict[str, Any] = {"status": state, "request_id": job.request_id, **self._urls(job)}
        with_logs = req.query.get("logs") in ("1", "true", "True")
        if state == "IN_QUEUE":
            body["queue_position"] = max(0, (self.steps + 1) // 2 - job.polls)
        else:
            if not job.logs:
                job.logs.append(
                    {
                        "message": "Starting inference",
                        "level": "INFO",
                        "source": "user",
                        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                )
            body["logs"] = job.logs if with_logs else None
        if state == "COMPLETED":
            body["metrics"] = {"inference_time": round(time.monotonic() - job.created, 3)}
            if job.cancelled:
                body["error"], body["error_type"] = "Request was cancelled", "request_cancelled"
            elif "job_failed" in job.faults:
                body["error"], body["error_type"] = "Runner disconnected", "runner_disconnected"
            elif "content_policy" in job.faults:
                body["error"], body["error_type"] = (
                    "The content was flagged by a content checker.",
                    "content_policy_violation",
                )
        return json_response(body, 200 if state == "COMPLETED" else 202)

    def _cancel(self, job: FalJob) -> FakeResponse:
        if self._state(job) == "COMPLETED":
            return json_response({"status": "ALREADY_COMPLETED"}, 400)
        job.cancelled = True
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)

    def _result(self, job: FalJob, req: FakeRequest) -> FakeResponse:
        if self._state(job) != "COMPLETED":
            return json_response({"detail": "Request is still in progress"}, 400)
        if job.cancelled:
            return json_response(
                {"detail": "Request was cancelled", "error_type": "request_cancelled"},
                400,
                {"x-fal-error-type": "request_cancelled"},
            )
        if "job_failed" in job.faults:
            return json_response(
                {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                503,
                {"x-fal-error-type": "runner_disconnected"},
            )
        if "content_policy" in job.faults:
            return json_response(
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "The content was flagged by a content checker.",
                            "type": "content_policy_violation",
                            "url": "https://docs.fal.ai/errors#content_policy_violation",
                            "input": job.input.get("prompt"),
                        }
                    ]
                },
                422,
                {"x-fal-retryable": "false"},
            )
        if job.result is None:
            job.result = self._build_result(job, req)
        return json_response(job.result, 200, {"x-fal-request-id": job.request_id})

    # ------------------------------------------------------------ outputs
    def _build_result(self, job: FalJob, req: FakeRequest) -> dict[str, Any]:
        prompt = str(job.input.get("prompt", ""))
        if self.is_video(job.model_id):
            if "no_image" in job.faults:
                return {"video": None}
            seconds = float(str(job.input.get("duration", "5")).rstrip("s") or 5)
            w, h = aspect_dims(job.input.get("aspect_ratio", "16:9"), 1280)
            data = make_mp4(seconds, w, h, seed=prompt)
            url = self.store_file(
                data, "video/mp4", "mp4", requested_size=f"{w}x{h}", request_id=job.request_id
            )
            return {
                "video": {
                    "url": url,
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(data),
                }
            }
        n = int(job.input.get("num_images", 1) or 1)
        if "no_image" in job.faults:
            n = 0
        elif "partial" in job.faults:
            n = max(0, n - 1)
        w, h = requested_image_size(job.input)
        fmt = str(job.input.get("output_format", "png")).lower()
        fmt = fmt if fmt in IMAGE_MIME else "png"
        seed = job.input.get("seed", random.Random(prompt).randint(0, 2**31 - 1))
        images = []
        for i in range(n):
            data = make_image(w, h, prompt, i, fmt, self.max_side)
            url = self.store_file(
                data, IMAGE_MIME[fmt], fmt, requested_size=f"{w}x{h}", request_id=job.request_id
            )
            images.append(
                {"url": url, "content_type": IMAGE_MIME[fmt], "width": w, "height": h, "file_size": len(data)}
            )
        req.meta["requested_size"] = f"{w}x{h}"
        return {
            "images": images,
            "seed": seed,
            "prompt": prompt,
            "has_nsfw_concepts": [False] * n,
            "timings": {"inference": round(time.monotonic() - job.created, 3)},
        }
