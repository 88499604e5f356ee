"""Server paths stay with admins: the reward-model API (list, detail, a project's active model) and the
reward-model page leave ``artifact_dir`` out for everyone else."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import TokenScope


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_reward_model_api_shows_artifact_dir_to_admins_only(world, role):
    client = world.client_for(role, TokenScope.TRAIN)
    path = world.reward_model.artifact_dir
    bodies = [
        client.get(reverse("reward-model-list")).json()["results"][0],
        client.get(reverse("reward-model-detail", args=[world.reward_model.pk])).json(),
        client.get(reverse("project-active-reward-model", args=[world.project.pk])).json(),
    ]
    for body in bodies:
        assert body["id"] == world.reward_model.pk
        if role == "admin":
            assert body["artifact_dir"] == path
        else:
            assert "artifact_dir" not in body
            assert path not in str(body)


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_reward_model_page_shows_the_path_to_admins_only(world, role):
    page = world.client_for(role).get(reverse("training:reward_model_detail", args=[world.reward_model.pk]))
    assert page.status_code == 200
    assert (world.reward_model.artifact_dir in page.content.decode()) == (role == "admin")
