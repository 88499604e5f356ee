"""A succeeded snapshot never changes: the model refuses saves that change it, and the admin is view-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Role
from tests.factories import make_user
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, ImmutableSnapshotError, JobStatus


@pytest.fixture
def built(engineer, judged_project) -> DatasetSnapshot:
    snapshot = snapshot_create(
        user=engineer, spec={"projects": [judged_project.pk]}, name="frozen", enqueue=False
    )
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == JobStatus.SUCCEEDED, snapshot.error
    return snapshot


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spec", {"projects": [1], "ties": "margin_zero"}),
        ("content_hash", "0" * 64),
        ("counts", {"rows_total": 1}),
        ("artifact_dir", "/tmp/elsewhere"),
        ("version", 99),
        ("status", JobStatus.FAILED),
    ],
)
def test_changing_a_succeeded_snapshot_raises(built, field, value):
    before = DatasetSnapshot.objects.values().get(pk=built.pk)
    setattr(built, field, value)
    with pytest.raises(ImmutableSnapshotError, match=f"immutable: cannot change {field}"):
        built.save()
    with pytest.raises(ImmutableSnapshotError):
        built.save(update_fields=[field])
    assert DatasetSnapshot.objects.values().get(pk=built.pk) == before


@pytest.mark.django_db
def test_saving_a_succeeded_snapshot_unchanged_is_allowed(built):
    snapshot = DatasetSnapshot.objects.get(pk=built.pk)
    snapshot.save()
    snapshot.error = ""  # not part of what the snapshot is
    snapshot.save(update_fields=["error"])


@pytest.mark.django_db
def test_the_save_that_marks_a_snapshot_succeeded_may_set_its_result(engineer, judged_project):
    snapshot = snapshot_create(
        user=engineer, spec={"projects": [judged_project.pk]}, name="manual", enqueue=False
    )
    snapshot.status = JobStatus.RUNNING
    snapshot.save(update_fields=["status"])
    snapshot.status = JobStatus.SUCCEEDED
    snapshot.counts = {"rows_total": 3}
    snapshot.content_hash = "a" * 64
    snapshot.artifact_dir = "/tmp/manual"
    snapshot.save()
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.content_hash) == (JobStatus.SUCCEEDED, "a" * 64)
    snapshot.content_hash = "b" * 64
    with pytest.raises(ImmutableSnapshotError):
        snapshot.save()


@pytest.mark.django_db
def test_admin_shows_a_snapshot_read_only(client, built):
    admin = make_user(Role.ADMIN)  # a superuser
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    client.force_login(admin)
    url = reverse("admin:training_datasetsnapshot_change", args=[built.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert built.content_hash in html  # shown...
    assert 'name="spec"' not in html and 'name="content_hash"' not in html  # ...but not as a form field
    assert 'name="_save"' not in html
    changed = client.post(url, {"name": built.name, "version": built.version, "spec": '{"projects": [1]}'})
    assert changed.status_code == 403
    fresh = DatasetSnapshot.objects.get(pk=built.pk)
    assert fresh.spec == built.spec and fresh.content_hash == built.content_hash
    # Nothing can be added through the admin either (a row made there would never be built).
    assert client.get(reverse("admin:training_datasetsnapshot_add")).status_code == 403
    assert client.get(reverse("admin:training_datasetsnapshot_changelist")).status_code == 200
