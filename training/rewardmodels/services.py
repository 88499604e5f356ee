"""Training-run writes: create and enqueue a reward-model run, cancel, retry, the live-agreement record and
the retraining trigger (manual, or automatic once enough new judgments have arrived since the project's last
snapshot, or once the active model's agreement with new human votes has dropped by a set amount)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from training import jobs
from training.configs import ConfigError
from training.limits import work_limits_check
from training.models import DatasetSnapshot, JobStatus, LiveAgreement, RunKind, TrainingRun, check_seed
from training.rewardmodels.trainer import RewardRunConfig

logger = logging.getLogger(__name__)


@transaction.atomic
def reward_run_create(
    *,
    snapshot: DatasetSnapshot,
    base_model: str,
    config: dict[str, Any] | RewardRunConfig | None = None,
    seed: int = 42,
    project=None,
    user=None,
    retry_of: TrainingRun | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Create a queued reward-model run on a ready snapshot and send it to the ``training`` queue."""
    if snapshot.status != JobStatus.SUCCEEDED:
        raise ValidationError({"snapshot": f"snapshot {snapshot} is not ready ({snapshot.status})"})
    if not base_model:
        raise ValidationError({"base_model": "a base model (Hugging Face id or directory) is required"})
    check_seed(seed)
    try:
        cfg = config if isinstance(config, RewardRunConfig) else RewardRunConfig.from_dict(config)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("config")) from exc
    if cfg.max_length < 8:
        raise ValidationError({"config": "max_length must be at least 8"})
    for name in ("eval_steps", "early_stopping_patience"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise ValidationError({"config": f"config.{name}: must be at least 1 (or null)"})
    if cfg.early_stopping_patience and cfg.eval_strategy == "no":
        raise ValidationError(
            {"config": "config.early_stopping_patience: needs eval_strategy 'steps' or 'epoch'"}
        )
    for name, value, low in (
        ("ensemble_size", cfg.ensemble_size, 1),
        ("length_penalty", cfg.length_penalty, 0),
    ):
        if value < low:
            raise ValidationError({f"config.{name}": [f"config.{name}: must be at least {low}, got {value}"]})
    work_limits_check("config", cfg)
    project = project or snapshot.projects.order_by("pk").first()
    run = TrainingRun.objects.create(
        kind=RunKind.REWARD,
        project=project,
        snapshot=snapshot,
        base_model=base_model,
        config=cfg.to_dict(),
        seed=seed,
        created_by=user if user is not None and user.is_authenticated else None,
        retry_of=retry_of,
    )
    run.output_dir = str(Path(settings.ARTIFACT_DIR) / "reward_models" / f"run-{run.pk}")
    run.save(update_fields=["output_dir"])
    if enqueue:
        jobs.run_enqueue(run_id=run.pk)
    return run


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run now, a running one at its next training step."""
    return jobs.run_cancel_request(run_id=run.pk)


def run_retry(*, run: TrainingRun, user=None) -> TrainingRun:
    """A new queued run with the same spec as a finished one (``retry_of`` records the lineage)."""
    if run.status not in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCEEDED):
        raise ValidationError("only a finished run can be retried")
    if run.kind != RunKind.REWARD:
        raise ValidationError("this service retries reward-model runs only")
    return reward_run_create(
        snapshot=run.snapshot,
        base_model=run.base_model,
        config=run.config,
        seed=run.seed,
        project=run.project,
        user=user,
        retry_of=run,
    )


def judgments_since_last_snapshot(*, project) -> tuple[int, DatasetSnapshot | None]:
    """How many judgments of a project arrived after its latest ready snapshot was created."""
    from annotation.models import Judgment

    last = (
        DatasetSnapshot.objects.filter(projects=project, status=JobStatus.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    qs = Judgment.objects.filter(task__project=project)
    if last is not None:
        qs = qs.filter(created_at__gt=last.created_at)
    return qs.count(), last


def retrain_check(
    *, project, threshold: int | None = None, user=None, force: bool = False
) -> TrainingRun | None:
    """The retraining trigger: when ``force`` (manual) or at least ``threshold`` new judgments arrived since
    the latest snapshot, build a new snapshot with the latest snapshot's spec and queue a reward run with
    the project's latest reward run's spec. Returns the new run, or None if nothing was due.

    Needs the snapshot services (``training.datasets.services``) to build the new snapshot."""
    threshold = settings.PREFLAB_RETRAIN_AFTER_JUDGMENTS if threshold is None else threshold
    new, last = judgments_since_last_snapshot(project=project)
    if not force and new < threshold:
        return None
    template = TrainingRun.objects.filter(project=project, kind=RunKind.REWARD).order_by("-id").first()
    if template is None or last is None:
        raise ValidationError("retraining needs a previous snapshot and reward run to copy their specs")
    from training.datasets import services as snapshots

    spec = {**(last.spec or {}), "projects": sorted({*(last.spec or {}).get("projects", []), project.pk})}
    snapshot = snapshots.snapshot_create(user=user, spec=spec, name=last.name, enqueue=False)
    snapshot = snapshots.snapshot_build(snapshot_id=snapshot.pk)
    if snapshot.status != JobStatus.SUCCEEDED:
        raise ValidationError(f"the retraining snapshot failed: {snapshot.error}")
    return reward_run_create(
        snapshot=snapshot,
        base_model=template.base_model,
        config=template.config,
        seed=template.seed,
        project=project,
        user=user,
        retry_of=template,
    )


def live_agreement_record(*, reward_model) -> LiveAgreement:
    """Measure the model's live agreement with new human votes (``reward_model_live_agreement``) and store it
    with the model's test accuracy as the baseline."""
    from training.rewardmodels.selectors import reward_model_live_agreement, reward_model_test_accuracy

    live = reward_model_live_agreement(reward_model)
    return LiveAgreement.objects.create(
        reward_model=reward_model,
        n=live["all"]["n"],
        accuracy=live["all"]["accuracy"],
        low=live["all"]["low"],
        high=live["all"]["high"],
        random_n=live["random_share"]["n"],
        random_accuracy=live["random_share"]["accuracy"],
        baseline=reward_model_test_accuracy(reward_model),
    )


def live_agreements_refresh() -> list[LiveAgreement]:
    """The periodic job: a live-agreement measurement for every active reward model."""
    from training.models import RewardModel

    return [
        live_agreement_record(reward_model=rm)
        for rm in RewardModel.objects.filter(is_active=True).select_related("snapshot").order_by("pk")
    ]


def agreement_drop_due(project) -> LiveAgreement | None:
    """The measurement that calls for retraining ``project``, or None: its ``retrain_agreement_drop`` is set,
    the active model's latest measurement has at least ``PREFLAB_LIVE_AGREEMENT_MIN_VOTES`` votes and is at
    least that far below the model's test accuracy, and no reward run was started since that model was
    registered (one retrain per model: a retrained model that is not promoted does not retrain again)."""
    drop = project.retrain_agreement_drop or 0
    if drop <= 0:
        return None
    latest = (
        LiveAgreement.objects.filter(reward_model__project=project, reward_model__is_active=True)
        .select_related("reward_model")
        .order_by("-id")
        .first()
    )
    if latest is None or latest.n < settings.PREFLAB_LIVE_AGREEMENT_MIN_VOTES or latest.drop is None:
        return None
    if latest.drop < drop:
        return None
    retrained = TrainingRun.objects.filter(
        project=project, kind=RunKind.REWARD, created_at__gt=latest.reward_model.created_at
    ).exists()
    return None if retrained else latest


def retrain_due(*, threshold: int | None = None) -> list[TrainingRun]:
    """The automatic retraining trigger, run periodically by ``celery beat``: for every project that has a
    reward run to copy and none queued or running, ``retrain_check`` it. Returns the runs it queued.

    Two reasons to retrain: new judgments (each project's ``retrain_after_judgments`` wins when set;
    otherwise ``threshold``, default ``PREFLAB_RETRAIN_AFTER_JUDGMENTS``; 0 or less turns it off) and an
    agreement drop (``agreement_drop_due``). Running it again without new judgments queues nothing: each
    retrain builds a snapshot, which resets the count, and a project whose retrain run has not finished yet is
    skipped so runs cannot pile up."""
    default = settings.PREFLAB_RETRAIN_AFTER_JUDGMENTS if threshold is None else threshold
    trained = TrainingRun.objects.filter(kind=RunKind.REWARD, project__isnull=False)
    busy = trained.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).values("project_id")
    project_ids = trained.exclude(project_id__in=busy).values_list("project_id", flat=True).distinct()
    from annotation.models import Project

    queued = []
    for project in Project.objects.filter(pk__in=list(project_ids)).order_by("pk"):
        own = project.retrain_after_judgments
        limit = default if own is None else own
        dropped = agreement_drop_due(project)
        if limit <= 0 and dropped is None:
            continue
        try:
            if dropped is not None:
                run = retrain_check(project=project, force=True)
            else:
                run = retrain_check(project=project, threshold=limit)
        except ValidationError as exc:  # one broken project must not stop the others
            logger.warning("automatic retrain of project %s failed: %s", project.pk, exc)
            continue
        if run is not None:
            why = (
                f"live agreement {dropped.accuracy} is {dropped.drop} below test accuracy {dropped.baseline}"
                if dropped is not None
                else "new judgments"
            )
            logger.info("automatic retrain of project %s queued run %s (%s)", project.pk, run.pk, why)
            queued.append(run)
    return queued
