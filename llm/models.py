"""The model catalog (loaded from llm/catalog.toml, editable in the admin), chat jobs, chat sessions
and stored responses. Usage rows (one per request) are billing's: billing.models.UsageLog."""

from django.conf import settings
from django.db import models

from billing.models import USD


class CatalogModel(models.Model):
    CHAT, IMAGE, VIDEO = "chat", "image", "video"
    KINDS = [(CHAT, "chat"), (IMAGE, "image"), (VIDEO, "video")]

    slug = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    vendor = models.CharField(max_length=40)
    kind = models.CharField(max_length=10, choices=KINDS)
    category = models.CharField(max_length=40, blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="order in lists")
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output = models.PositiveIntegerField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    reasoning = models.BooleanField(default=False)
    first_byte_timeout = models.PositiveIntegerField(default=120, help_text="seconds")
    # Sale prices. Chat: USD per 1M tokens. Image: per delivered image. Video: headline per video.
    input_per_mtok = models.DecimalField(**USD, null=True, blank=True)
    output_per_mtok = models.DecimalField(**USD, null=True, blank=True)
    cached_input_per_mtok = models.DecimalField(**USD, null=True, blank=True)
    per_image = models.DecimalField(**USD, null=True, blank=True)
    per_video = models.DecimalField(**USD, null=True, blank=True)
    video_options = models.JSONField(
        default=dict, blank=True, help_text="durations, resolutions, multipliers"
    )
    long_context = models.JSONField(
        default=dict,
        blank=True,
        help_text='chat: the dearer price of a prompt above a size, e.g. {"above": 200000, "input": "4.80", '
        '"output": "18.00", "cached_input": "0.48"} (USD per 1M tokens, for the whole request)',
    )
    list_price = models.JSONField(default=dict, blank=True, help_text="vendor list price and its source")
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "position", "slug"]
        verbose_name = "catalog model"

    def __str__(self) -> str:
        return self.slug


class Route(models.Model):
    """One way to serve a model: a provider and the vendor's model id. Tried in `position` order."""

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=40)
    upstream_model = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model", "position"]
        constraints = [models.UniqueConstraint(fields=["model", "position"], name="route_position_unique")]

    def __str__(self) -> str:
        return f"{self.model.slug}#{self.position} {self.provider}:{self.upstream_model}"


def _chat_job_id() -> str:
    import uuid

    return "cjob_" + uuid.uuid4().hex[:20]


class ChatJob(models.Model):
    """A chat completion run by a worker for clients that cannot hold a stream open.

    The row is the truth: pending → running → completed | failed. The hold taken at kickoff is
    settled by the worker (once, through the ledger) or released on failure or by the reaper.
    """

    PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
    STATUSES = [(s, s) for s in (PENDING, RUNNING, COMPLETED, FAILED)]

    id = models.CharField(primary_key=True, max_length=32, default=_chat_job_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_jobs")
    api_key = models.ForeignKey(
        "accounts.APIKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    request = models.JSONField(help_text="the validated chat request body")
    hold_id = models.BigIntegerField()
    request_id = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=200, blank=True)
    prompt_estimate = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="chatjob_status_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                name="chatjob_idempotency",
                condition=~models.Q(idempotency_key=""),
            )
        ]

    @property
    def is_terminal(self) -> bool:
        return self.status in (self.COMPLETED, self.FAILED)


class Chat(models.Model):
    """A persistent conversation owned by one user; the model sees its stored history on every turn."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats")
    title = models.CharField(max_length=200, default="New chat")
    model = models.CharField(max_length=100, help_text="default chat model for new turns")
    system_prompt = models.TextField(blank=True, help_text="always sent first; never truncated")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="chat_user_recent")]

    def __str__(self) -> str:
        return f"chat {self.pk}: {self.title}"


class ChatMessage(models.Model):
    """One stored turn of a chat. Text turns are written complete (the user message and the reply
    together, once the reply is paid for). An image turn is an assistant placeholder written at
    kickoff (status pending, `job_id` set) and rewritten when its media job ends (completed with
    `image`, or failed with `error`). `tokens` estimates the message's size in the model's context
    (used to fit history into the context window); a reply carries the usage and cost of the
    request that produced it (a user turn costs nothing by itself)."""

    USER, ASSISTANT = "user", "assistant"
    ROLES = [(USER, "user"), (ASSISTANT, "assistant")]
    TEXT, IMAGE = "text", "image"
    KINDS = [(TEXT, "text"), (IMAGE, "image")]
    PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
    STATUSES = [(PENDING, "pending"), (COMPLETED, "completed"), (FAILED, "failed")]

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=ROLES)
    kind = models.CharField(max_length=10, choices=KINDS, default=TEXT)
    status = models.CharField(max_length=10, choices=STATUSES, default=COMPLETED)
    content = models.TextField(blank=True)
    model = models.CharField(max_length=100, blank=True)
    tokens = models.PositiveIntegerField(default=0, help_text="estimated size of this message in the context")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(**USD, default=0)
    finish_reason = models.CharField(max_length=30, blank=True)
    truncated_turns = models.PositiveIntegerField(
        default=0, help_text="history messages left out of the request"
    )
    request_id = models.CharField(max_length=64, blank=True)
    job_id = models.CharField(max_length=40, blank=True, help_text="image turns: the media job")
    image = models.JSONField(null=True, blank=True, help_text="image turns: the delivered image reference")
    error = models.JSONField(null=True, blank=True, help_text="failed turns: {code, message}")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["chat", "id"], name="chatmsg_chat_order")]
        constraints = [
            models.UniqueConstraint(
                fields=["chat", "job_id"], name="chatmsg_chat_job", condition=~models.Q(job_id="")
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.kind} in chat {self.chat_id}"


class StoredResponse(models.Model):
    """A Responses API response kept because the request said `store` (the default): read back by
    GET /v1/openai/responses/{id} and continued by `previous_response_id`. Visible to its owner only.
    `input_items` is the whole conversation before this reply (earlier turns and this input)."""

    id = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=100)
    input_items = models.JSONField(default=list)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]
