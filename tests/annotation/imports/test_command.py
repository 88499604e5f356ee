"""`manage.py import_items`: output, progress on stderr and a clear error with the line number."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.demo import DEMO_PROJECT, demo_project_ensure
from annotation.models import ComparisonTask, Judgment
from tests.annotation.imports.conftest import PAIRS_ROWS, row_counts, write_jsonl
from tests.factories import make_user


def test_command_imports_and_prints_the_report(project, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS_ROWS)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_items", str(project.pk), str(path), "--prior-judgments", stdout=out, stderr=err)
    text = out.getvalue()
    assert "Imported into 'import-test'" in text
    assert "3 records (pairs, jsonl)" in text and "tasks 3 new / 0 duplicate" in text
    assert "prior judgments 3" in text
    assert "reading records" in err.getvalue()  # tqdm progress goes to stderr
    assert Judgment.objects.filter(task__project=project).count() == 3

    out = io.StringIO()
    call_command("import_items", project.name, str(path), "--json", stdout=out, stderr=io.StringIO())
    report = json.loads(out.getvalue())
    assert (report["tasks_created"], report["tasks_duplicate"]) == (0, 3)


def test_command_error_names_the_line_and_writes_nothing(project, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [PAIRS_ROWS[0], PAIRS_ROWS[1], "{oops"])
    with pytest.raises(CommandError) as err:
        call_command("import_items", str(project.pk), str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert str(err.value).startswith("Import failed, nothing was written: line 3: invalid JSON")
    assert row_counts(project)["prompts"] == 0
    with pytest.raises(CommandError, match="No project"):
        call_command("import_items", "no-such-project", str(path))


def test_demo_project_imports_shared_hh_rlhf_once(db, require_postgres, hh_rlhf_path, settings):
    settings.SHARED_DATA_DIR = hh_rlhf_path.parent
    users = {"admin": make_user("admin", username="admin"), "annotator": make_user(username="annotator")}
    project, report = demo_project_ensure(users=users, limit=50)
    assert project.name == DEMO_PROJECT
    assert report["source"] == "hh-rlhf-harmless-dev.jsonl.gz" and report["records"] == 50
    tasks = ComparisonTask.objects.filter(project=project).count()
    assert tasks == report["tasks_created"] > 45
    assert project.prompts.filter(messages__isnull=False).count() == project.prompts.count()
    again, second = demo_project_ensure(users=users, limit=50)
    assert again.pk == project.pk and second == {"existing_tasks": tasks}
    assert ComparisonTask.objects.filter(project=project).count() == tasks


def test_demo_project_falls_back_to_generated_pairs(db, require_postgres, settings, tmp_path):
    settings.SHARED_DATA_DIR = tmp_path / "no-shared-data"
    project, report = demo_project_ensure(users={"engineer": make_user("engineer")}, limit=20)
    assert report["tasks_created"] == 20 and report["records"] == 20
    assert set(project.prompts.first().candidates.values_list("model_name", flat=True)) == {
        "model-good",
        "model-rude",
    }
