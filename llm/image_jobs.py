"""The image-jobs service as chat image turns (llm.chat_images) need it, defined here and provided by
media_jobs, which registers its implementation when its app is ready (media_jobs/apps.py): llm never
imports media_jobs, and media_jobs keeps its jobs, holds, files and charging to itself.

Guarantees an implementation gives: `start` holds the price and calls `on_record` inside the
transaction that inserts a new job (not on an idempotent replay), so the chat's rows and the job
exist together or not at all; `read` is the image-jobs API's poll (the first read of a completion
charges it, once); `ended` reports a completion only once it is charged.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from accounts.keys import Principal

ENDED = ("completed", "failed")  # the image-jobs API's terminal statuses


@dataclass(frozen=True)
class ImageJob:
    id: str
    model: str
    prompt: str
    estimated_cost_usd: Decimal


@dataclass(frozen=True)
class JobEnd:
    """How an image job ended: completed and charged (`image` is the stored file's reference:
    asset_id, path, mime_type) or failed (`error`)."""

    completed: bool
    prompt: str
    cost_usd: Decimal = Decimal(0)
    image: dict | None = None
    error: dict | None = None


class ImageJobs(Protocol):
    max_prompt: int  # characters

    def accepts(self, slug: str) -> bool:
        """Whether the service runs image model `slug` as a job."""

    async def start(
        self,
        principal: Principal,
        body: dict,
        *,
        request_id: str,
        key: str,
        on_record: Callable[[ImageJob], None],
    ) -> ImageJob:
        """Validate `body` (the image-jobs API's), hold its price and queue the job; a key already
        used for the same body gives back that job."""

    async def read(self, principal: Principal, job_id: str) -> tuple[dict, bool]:
        """(the image-jobs API's poll payload, coalesced?) for `principal`'s job."""

    def ended(self, job_id: str) -> JobEnd | None:
        """The job's end, or None while it runs (or is completed but not yet charged)."""

    def file_url(self, path: str) -> str:
        """A fresh signed link to a stored file."""


_service: ImageJobs | None = None


def register(service: ImageJobs) -> None:
    """Called once, by the app that provides image jobs, when Django is ready."""
    global _service
    _service = service


def service() -> ImageJobs:
    if _service is None:
        raise ImproperlyConfigured("no image-jobs service registered: is media_jobs in INSTALLED_APPS?")
    return _service
