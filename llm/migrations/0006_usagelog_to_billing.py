"""UsageLog moves to billing, the app that writes and reads it. State only: the table llm_usagelog,
its rows, indexes and constraints stay exactly as they are; billing 0006 takes the model over."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("llm", "0005_stored_response"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="UsageLog")],
            database_operations=[],
        ),
    ]
