"""Reward-serving fixtures: RM artifact dirs (tiny model + card), registry rows, a real uvicorn server on a
free loopback port in a thread."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.processes import uvicorn_in_thread
from training.models import RewardModel


def write_rm_dir(src: Path, dest: Path, **card) -> Path:
    shutil.copytree(src, dest)
    base = {
        "reward_mean": 0.0,
        "reward_std": 1.0,
        "max_length": 512,
        "base_model": "tiny",
        "snapshot_hash": "x",
    }
    (dest / "preflab_card.json").write_text(json.dumps({**base, **card}))
    return dest


@pytest.fixture(scope="session")
def tiny_reward_model_dir_v2(tmp_path_factory) -> Path:
    """A second tiny RM (other seed: other scores) for hot-swap tests."""
    from training.tiny_models import save_tiny_reward_model

    return save_tiny_reward_model(tmp_path_factory.mktemp("tiny-rm-v2") / "model", seed=1)


@pytest.fixture
def make_rm(tmp_path):
    """Register a reward model version for a project from a model dir (copied, card written)."""

    def make(project, version: int, src: Path, *, active: bool = False, mean=0.25, std=2.0, max_length=512):
        artifact = write_rm_dir(
            src, tmp_path / f"rm-{project.pk}-v{version}", reward_mean=mean, reward_std=std, version=version
        )
        return RewardModel.objects.create(
            project=project,
            version=version,
            base_model="tiny",
            artifact_dir=str(artifact),
            reward_mean=mean,
            reward_std=std,
            max_length=max_length,
            is_active=active,
        )

    return make


class RunningServer:
    def __init__(self, url: str, app):
        self.url, self.app = url, app

    @property
    def service(self):
        return self.app.state.service


@contextlib.contextmanager
def serve(config, *, expect_ready: bool = True):
    """Run ``create_app(config)`` under uvicorn in a thread; yields a RunningServer."""
    from rewardsvc.server import create_app

    app = create_app(config)
    with uvicorn_in_thread(app) as url:
        assert httpx.get(url + "/health").status_code == (200 if expect_ready else 503)
        yield RunningServer(url, app)


@pytest.fixture
def reward_server():
    """``with reward_server(config) as srv:`` starts a real server; stopped at the end of the block."""
    return serve
