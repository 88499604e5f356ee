"""Scale-out: the accelerate command is built right, and a run spec runs outside Celery (``--spec``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.training.runs.conftest import TINY_CONFIG
from training.models import JobStatus, RewardModel, TrainingRun
from training.rewardmodels.evaluation import RewardModelCard
from training.rewardmodels.launch import build_accelerate_command, main, run_spec_from_run


def test_accelerate_command_single_node_multi_gpu():
    cmd = build_accelerate_command(
        run_id=7, num_processes=4, mixed_precision="bf16", accelerate_bin="accelerate"
    )
    assert cmd == [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "4", "--num_machines", "1",
        "--mixed_precision", "bf16", "-m", "training.rewardmodels.launch", "--run-id", "7",
    ]  # fmt: skip


def test_accelerate_command_multi_node_and_spec():
    cmd = build_accelerate_command(
        spec_path="/x/spec.json", num_processes=8, num_machines=2, machine_rank=1,
        main_process_ip="10.0.0.1", gpu_ids="0,1,2,3", accelerate_bin="acc",
    )  # fmt: skip
    assert cmd[:3] == ["acc", "launch", "--multi_gpu"]
    joined = " ".join(cmd)
    assert "--num_machines 2" in joined and "--machine_rank 1" in joined
    assert "--main_process_ip 10.0.0.1 --main_process_port 29500" in joined
    assert "--gpu_ids 0,1,2,3" in joined and joined.endswith(
        "-m training.rewardmodels.launch --spec /x/spec.json"
    )


def test_single_process_command_has_no_multi_gpu_flag_and_bad_args_fail():
    assert "--multi_gpu" not in build_accelerate_command(run_id=1, accelerate_bin="a")
    with pytest.raises(ValueError):
        build_accelerate_command(run_id=1, spec_path="x")
    with pytest.raises(ValueError):
        build_accelerate_command(run_id=1, num_machines=2)


@pytest.mark.django_db
def test_spec_runs_outside_celery(tiny_snapshot, tiny_reward_model_dir, tmp_path, capsys):
    run = TrainingRun(
        pk=999, base_model=str(tiny_reward_model_dir), snapshot=tiny_snapshot, config=TINY_CONFIG, seed=3,
        output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(run_spec_from_run(run)))
    assert main(["--spec", str(spec_path)]) == 0
    out = Path(run.output_dir)
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["world_size"] == 1 and metrics["eval"]["n"] == 12
    card = json.loads((out / "preflab_card.json").read_text())
    assert card["snapshot_hash"] == tiny_snapshot.content_hash
    # the same card as the Celery executor writes (it had drifted: no metrics, no eval split, no data report)
    assert set(card) == {f.name for f in dataclasses.fields(RewardModelCard)}
    assert card["run_id"] == 999 and card["eval_split"] == "test" and card["metrics"]["n"] == 12
    assert card["reward_std"] > 0 and card["params"]["max_length"] == TINY_CONFIG["max_length"]


@pytest.mark.django_db
def test_train_rm_command_sync_and_print_command(tiny_snapshot, tiny_reward_model_dir, capsys):
    config = json.dumps(TINY_CONFIG)
    call_command(
        "train_rm", "--snapshot", str(tiny_snapshot.pk), "--base-model", str(tiny_reward_model_dir),
        "--config", config, "--sync",
    )  # fmt: skip
    out = capsys.readouterr().out
    run = TrainingRun.objects.order_by("-id").first()
    assert run.status == JobStatus.SUCCEEDED and f"run {run.pk}: succeeded" in out
    assert RewardModel.objects.filter(run=run).exists()
    call_command(
        "train_rm", "--snapshot", str(tiny_snapshot.pk), "--base-model", "minilm", "--accelerate", "2",
        "--print-command",
    )  # fmt: skip
    out = capsys.readouterr().out
    queued = TrainingRun.objects.order_by("-id").first()
    assert queued.status == JobStatus.QUEUED and not queued.celery_task_id  # not sent to Celery
    assert (
        f"--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no -m training.rewardmodels.launch --run-id {queued.pk}"
        in out
    )
