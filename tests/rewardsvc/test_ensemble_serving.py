"""An ensemble RM trained by a real run, served by the real app: every route answers the members' mean as the
reward and their spread (population std) as ``uncertainty``, equal across routes and to the members scored
one by one; the batcher runs one forward per member per bucket; the Python client reads the field."""

from __future__ import annotations

import statistics
from pathlib import Path

import httpx
import pytest

from annotation.models import Role
from rewardsvc.client import PrefLabRewardClient
from rewardsvc.scoring import RewardScorer
from rewardsvc.server import ServerConfig
from tests.factories import make_project, make_token, make_user
from tests.training.runs.conftest import TINY_CONFIG
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training import jobs
from training.models import JobStatus, RewardModel
from training.rewardmodels.services import reward_run_create
from training.rm_encoding import score_sequences

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("require_postgres"),
    pytest.mark.slow,
]

PROMPT = "\n\nHuman: What is the capital of France?\n\nAssistant:"
RESPONSES = [" Paris is the capital of France.", " I do not know.", " Paris."]


def member_references(artifact_dir: str) -> tuple[list[float], list[float]]:
    """Each member loaded on its own, each input scored alone (batch 1): the mean and population std."""
    scorer = RewardScorer.load(artifact_dir)  # the ensemble's encoding (one tokenizer for all members)
    sequences = [scorer.encode(PROMPT, r).input_ids for r in RESPONSES]
    per_member = []
    for member_dir in sorted((Path(artifact_dir) / "members").iterdir()):
        member = RewardScorer.load(member_dir)
        assert member.ensemble_size == 1
        per_member.append(score_sequences(member.model, sequences, pad_token_id=scorer.pad_id, batch_size=1))
    values = list(zip(*per_member, strict=True))
    return [statistics.fmean(v) for v in values], [statistics.pstdev(v) for v in values]


def test_an_ensemble_is_served_with_its_mean_and_spread_on_every_route(reward_server, tiny_reward_model_dir):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    snapshot = write_snapshot(
        project, {"train": synthetic_pairs(16, seed=1), "test": synthetic_pairs(8, seed=3)}, name="ens"
    )
    config = {**TINY_CONFIG, "ensemble_size": 2, "ensemble_resample": "bootstrap"}
    run = reward_run_create(
        snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=config, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    rm = RewardModel.objects.get(run=run)
    RewardModel.objects.filter(pk=rm.pk).update(is_active=True)
    mean, spread = member_references(rm.artifact_dir)
    assert all(s > 0 for s in spread)  # bootstrap members disagree

    token = make_token(engineer, ["score"])
    auth = {"Authorization": f"Bearer {token}"}
    with reward_server(ServerConfig(project_id=project.pk, poll_seconds=0)) as srv:
        served = srv.service.models.current
        assert served.scorer.ensemble_size == 2
        calls = [0, 0]
        for i, member in enumerate(served.scorer.model.members):  # observe, do not replace
            member.register_forward_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))
        forwards_before = served.batcher.stats.forwards

        # native: the mean as the reward, the spread as uncertainty; normalised, both scale by the std
        items = [{"prompt": PROMPT, "response": r} for r in RESPONSES]
        native = httpx.post(srv.url + "/v1/reward/score", json={"items": items}, headers=auth).json()
        assert set(native) == {"model", "model_version", "rewards", "normalized", "truncated", "uncertainty"}
        assert native["rewards"] == pytest.approx(mean, abs=1e-5)
        assert native["uncertainty"] == pytest.approx(spread, abs=1e-5)
        forwards = served.batcher.stats.forwards - forwards_before
        assert forwards >= 1 and calls == [forwards, forwards]  # one forward per member per bucket

        norm = httpx.post(
            srv.url + "/v1/reward/score", json={"items": items, "normalize": True}, headers=auth
        ).json()
        assert norm["rewards"] == pytest.approx(
            [(m - rm.reward_mean) / rm.reward_std for m in mean], abs=1e-5
        )
        assert norm["uncertainty"] == pytest.approx([s / rm.reward_std for s in spread], abs=1e-5)

        # OpenRLHF: rewards as native; uncertainty at the top and in extra_logs (OpenRLHF logs those)
        payload = {"query": [PROMPT + r for r in RESPONSES], "prompts": [PROMPT] * 3, "labels": ["", "", ""]}
        peer = httpx.post(f"{srv.url}/t/{token}/get_reward", json=payload).json()
        assert peer["rewards"] == peer["scores"] == pytest.approx(native["rewards"], abs=1e-6)
        assert peer["uncertainty"] == pytest.approx(native["uncertainty"], abs=1e-6)
        assert peer["extra_logs"] == {"truncated": [0.0, 0.0, 0.0], "uncertainty": peer["uncertainty"]}

        # vLLM /classify and /pooling: one text; raw reward without activation, the row's uncertainty
        text = PROMPT + RESPONSES[0]
        raw = httpx.post(srv.url + "/classify", json={"input": [text], "use_activation": False}, headers=auth)
        row = raw.json()["data"][0]
        assert set(row) == {"index", "label", "probs", "num_classes", "uncertainty"}
        assert row["probs"] == [pytest.approx(mean[0], abs=1e-5)]
        assert row["uncertainty"] == pytest.approx(spread[0], abs=1e-5)
        act = httpx.post(srv.url + "/classify", json={"input": text}, headers=auth).json()["data"][0]
        assert act["uncertainty"] == pytest.approx(spread[0], abs=1e-5)  # raw units, no sigmoid
        pool = httpx.post(
            srv.url + "/pooling", json={"input": text, "use_activation": False}, headers=auth
        ).json()["data"]
        assert pool == [
            {
                "index": 0,
                "object": "pooling",
                "data": [pytest.approx(mean[0], abs=1e-5)],
                "uncertainty": pytest.approx(spread[0], abs=1e-5),
            }
        ]
        # vLLM /score: prompt and responses as two segments, equal to native, with the rows' uncertainty
        scored = httpx.post(
            srv.url + "/score",
            json={"text_1": PROMPT, "text_2": RESPONSES, "use_activation": False},
            headers=auth,
        ).json()["data"]
        assert [r["score"] for r in scored] == pytest.approx(mean, abs=1e-5)
        assert [r["uncertainty"] for r in scored] == pytest.approx(spread, abs=1e-5)
        models = httpx.get(srv.url + "/v1/models", headers=auth).json()["data"]
        assert models[0]["ensemble_size"] == 2

        # PrefLab's own client reads it
        with PrefLabRewardClient(srv.url, token=token) as client:
            result = client.score([(PROMPT, r) for r in RESPONSES])
        assert result.rewards == pytest.approx(mean, abs=1e-5)
        assert result.uncertainty == pytest.approx(spread, abs=1e-5)
