"""Image jobs for llm's chat image turns: the llm.image_jobs.ImageJobs service, over the same
operations as the image-jobs API (POST /v1/llm/images/jobs and its poll). media_jobs/apps.py
registers it when Django is ready; llm.chat_images owns the chat's rows.
"""

from collections.abc import Callable
from decimal import Decimal

from accounts.keys import Principal
from llm.image_jobs import ImageJob, JobEnd

from . import job_reads, jobs, storage
from .models import MediaJob
from .validation import MAX_PROMPT, NANO_BANANA


def _image_job(job: MediaJob) -> ImageJob:
    return ImageJob(
        id=job.pk, model=job.model, prompt=job.request["prompt"], estimated_cost_usd=job.estimated_cost_usd
    )


class ChatImageJobs:
    """Nano Banana image jobs, held, queued, charged and stored exactly as the image-jobs API's."""

    max_prompt = MAX_PROMPT

    def accepts(self, slug: str) -> bool:
        return bool(NANO_BANANA.match(slug))

    async def start(
        self,
        principal: Principal,
        body: dict,
        *,
        request_id: str,
        key: str,
        on_record: Callable[[ImageJob], None],
    ) -> ImageJob:
        job = await jobs.start_image_job(
            principal, body, request_id=request_id, key=key, on_record=lambda row: on_record(_image_job(row))
        )
        return _image_job(job)

    async def read(self, principal: Principal, job_id: str) -> tuple[dict, bool]:
        return await job_reads.read(principal, job_id, MediaJob.IMAGE)

    def ended(self, job_id: str) -> JobEnd | None:
        job = MediaJob.objects.get(pk=job_id)
        prompt = job.request.get("prompt", "")
        if job.status == MediaJob.COMPLETED and job.charged_at is not None:
            result = job.result or {}
            image = {
                "asset_id": result.get("asset_id"),
                "path": result["path"],
                "mime_type": result.get("mime_type"),
            }
            return JobEnd(True, prompt, cost_usd=job.cost_usd or Decimal(0), image=image)
        if job.status == MediaJob.FAILED:
            return JobEnd(False, prompt, error=job.error)
        return None

    def file_url(self, path: str) -> str:
        return storage.signed_url(path)
