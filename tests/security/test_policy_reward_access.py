"""A policy run's reward follows the same access rules as every other route: a registry reward model only
from a project the engineer can see, and an HTTP reward sends only a reward-token variable as its token
(not the worker's SECRET_KEY or DATABASE_URL to a URL of the run's choosing)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Role, TokenScope
from tests.factories import make_project, make_user
from training.models import RewardModel, TrainingRun


def _create(world, reward: dict):
    body = {
        "kind": "grpo",
        "base_model": "tiny-lm",
        "project_id": world.project.pk,
        "config": {"reward": reward},
    }
    api = world.client_for("engineer", TokenScope.TRAIN)
    return api.post(reverse("policy-run-list"), body, content_type="application/json")


def test_a_registry_reward_model_of_a_hidden_project_is_refused(world):
    hidden = make_project(members=[(make_user(Role.ENGINEER), Role.ENGINEER)])
    foreign = RewardModel.objects.create(project=hidden, version=1, base_model="tiny", artifact_dir="/x")
    before = TrainingRun.objects.count()
    resp = _create(world, {"type": "registry", "reward_model_id": foreign.pk})
    assert resp.status_code == 400, resp.content
    assert "reward_model_id" in resp.json()["error"]["message"]
    assert TrainingRun.objects.count() == before
    ok = _create(world, {"type": "registry", "reward_model_id": world.reward_model.pk})
    assert ok.status_code == 202, ok.content


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "PREFLAB_REWARD_TOKENX", 3])
def test_an_http_reward_sends_only_a_reward_token_variable(world, name):
    resp = _create(world, {"type": "http", "url": "http://rm:8100", "token_env": name})
    assert resp.status_code == 400 and "token_env" in resp.json()["error"]["message"]


@pytest.mark.parametrize("name", ["PREFLAB_REWARD_TOKEN", "PREFLAB_REWARD_TOKEN_CLUSTER_B"])
def test_reward_token_variables_are_accepted(world, name):
    assert _create(world, {"type": "http", "url": "http://rm:8100", "token_env": name}).status_code == 202
