"""Fixtures of the policy-loop tests: a loopback reward server that speaks the ``/v1/reward/score`` contract."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def loopback_reward_server(tiny_reward_model_dir):
    """A real HTTP server on 127.0.0.1 serving ``POST /v1/reward/score`` from an in-process tiny RM.

    Yields ``(base_url, token, calls)``; ``calls`` records each request body it answered.
    """
    from training.policy.rewards import InProcessReward

    rm = InProcessReward(tiny_reward_model_dir, max_length=128)
    token = "pl_test-token"
    calls: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            if self.path != "/v1/reward/score":
                self.send_error(404)
                return
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_error(401)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(body)
            items = body["items"]
            rewards = rm([i["prompt"] for i in items], [i["response"] for i in items])
            payload = json.dumps({"rewards": rewards}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", token, calls, rm
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def real_reward_server(tiny_reward_model_dir, tmp_path):
    """PrefLab's own reward server (``rewardsvc.server``) under uvicorn on a loopback port, serving the tiny
    RM. Yields its base URL. Tests using it need committed rows (``django_db(transaction=True)``) because
    the server looks tokens up from its own thread."""
    import shutil

    import httpx

    from rewardsvc.server import ServerConfig, create_app
    from tests.processes import uvicorn_in_thread

    model_dir = tmp_path / "rm"
    shutil.copytree(tiny_reward_model_dir, model_dir)
    card = {"reward_mean": 0.0, "reward_std": 1.0, "max_length": 128, "base_model": "tiny", "version": 1}
    (model_dir / "preflab_card.json").write_text(json.dumps(card))
    app = create_app(ServerConfig(model_dir=str(model_dir), num_threads=1, poll_seconds=0, sample_rate=0.0))
    with uvicorn_in_thread(app) as url:
        assert httpx.get(url + "/health").status_code == 200
        yield url


@contextlib.contextmanager
def cancel_on_first_row(model):
    """Request the cancel of a run as soon as its first ``model`` row (with a ``run_id``) is saved: a cancel
    that lands mid-way through a job, without timing."""
    from django.db.models.signals import post_save

    from training import jobs

    def cancel(sender, instance, created, **kwargs):
        if created:
            jobs.run_cancel_request(run_id=instance.run_id)

    post_save.connect(cancel, sender=model)
    try:
        yield
    finally:
        post_save.disconnect(cancel, sender=model)


@pytest.fixture
def engineer_project():
    """An engineer and a project they are an engineer of."""
    from annotation.models import Role
    from tests.factories import make_project, make_user

    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    return engineer, project


def finished_policy_run(project, engineer, sft_dir, settings, kind=None):
    """A succeeded policy run (PPO unless ``kind``) whose saved model is a copy of the tiny LM (what a trainer
    leaves behind)."""
    import shutil

    from training.models import JobStatus, RunKind, TrainingRun

    run = TrainingRun.objects.create(
        kind=kind or RunKind.PPO,
        project=project,
        base_model=str(sft_dir),
        status=JobStatus.SUCCEEDED,
        created_by=engineer,
        config={},
    )
    out = settings.ARTIFACT_DIR / "policies" / f"run-{run.pk}"
    shutil.copytree(sft_dir, out)
    run.output_dir = str(out)
    run.summary = {"model_dir": str(out)}
    run.save(update_fields=["output_dir", "summary"])
    return run


def assert_gate_config_refused(engineer, project, policy, gate, field) -> str:
    """A bad gate config is a 400 naming ``field`` both on ``POST /policy-runs/{id}/capability/`` and inside a
    new policy run's config, and writes nothing. Returns the first refusal's message."""
    from django.urls import reverse

    from tests.factories import token_client
    from training.models import CapabilityResult, TrainingRun

    client = token_client(engineer, ("train",))
    before = TrainingRun.objects.count()
    resp = client.post(reverse("policy-run-capability", args=[policy.pk]), {"gate": gate}, format="json")
    assert resp.status_code == 400 and field in resp.json()["error"]["message"], resp.content
    assert field in resp.json()["error"]["fields"]
    message = resp.json()["error"]["message"]
    body = {"kind": "ppo", "base_model": "/models/sft", "project_id": project.pk, "config": {"gate": gate}}
    resp = client.post(reverse("policy-run-list"), body, format="json")
    assert resp.status_code == 400 and field in resp.json()["error"]["message"], resp.content
    assert TrainingRun.objects.count() == before and not CapabilityResult.objects.exists()
    return message
