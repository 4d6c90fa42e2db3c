"""The models and the migrations agree: a deploy migrates to exactly what the code expects, and
moving a model between apps keeps its table and every row in it."""

import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState

BEFORE_MOVE = [("llm", "0005_stored_response"), ("billing", "0005_payment_rails")]
AFTER_MOVE = [("llm", "0006_usagelog_to_billing"), ("billing", "0006_usagelog_from_llm")]


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero on a missing one


def _state_of(model: ModelState) -> tuple:
    """A model's table, fields and indexes as the migrations leave them."""
    table = model.options.get("db_table") or f"{model.app_label}_{model.name_lower}"
    fields = {name: field.deconstruct()[1:] for name, field in model.fields.items()}
    return table, fields, sorted(repr(index.deconstruct()) for index in model.options["indexes"])


def test_usagelog_moves_to_billing_as_it_was_in_llm():
    """billing's UsageLog is llm's field for field, index for index, on the same table."""
    loader = MigrationLoader(None)
    before = loader.project_state(BEFORE_MOVE).models[("llm", "usagelog")]
    after = loader.project_state(AFTER_MOVE)
    assert ("llm", "usagelog") not in after.models
    assert _state_of(after.models[("billing", "usagelog")]) == _state_of(before)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_usage_row_written_before_the_move_is_read_after_it():
    """Migrating back across the move and forward again (inside the test's transaction, which
    PostgreSQL rolls back with its DDL) keeps the row written in between; the model's content type
    (admin history, permissions) goes back and forth with it."""
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get(app_label="billing", model="usagelog")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_MOVE)
    assert ContentType.objects.get(app_label="llm", model="usagelog").pk == content_type.pk
    old = executor.loader.project_state(BEFORE_MOVE).apps
    user = old.get_model("accounts", "User").objects.create(email=f"old-{uuid.uuid4().hex[:8]}@example.com")
    request_id = f"req_before_move_{uuid.uuid4().hex[:8]}"
    old.get_model("llm", "UsageLog").objects.create(
        user_id=user.pk, request_id=request_id, model="m", cost_usd=Decimal("0.25")
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from billing.models import UsageLog

    row = UsageLog.objects.get(request_id=request_id)
    assert (row.user_id, row.model, row.cost_usd) == (user.pk, "m", Decimal("0.25"))
    assert ContentType.objects.get(app_label="billing", model="usagelog").pk == content_type.pk
    assert not ContentType.objects.filter(app_label="llm", model="usagelog").exists()
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "llm_usagelog")
    assert {"usage_user_recent", "usage_user_model_time", "usage_request"} <= set(constraints)
