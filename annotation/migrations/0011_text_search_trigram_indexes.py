"""Trigram indexes for the task browser's text search (case-insensitive substring on prompts and responses).

Django's ``icontains`` on PostgreSQL is ``UPPER(text) LIKE UPPER('%q%')``, so the indexes are on
``UPPER(text)`` with ``gin_trgm_ops``. PostgreSQL only: SQLite (the embedded default) keeps scanning, which is
fine at its sizes. ``pg_trgm`` is a trusted extension (PostgreSQL 13+): a database owner may create it; where
the role may not, the migration leaves search unindexed (correct, only slower) instead of failing.
"""

from django.db import migrations, transaction
from django.db.utils import DatabaseError

INDEXES = (
    ("annotation_prompt_text_trgm", "annotation_prompt"),
    ("annotation_candidate_text_trgm", "annotation_candidate"),
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        return  # no right to create the extension: search stays a scan
    for name, table in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER(text) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0010_task_priority_score_serving_order_model_pairing")]

    operations = [migrations.RunPython(create, drop)]
