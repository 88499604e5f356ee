"""`make run`'s bootstrap (demo logins + a demo project with real data, once) and the admin for every model."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command

from annotation.models import ComparisonTask, Project, ProjectMembership


@pytest.mark.django_db
def test_bootstrap_demo_creates_logins_and_a_project_once(hh_rlhf_path, settings):
    settings.PREFLAB_DEMO_PASSWORD = "demo-pw-1"
    out = io.StringIO()
    call_command("bootstrap_demo", "--limit", "40", stdout=out)
    text = out.getvalue()
    assert "Demo logins: admin / annotator / reviewer / engineer, password 'demo-pw-1'" in text
    for name in ("admin", "annotator", "annotator2", "reviewer", "engineer"):
        assert User.objects.get(username=name).check_password("demo-pw-1")
    assert User.objects.get(username="admin").is_superuser
    assert not User.objects.get(username="annotator").is_staff
    project = Project.objects.get()
    tasks = ComparisonTask.objects.filter(project=project).count()
    assert tasks > 0
    assert ProjectMembership.objects.filter(project=project, user__username="annotator").exists()
    # Real preference text from the shared hh-rlhf file, not the generated fallback.
    assert hh_rlhf_path.name in text and project.prompts.count() > 0

    call_command("bootstrap_demo", "--limit", "40", stdout=io.StringIO())  # re-running changes nothing
    assert Project.objects.count() == 1 and ComparisonTask.objects.count() == tasks
    assert User.objects.filter(username__in=["admin", "annotator", "reviewer", "engineer"]).count() == 4


def test_every_model_has_an_admin():
    missing = [
        f"{m._meta.app_label}.{m.__name__}"
        for app in ("annotation", "training", "rewardsvc")
        for m in apps.get_app_config(app).get_models()
        if not m._meta.auto_created and not admin.site.is_registered(m)
    ]
    assert not missing, missing
