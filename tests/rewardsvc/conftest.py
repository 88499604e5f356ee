"""Reward-serving fixtures: RM artifact dirs (tiny model + card), registry rows, a real uvicorn server on a
free loopback port in a thread."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, url: str, app, server, thread):
        self.url, self.app, self.server, self.thread = url, app, server, thread

    @property
    def service(self):
        return self.app.state.service


@contextlib.contextmanager
def serve(config, *, expect_ready: bool = True):
    """Run ``create_app(config)`` under uvicorn in a thread; yields a RunningServer."""
    import uvicorn

    from rewardsvc.server import create_app

    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("reward server failed to start")
        time.sleep(0.05)
    else:
        raise RuntimeError("reward server did not start in 60s")
    assert httpx.get(url + "/health").status_code == (200 if expect_ready else 503)
    try:
        yield RunningServer(url, app, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def reward_server():
    """``with reward_server(config) as srv:`` starts a real server; stopped at the end of the block."""
    return serve
