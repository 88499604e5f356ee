"""Clear errors instead of 500s: bad numbers in forms and APIs are answered with the field and the reason
(400 or the form again with its message), never a server error, and nothing is written."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import ComparisonTask, TokenScope
from training.models import SEED_MAX, TrainingRun

HUGE = "99999999999999"


@pytest.mark.parametrize(
    "field, value",
    [("reward_model", "abc"), ("project", "abc"), ("limit", "x"), ("limit", "0"), ("project", HUGE * 2)],
)
def test_spot_check_send_with_bad_numbers_is_a_form_error(world, field, value):
    form = {"reward_model": world.reward_model.pk, "project": world.project.pk, "limit": 10, field: value}
    before = ComparisonTask.objects.count()
    resp = world.client_for("engineer").post(reverse("rewardsvc:spot_check_send"), form)
    assert resp.status_code == 400
    assert f"{field}: " in resp.content.decode()  # the message names the field
    assert ComparisonTask.objects.count() == before


def test_policy_form_with_an_oversized_seed_is_a_form_error(world):
    form = {"kind": "grpo", "base_model": "tiny-lm", "project": world.project.pk, "seed": HUGE}
    before = TrainingRun.objects.count()
    resp = world.client_for("engineer").post(reverse("training:policy_create"), form, follow=True)
    assert resp.status_code == 200
    assert f"from 0 to {SEED_MAX}" in resp.content.decode()
    assert TrainingRun.objects.count() == before


def test_run_form_with_an_oversized_seed_is_a_form_error(world):
    form = {"snapshot": world.snapshot.pk, "base_model": "tiny", "seed": HUGE}
    before = TrainingRun.objects.count()
    resp = world.client_for("engineer").post(reverse("training:run_create"), form, follow=True)
    assert resp.status_code == 200
    assert f"from 0 to {SEED_MAX}" in resp.content.decode()
    assert TrainingRun.objects.count() == before


@pytest.mark.parametrize("seed", [int(HUGE), -1])
def test_run_and_policy_apis_refuse_an_out_of_range_seed_naming_it(world, seed):
    api = world.client_for("engineer", TokenScope.TRAIN)
    bodies = {
        "training-run-list": {"snapshot_id": world.snapshot.pk, "base_model": "tiny", "seed": seed},
        "policy-run-list": {
            "kind": "grpo",
            "base_model": "tiny-lm",
            "project_id": world.project.pk,
            "seed": seed,
        },
    }
    for name, body in bodies.items():
        resp = api.post(reverse(name), body, content_type="application/json")
        assert resp.status_code == 400, (name, resp.content)
        assert "seed" in resp.json()["error"]["fields"]


def test_integers_written_by_the_api_are_bounded_by_the_column(world):
    """time_spent_ms, a task's priority and a token's rate limit: past a PostgreSQL integer they are a 400
    naming the field, not a database error."""
    annotator = world.client_for("annotator", TokenScope.ANNOTATE)
    resp = annotator.post(
        "/api/v1/judgments/",
        {"task": world.task.pk, "choice": "A", "time_spent_ms": 2**40},
        content_type="application/json",
    )
    assert resp.status_code == 400 and "time_spent_ms" in resp.json()["error"]["fields"]
    resp = annotator.post(
        "/api/v1/tokens/",
        {"name": "t", "scopes": ["annotate"], "rate_limit_per_minute": 2**40},
        content_type="application/json",
    )
    assert resp.status_code == 400 and "rate_limit_per_minute" in resp.json()["error"]["fields"]
    engineer = world.client_for("engineer")
    candidates = list(world.task.prompt.candidates.values_list("pk", flat=True)[:2])
    resp = engineer.post(
        "/api/v1/tasks/",
        {
            "project": world.project.pk,
            "candidate_a": candidates[0],
            "candidate_b": candidates[1],
            "priority": 2**40,
        },
        content_type="application/json",
    )
    assert resp.status_code == 400 and "priority" in resp.json()["error"]["fields"]
