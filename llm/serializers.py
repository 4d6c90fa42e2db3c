"""DRF serializers of the native chat-session and usage endpoints: they validate input (errors
become catalog errors through gpuniq_site.drf) and describe the shapes for the OpenAPI schema."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

MAX_TITLE = 200
MAX_SYSTEM_PROMPT = 100_000


def envelope(name: str, data) -> serializers.Serializer:
    """The native success envelope around `data` (a serializer instance), for the schema."""
    return inline_serializer(
        name=name,
        fields={"success": serializers.BooleanField(), "data": data, "request_id": serializers.CharField()},
    )


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(min_value=0, max_value=1_000_000_000, default=0)


class UsagePageQuery(PageQuery):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


class ChatCreate(serializers.Serializer):
    model = serializers.CharField(max_length=100, required=False, help_text="default: claude-haiku-4-5")
    title = serializers.CharField(max_length=MAX_TITLE, required=False, allow_blank=True)
    system_prompt = serializers.CharField(
        max_length=MAX_SYSTEM_PROMPT, required=False, allow_blank=True, trim_whitespace=False
    )


class ChatUpdate(ChatCreate):
    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("give at least one of title, model, system_prompt")
        return attrs


class ChatMessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=["user", "assistant"])
    kind = serializers.ChoiceField(choices=["text", "image"])
    status = serializers.ChoiceField(choices=["pending", "completed", "failed"])
    content = serializers.CharField()
    model = serializers.CharField()
    tokens = serializers.IntegerField(help_text="estimated size of this message in the model's context")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField(help_text="replies: the cost of the request that produced them")
    finish_reason = serializers.CharField(allow_null=True)
    truncated_turns = serializers.IntegerField()
    request_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    job_id = serializers.CharField(required=False, help_text="image turns only")
    image = serializers.JSONField(required=False, allow_null=True, help_text="image turns only")
    error = serializers.JSONField(required=False, allow_null=True, help_text="image turns only")


class ChatOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    model = serializers.CharField()
    system_prompt = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    message_count = serializers.IntegerField(required=False)


class ChatDetailOut(ChatOut):
    messages = ChatMessageOut(many=True)


class ChatListOut(serializers.Serializer):
    chats = ChatOut(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class DeletedOut(serializers.Serializer):
    id = serializers.IntegerField()
    deleted = serializers.BooleanField()


class UsageLogOut(serializers.Serializer):
    id = serializers.IntegerField()
    request_id = serializers.CharField()
    endpoint = serializers.CharField()
    model = serializers.CharField()
    status = serializers.CharField()
    error_code = serializers.CharField(allow_blank=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    images = serializers.IntegerField()
    video_seconds = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    stream = serializers.BooleanField()
    latency_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class UsageHistoryOut(serializers.Serializer):
    logs = UsageLogOut(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class BreakdownQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=["day", "week"], default="day")
    start = serializers.DateField(
        required=False, help_text="first local date (default: 30 days / 12 weeks back)"
    )
    end = serializers.DateField(required=False, help_text="last local date, inclusive (default: today)")
    tz = serializers.CharField(max_length=64, default="UTC", help_text="IANA time zone, e.g. Europe/Berlin")
    group_by = serializers.ChoiceField(choices=["model"], required=False, allow_blank=True)


class UsageTotalsOut(serializers.Serializer):
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField()


class UsageBucketOut(UsageTotalsOut):
    period_start = serializers.DateField(help_text="local date the day or (Monday) week starts")
    model = serializers.CharField(required=False, help_text="with group_by=model")


class UsageBreakdownOut(serializers.Serializer):
    period = serializers.CharField()
    tz = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField(allow_null=True)
    buckets = UsageBucketOut(many=True)
    totals = UsageTotalsOut()
