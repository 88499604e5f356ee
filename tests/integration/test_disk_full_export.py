"""A real full disk while a snapshot is exported: the artifact directory is a tiny tmpfs, the build runs out
of space part-way, and what is left is a failed snapshot with the reason, no files and no partial rows.

Needs root to mount the tmpfs (CI runs as root); elsewhere the monkeypatched ENOSPC test in
tests/training/snapshots/test_build.py covers the same path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from annotation.models import Choice, Judgment
from tests.factories import make_candidate, make_project, make_prompt, make_task, make_user
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def tiny_disk(tmp_path, settings):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    settings.ARTIFACT_DIR = mount
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_exporting_leaves_no_partial_snapshot(tiny_disk: Path):
    engineer, annotator = make_user("engineer"), make_user("annotator")
    project = make_project(members=[(engineer, "engineer"), (annotator, "annotator")])
    filler = "long answer " * 400  # ~5 KB a candidate: 120 tasks need far more than 256 KB in all formats
    for i in range(120):
        prompt = make_prompt(project, f"question {i}")
        task = make_task(
            project,
            prompt=prompt,
            a=f"{filler} a{i}",
            b=f"{filler} b{i}",
        )
        Judgment.objects.create(task=task, annotator=annotator, choice=Choice.A)
    make_candidate(make_prompt(project, "unused"), "x")

    snapshot = snapshot_create(user=engineer, spec={"projects": [project.pk]}, name="full", enqueue=False)
    built = snapshot_build(snapshot_id=snapshot.pk)

    assert built.status == JobStatus.FAILED
    assert "No space left on device" in built.error or "Errno 28" in built.error, built.error
    row = DatasetSnapshot.objects.get(pk=snapshot.pk)
    assert row.status == JobStatus.FAILED and row.artifact_dir == "" and not row.content_hash
    leftovers = [p for p in tiny_disk.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers  # the temp dir was removed: the disk is free again
    # The disk is usable again: a small snapshot of another project now builds.
    small = make_project(members=[(engineer, "engineer"), (annotator, "annotator")])
    task = make_task(small)
    Judgment.objects.create(task=task, annotator=annotator, choice=Choice.B)
    ok = snapshot_build(
        snapshot_id=snapshot_create(user=engineer, spec={"projects": [small.pk]}, name="ok", enqueue=False).pk
    )
    assert ok.status == JobStatus.SUCCEEDED, ok.error
