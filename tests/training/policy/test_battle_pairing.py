"""Battle pairing strategy: validated where a run is created (400 naming the field), and an "active" battle
project serves its model pairs by the active pairing scores with an exploration share."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import ComparisonTask, Role
from tests.factories import make_project, make_prompt, make_token, make_user
from training.policy.battle import BattleConfig, battle_project_create

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, ['train'])}")
    return client


@pytest.mark.parametrize(
    ("battle", "field"),
    [
        ({"pairing_strategy": "elo"}, "battle.pairing_strategy"),
        ({"pairing_strategy": "active", "exploration": 1.5}, "battle.exploration"),
        ({"pairing_strategy": "active", "exploration": -0.1}, "battle.exploration"),
    ],
)
def test_bad_pairing_settings_are_a_400_naming_the_field(battle, field):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_prompt(project, "Question?")
    body = {"kind": "ppo", "base_model": "/models/sft", "project_id": project.pk,
            "config": {"reward": {"type": "http", "url": "http://rm:8100"}, "battle": battle}}  # fmt: skip
    resp = _client(engineer).post(reverse("policy-run-list"), body, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["error"]["message"]


def test_config_defaults_and_errors():
    assert BattleConfig().pairing_strategy == "uniform" and BattleConfig().errors() == []
    assert BattleConfig(pairing_strategy="active", exploration=0.2).errors() == []


def _create(strategy: str):
    answers = {"base": ["b1", "b2"], "sft": ["s1", "s2"], "ppo": ["p1", "p2"]}
    scores = {name: [0.0, 1.0] for name in answers}
    return battle_project_create(
        name=f"battle-{strategy}",
        prompts=["q1", "q2"],
        answers=answers,
        scores=scores,
        pairing_strategy=strategy,
        exploration=0.25,
    )


def test_active_battle_project_is_scored_and_served_by_pair(require_postgres):
    project, report = _create("active")
    assert report.tasks_created == 6
    assert (project.model_pairing, project.serving_order, project.random_share) == ("active", "mix", 0.25)
    assert set(ComparisonTask.objects.filter(project=project).values_list("priority_score", flat=True)) == {
        1.0
    }
    uniform, _ = _create("uniform")
    assert (uniform.model_pairing, uniform.serving_order) == ("uniform", "queue")
    assert set(ComparisonTask.objects.filter(project=uniform).values_list("priority_score", flat=True)) == {
        None
    }
