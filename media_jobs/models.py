"""Image and video jobs, and the generated files kept for the studio's history.

A MediaJob row is the truth: pending → running → completed | failed. The hold taken at
kickoff is settled once, by the first poll that reads the completion (charged_at goes from
NULL to a time in one conditional update), or released when the job fails or is reaped.
Media bytes never live in the database: files under MEDIA_ROOT, referenced by MediaAsset.
"""

import uuid

from django.conf import settings
from django.db import models

from billing.models import USD


def new_job_id(kind: str) -> str:
    """img_ / vid_ followed by 20 hex digits."""
    return MediaJob.PREFIX[kind] + uuid.uuid4().hex[:20]


class MediaJob(models.Model):
    IMAGE, VIDEO = "image", "video"
    KINDS = [(IMAGE, "image"), (VIDEO, "video")]
    PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
    STATUSES = [(s, s) for s in (PENDING, RUNNING, COMPLETED, FAILED)]
    ACTIVE = (PENDING, RUNNING)
    PREFIX = {IMAGE: "img_", VIDEO: "vid_"}

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    kind = models.CharField(max_length=10, choices=KINDS)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="media_jobs")
    api_key = models.ForeignKey(
        "accounts.APIKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.CharField(max_length=100, help_text="catalog slug")
    request = models.JSONField(help_text="the validated request (user inputs stored as files, not inline)")
    config = models.JSONField(default=dict, help_text="resolved options (video: resolution, audio, ...)")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    hold_id = models.BigIntegerField()
    request_id = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    estimated_cost_usd = models.DecimalField(**USD)
    cost_usd = models.DecimalField(**USD, null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="asset id, mime type, upstream URL")
    error = models.JSONField(null=True, blank=True)
    route = models.CharField(max_length=250, blank=True, help_text="operator-only: provider:upstream_model")
    simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    charged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="mediajob_status_created"),
            models.Index(fields=["user", "-created_at"], name="mediajob_user_recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                name="mediajob_idempotency",
                condition=~models.Q(idempotency_key=""),
            )
        ]

    def save(self, *args, **kwargs):
        if not self.id:
            self.id = new_job_id(self.kind)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.id} {self.model} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in (self.COMPLETED, self.FAILED)


class MediaAsset(models.Model):
    """One generated file (image or video) under MEDIA_ROOT."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="media_assets")
    job = models.ForeignKey(MediaJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="assets")
    kind = models.CharField(max_length=10, choices=MediaJob.KINDS)
    model = models.CharField(max_length=100)
    path = models.CharField(max_length=300, unique=True, help_text="relative to MEDIA_ROOT")
    mime_type = models.CharField(max_length=100)
    size_bytes = models.BigIntegerField(default=0)
    prompt = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="mediaasset_user_recent")]

    def __str__(self) -> str:
        return self.path
