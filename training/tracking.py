"""Experiment trackers beside PrefLab's own run curves: TRL runs also ``report_to`` TensorBoard and MLflow, as
transformers' own callbacks do, where engineers already look.

``PREFLAB_REPORT_TO`` chooses them ("none" by default). TensorBoard event files go to one folder per run
under ``PREFLAB_TENSORBOARD_DIR`` (default ``<data dir>/tensorboard``, ``var/tensorboard``); MLflow runs go to
``PREFLAB_MLFLOW_TRACKING_URI`` or, unset, to a local file store at ``<data dir>/mlruns`` (``mlflow ui
--backend-store-uri`` on that folder shows them). Each PrefLab run is one tracker run named ``<kind>-run-<id>``
in the experiment ``preflab/<project>``, tagged with the run id, kind, base model and snapshot hash.

transformers' callbacks read their settings from environment variables when the trainer is built, so
``tracking_env`` sets them for the duration of one run and puts the old values back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

#: The trackers PrefLab wires up (transformers' ``report_to`` names).
TRACKERS = ("tensorboard", "mlflow")


@dataclass(frozen=True)
class Tracking:
    """Where one run reports, besides its own ``RunMetric`` rows."""

    report_to: tuple[str, ...] = ()
    run_name: str = ""
    experiment: str = "preflab"
    tensorboard_dir: Path | None = None
    mlflow_tracking_uri: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def trainer_args(self) -> dict:
        """The ``TrainingArguments`` that turn the trackers on (``report_to`` "none" when there are none)."""
        return {"report_to": list(self.report_to) or "none", "run_name": self.run_name or None}


def parse_report_to(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``["tensorboard", "mlflow"]`` from a setting; "none" (or nothing) is no tracker; others are refused."""
    wanted = tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    if wanted in ((), ("none",)):
        return ()
    unknown = [v for v in wanted if v not in TRACKERS]
    if unknown:
        raise ValueError(
            f"PREFLAB_REPORT_TO: unknown tracker(s) {unknown}; choose from none, {', '.join(TRACKERS)}"
        )
    return wanted


def tracking_for(*, kind: str, run_id: int | None, project: str = "", tags: dict | None = None) -> Tracking:
    """The tracking of one PrefLab run, from the settings (``PREFLAB_REPORT_TO`` and friends)."""
    from django.conf import settings

    report_to = parse_report_to(getattr(settings, "PREFLAB_REPORT_TO", ()) or ())
    # Under the data dir, not the artifact dir: MLflow's file store refuses any run path with a folder named
    # "artifacts" in it (a guard against runs planted in artifact folders), and the artifact dir is one.
    data = Path(settings.DATA_DIR)
    tb_root = Path(getattr(settings, "PREFLAB_TENSORBOARD_DIR", "") or data / "tensorboard")
    uri = getattr(settings, "PREFLAB_MLFLOW_TRACKING_URI", "") or (data / "mlruns").resolve().as_uri()
    name = f"{kind}-run-{run_id}" if run_id is not None else f"{kind}-run"
    experiment = f"preflab/{project}" if project else "preflab"
    return Tracking(
        report_to=report_to,
        run_name=name,
        experiment=experiment,
        tensorboard_dir=tb_root / experiment.replace("/", "-") / name,
        mlflow_tracking_uri=uri,
        tags={
            "preflab.kind": kind,
            "preflab.run_id": str(run_id or ""),
            **{k: str(v) for k, v in (tags or {}).items()},
        },
    )


@contextmanager
def tracking_env(tracking: Tracking | None) -> Iterator[None]:
    """Set the environment transformers' TensorBoard and MLflow callbacks read, for one run; restore it after."""
    env: dict[str, str] = {}
    if tracking is not None and "tensorboard" in tracking.report_to and tracking.tensorboard_dir:
        tracking.tensorboard_dir.mkdir(parents=True, exist_ok=True)
        env["TENSORBOARD_LOGGING_DIR"] = str(tracking.tensorboard_dir)
    if tracking is not None and "mlflow" in tracking.report_to:
        env.update(
            MLFLOW_TRACKING_URI=tracking.mlflow_tracking_uri,
            MLFLOW_EXPERIMENT_NAME=tracking.experiment,
            MLFLOW_TAGS=json.dumps(tracking.tags),
            # Params are flattened so nested config dicts stay under MLflow's 250-character value limit.
            MLFLOW_FLATTEN_PARAMS="1",
        )
        if tracking.mlflow_tracking_uri.startswith("file:"):
            # MLflow 3 keeps the file store in maintenance mode and refuses it unless asked: it is the store
            # that needs no server and no SQL driver (mlflow-skinny), so the default here asks.
            env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        if tracking is not None and "mlflow" in tracking.report_to:
            _mlflow_finish()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _mlflow_finish() -> None:
    """Write out MLflow's asynchronous metric queue and close a run left open by an error. A tracker that
    fails here is logged, never raised: it must not hide the run's own outcome or error."""
    try:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED")
        mlflow.flush_async_logging()
    except Exception:  # a tracker never decides the run (docstring)
        logger.warning("MLflow: could not finish the run", exc_info=True)
