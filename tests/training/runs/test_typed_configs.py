"""Configs are parsed once, typed, where they enter: a wrong type or an unknown field is a 400 naming the
field at the API, not a failure inside the worker; the stored config is the parsed one."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Role
from tests.factories import add_member, make_project, make_prompt, make_token, make_user
from training.configs import ConfigError, parse_config
from training.models import TrainingRun
from training.policy.spec import PolicyRunSpec, RewardSource
from training.rewardmodels.trainer import RewardRunConfig

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, ['train'])}")
    return client


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"learning_rate": "fast"}, "config.learning_rate"),
        ({"use_lora": 1}, "config.use_lora"),
        ({"max_steps": 2.5}, "config.max_steps"),
        ({"lora_target_modules": "q_proj"}, "config.lora_target_modules"),
        ({"lr": 1e-4}, "config.lr"),
    ],
)
def test_a_bad_reward_run_config_is_a_400_naming_the_field(tiny_snapshot, config, field):
    engineer = make_user(Role.ENGINEER)
    for project in tiny_snapshot.projects.all():
        add_member(project, engineer, Role.ENGINEER)
    body = {"snapshot_id": tiny_snapshot.pk, "base_model": "tiny", "config": config}
    resp = _api(engineer).post("/api/v1/runs/", body, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["error"]["fields"]
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"algorithm": {"learning_rate": "fast"}}, "config.algorithm.learning_rate"),
        ({"prompts": {"source": "list", "items": "one prompt"}}, "config.prompts.items"),
        ({"battle": {"held_out": "8"}}, "config.battle.held_out"),
        ({"battle": {"heldout": 8}}, "config.battle.heldout"),
        ({"reward": {"type": "rule", "name": "keyword", "keywrd": "x"}}, "config.reward.keywrd"),
        ({"critic": "x"}, "config.critic"),
    ],
)
def test_a_bad_policy_run_config_is_a_400_naming_the_field(config, field):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_prompt(project, "Question?")
    body = {"kind": "grpo", "base_model": "/models/sft", "project_id": project.pk, "config": config}
    resp = _api(engineer).post(reverse("policy-run-list"), body, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["error"]["fields"], resp.json()
    assert not TrainingRun.objects.exists()


def test_policy_run_spec_has_typed_sub_configs_and_round_trips():
    spec = PolicyRunSpec.from_dict(
        {
            "reward": {"type": "rule", "name": "length", "target": 20},
            "prompts": {"source": "list", "items": ["a"]},
        }
    )
    assert isinstance(spec.reward, RewardSource) and spec.reward.target == 20.0
    assert spec.prompts.items == ["a"] and spec.battle.enabled in (True, False)
    assert PolicyRunSpec.from_dict(spec.to_dict()) == spec


def test_parse_config_names_nested_fields_and_refuses_non_objects():
    with pytest.raises(ConfigError) as info:
        parse_config(RewardRunConfig, {"learning_rate": "fast", "bogus": 1})
    assert set(info.value.errors) == {"learning_rate", "bogus"}
    assert info.value.errors["bogus"] == ["unknown field"]
    with pytest.raises(ConfigError):
        parse_config(RewardRunConfig, ["learning_rate"])
    assert parse_config(RewardRunConfig, None) == RewardRunConfig()
