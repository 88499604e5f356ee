"""Database-enforced rule: both candidates of a comparison task belong to the task's prompt.

Django has no composite foreign keys, so PostgreSQL gets real ones, (candidate_x_id, prompt_id) ->
candidate(id, prompt_id), and SQLite gets triggers that abort the write. Also creates the role groups.
"""

from django.db import migrations

TASK = "annotation_comparisontask"
CAND = "annotation_candidate"

PG_FORWARD = [
    f"ALTER TABLE {TASK} ADD CONSTRAINT task_candidate_a_same_prompt FOREIGN KEY (candidate_a_id, prompt_id) "
    f"REFERENCES {CAND} (id, prompt_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
    f"ALTER TABLE {TASK} ADD CONSTRAINT task_candidate_b_same_prompt FOREIGN KEY (candidate_b_id, prompt_id) "
    f"REFERENCES {CAND} (id, prompt_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
]
PG_REVERSE = [
    f"ALTER TABLE {TASK} DROP CONSTRAINT task_candidate_a_same_prompt",
    f"ALTER TABLE {TASK} DROP CONSTRAINT task_candidate_b_same_prompt",
]


def _sqlite_trigger(event: str) -> str:
    return (
        f"CREATE TRIGGER task_candidates_same_prompt_{event.lower()} BEFORE {event} ON {TASK} "
        f"FOR EACH ROW WHEN (SELECT prompt_id FROM {CAND} WHERE id = NEW.candidate_a_id) IS NOT NEW.prompt_id "
        f"OR (SELECT prompt_id FROM {CAND} WHERE id = NEW.candidate_b_id) IS NOT NEW.prompt_id "
        "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: task_candidates_same_prompt'); END"
    )


SQLITE_FORWARD = [_sqlite_trigger("INSERT"), _sqlite_trigger("UPDATE")]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS task_candidates_same_prompt_insert",
    "DROP TRIGGER IF EXISTS task_candidates_same_prompt_update",
]


def forward(apps, schema_editor):
    statements = {"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def reverse(apps, schema_editor):
    statements = {"postgresql": PG_REVERSE, "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("annotator", "reviewer", "engineer", "admin"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(forward, reverse),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
