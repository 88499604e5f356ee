"""Experiment tracking beside PrefLab's own curves: a tiny reward-model run with PREFLAB_REPORT_TO writes
TensorBoard event files and an MLflow run in the local file store under the artifact dir (read back with
TensorBoard's event reader and MLflow's client), and still writes its own metric rows."""

from __future__ import annotations

import os

import pytest

from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.models import JobStatus, RunMetric
from training.rewardmodels.services import reward_run_create
from training.tracking import parse_report_to, tracking_env, tracking_for


@pytest.mark.django_db
def test_a_run_reports_to_tensorboard_and_mlflow_and_keeps_its_own_curves(
    settings, monkeypatch, tmp_path, tiny_snapshot, tiny_reward_model_dir
):
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    settings.PREFLAB_REPORT_TO = ["tensorboard", "mlflow"]
    settings.DATA_DIR = tmp_path / "var"  # the default stores live in the data dir
    config = {**TINY_CONFIG, "eval_strategy": "steps", "eval_steps": 2}
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=config, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    assert RunMetric.objects.filter(run=run).count() >= 4  # PrefLab's own rows stay
    for name in ("MLFLOW_TRACKING_URI", "TENSORBOARD_LOGGING_DIR", "MLFLOW_ALLOW_FILE_STORE"):
        assert name not in os.environ, name  # set for the run only

    # TensorBoard: event files in <data dir>/tensorboard/<experiment>/<run>/ with the train and eval scalars.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "var" / "tensorboard" / f"preflab-{run.project.name}" / f"reward-run-{run.pk}"
    assert list(run_dir.glob("events.out.tfevents.*")), list(tmp_path.rglob("*"))
    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/accuracy", "eval/accuracy"} <= scalars, scalars
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]

    # MLflow: a run in the local file store <data dir>/mlruns, named and tagged after the PrefLab run.
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv(
        "MLFLOW_ALLOW_FILE_STORE", "true"
    )  # reading MLflow 3's file store needs the same opt-in
    client = MlflowClient(tracking_uri=(tmp_path / "var" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name(f"preflab/{run.project.name}")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == f"reward-run-{run.pk}" and found.info.status == "FINISHED"
    assert found.data.tags["preflab.run_id"] == str(run.pk)
    assert found.data.tags["preflab.snapshot_hash"] == tiny_snapshot.content_hash
    assert {"loss", "accuracy", "eval_accuracy"} <= set(found.data.metrics)
    history = client.get_metric_history(found.info.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    assert found.data.params["learning_rate"] == str(TINY_CONFIG["learning_rate"])


@pytest.mark.django_db
def test_tracking_is_off_by_default_and_names_a_tracking_uri_when_set(settings, tmp_path):
    off = tracking_for(kind="reward", run_id=3, project="p")
    assert off.report_to == () and off.trainer_args() == {"report_to": "none", "run_name": "reward-run-3"}
    settings.PREFLAB_REPORT_TO = ["mlflow"]
    settings.PREFLAB_MLFLOW_TRACKING_URI = "http://mlflow.internal:5000"
    on = tracking_for(kind="reward", run_id=3, project="p")
    assert on.mlflow_tracking_uri == "http://mlflow.internal:5000" and on.experiment == "preflab/p"
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "someone-else"
    try:
        with tracking_env(on):
            assert os.environ["MLFLOW_TRACKING_URI"] == "http://mlflow.internal:5000"
            assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "preflab/p"
        assert (
            os.environ["MLFLOW_EXPERIMENT_NAME"] == "someone-else" and "MLFLOW_TRACKING_URI" not in os.environ
        )
    finally:
        del os.environ["MLFLOW_EXPERIMENT_NAME"]


def test_report_to_names_are_checked():
    assert parse_report_to(["none"]) == () and parse_report_to([]) == ()
    assert parse_report_to(["TensorBoard", " mlflow", "tensorboard"]) == ("tensorboard", "mlflow")
    with pytest.raises(ValueError, match="wandb"):
        parse_report_to(["wandb"])
