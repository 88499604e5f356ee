"""Project settings are validated where they enter: nonsense (0 pairs per prompt, a 0 s lease, unknown or
non-numeric quality settings) is a 400 naming the field and changes nothing, and the database refuses the
numeric ranges too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Project, TokenScope


@pytest.mark.parametrize(
    "field, value",
    [
        ("pairs_per_prompt", 0),
        ("pairs_per_prompt", 10**6),
        ("lease_seconds", 0),
        ("undo_grace_seconds", 10**7),
        ("extra_criteria", [""]),
        ("extra_criteria", [f"c{i}" for i in range(50)]),
        ("quality_settings", {"min_judgmets": 5}),
        ("quality_settings", {"min_judgments": "many"}),
        ("quality_settings", {"gold_accuracy_min": -1}),
    ],
)
def test_patching_nonsense_project_settings_is_a_400_naming_the_field(world, field, value):
    api = world.client_for("engineer", TokenScope.TRAIN)
    before = Project.objects.values().get(pk=world.project.pk)
    resp = api.patch(
        reverse("project-detail", args=[world.project.pk]), {field: value}, content_type="application/json"
    )
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["error"]["fields"]
    assert Project.objects.values().get(pk=world.project.pk) == before


def test_the_database_refuses_out_of_range_project_settings(world, require_postgres):
    from django.db import IntegrityError, transaction

    for field, value in (("pairs_per_prompt", 0), ("lease_seconds", 0), ("undo_grace_seconds", 10**6)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Project.objects.filter(pk=world.project.pk).update(**{field: value})


def test_sane_project_settings_still_patch(world):
    api = world.client_for("engineer", TokenScope.TRAIN)
    body = {
        "pairs_per_prompt": 5,
        "lease_seconds": 1,
        "quality_settings": {"min_judgments": 5, "fast_ms": 1500},
    }
    resp = api.patch(
        reverse("project-detail", args=[world.project.pk]), body, content_type="application/json"
    )
    assert resp.status_code == 200, resp.content
    assert Project.objects.get(pk=world.project.pk).pairs_per_prompt == 5
