"""Billing takes over UsageLog from llm (llm 0006 let go of it). State only: the model keeps its
table, llm_usagelog, with the same columns, indexes and constraints, so no row moves and nothing
is locked. The model's content type follows it, so admin history and permissions stay attached."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _relabel_content_type(source: str, target: str):
    def relabel(apps, schema_editor):
        content_types = apps.get_model("contenttypes", "ContentType").objects.db_manager(
            schema_editor.connection.alias
        )
        if not content_types.filter(app_label=target, model="usagelog").exists():
            content_types.filter(app_label=source, model="usagelog").update(app_label=target)
        content_types.clear_cache()

    return relabel


USAGE_LOG = migrations.CreateModel(
    name="UsageLog",
    fields=[
        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("request_id", models.CharField(max_length=64)),
        ("endpoint", models.CharField(default="chat", max_length=40)),
        ("model", models.CharField(max_length=100)),
        (
            "route",
            models.CharField(blank=True, help_text="operator-only: provider:upstream_model", max_length=250),
        ),
        ("prompt_tokens", models.PositiveIntegerField(default=0)),
        ("cached_tokens", models.PositiveIntegerField(default=0)),
        ("completion_tokens", models.PositiveIntegerField(default=0)),
        ("reasoning_tokens", models.PositiveIntegerField(default=0)),
        ("images", models.PositiveIntegerField(default=0)),
        ("video_seconds", models.PositiveIntegerField(default=0)),
        ("cost_usd", models.DecimalField(decimal_places=8, default=0, max_digits=20)),
        ("latency_ms", models.PositiveIntegerField(default=0)),
        ("ttft_ms", models.PositiveIntegerField(blank=True, null=True)),
        ("status", models.CharField(default="ok", max_length=20)),
        ("error_code", models.CharField(blank=True, max_length=50)),
        ("stream", models.BooleanField(default=False)),
        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
        (
            "api_key",
            models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="usage_logs",
                to="accounts.apikey",
            ),
        ),
        (
            "user",
            models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="usage_logs",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ],
    options={
        "db_table": "llm_usagelog",
        "ordering": ["-id"],
        "indexes": [
            models.Index(fields=["user", "-created_at"], name="usage_user_recent"),
            models.Index(fields=["user", "model", "created_at"], name="usage_user_model_time"),
            models.Index(fields=["request_id"], name="usage_request"),
        ],
    },
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("billing", "0005_payment_rails"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("llm", "0006_usagelog_to_billing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[USAGE_LOG], database_operations=[]),
        migrations.RunPython(
            _relabel_content_type("llm", "billing"), _relabel_content_type("billing", "llm"), elidable=True
        ),
    ]
