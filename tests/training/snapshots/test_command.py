"""`manage.py export_dataset`: a snapshot with a progress bar, or a plain export of chosen formats."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from training.models import DatasetSnapshot, JobStatus


@pytest.mark.django_db
def test_export_dataset_makes_a_snapshot_with_progress(judged_project):
    err, out = io.StringIO(), io.StringIO()
    call_command("export_dataset", "--project", judged_project.name, "--name", "cli", "--margin", "strength",
                 stdout=out, stderr=err)  # fmt: skip
    snapshot = DatasetSnapshot.objects.get(name="cli")
    assert snapshot.status == JobStatus.SUCCEEDED and snapshot.spec["margin"] == "strength"
    assert snapshot.content_hash in out.getvalue()


@pytest.mark.django_db
def test_export_dataset_to_a_folder_writes_only_the_chosen_formats(judged_project, tmp_path):
    target = tmp_path / "pairs"
    call_command("export_dataset", "--project", str(judged_project.pk), "--out", str(target), "--formats", "trl",
                 "--split", "1,0,0", "--no-progress", stdout=io.StringIO())  # fmt: skip
    assert sorted(p.name for p in target.iterdir()) == ["card.json", "trl"]
    lines = (target / "trl" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 12 and json.loads(lines[0]).keys() == {"prompt", "chosen", "rejected"}
    assert (target / "trl" / "test.jsonl").read_text() == ""
    assert DatasetSnapshot.objects.count() == 0
    with pytest.raises(CommandError, match="sum to 1"):
        call_command("export_dataset", "--project", str(judged_project.pk), "--split", "0.5,0.1,0.1")
