"""Writes of the capability gate: create (and queue) a ``gate`` run for a policy run, record each model's
score on each task set, and keep the policy run's ``summary["capability"]`` in step.

``summary["capability"]`` is the contract the promotion gate reads::

    {"gate_run_id": 12, "status": "queued|running|succeeded|failed|cancelled|disabled",
     "sets": {"arithmetic": {"base": {"score", "low", "high", "n"}, "sft": {...}, "policy": {...}}}}
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from training import jobs
from training.configs import ConfigError
from training.limits import work_limits_check
from training.models import CapabilityResult, JobStatus, ModelRole, RunKind, TrainingRun
from training.policy.capability.config import GateConfig
from training.policy.capability.intervals import ScoreInterval

#: Policy run kinds whose success queues the capability gate (``dpo`` by name: the kind may be newer).
GATED_KINDS = (RunKind.PPO.value, RunKind.GRPO.value, RunKind.RLOO.value, "dpo")


def gate_config_parse(data: dict[str, Any] | None) -> GateConfig:
    """A gate config from JSON, or ``ValidationError`` whose fields are ``gate.<field>`` (type, unknown key,
    range, registry, work limit), each message naming its field: what every entry point calls before it
    creates anything."""
    try:
        cfg = GateConfig.from_dict(data)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("gate")) from exc
    problems = cfg.errors()
    try:
        work_limits_check("gate", cfg)
    except ValidationError as exc:
        problems += exc.message_dict["config"]
    if problems:
        errors: dict[str, list[str]] = {}
        for message in problems:
            errors.setdefault(message.split(":", 1)[0], []).append(message)
        raise ValidationError(errors)
    return cfg


def gate_models(policy_run: TrainingRun) -> dict[str, str]:
    """role -> model directory: base (when known), the SFT model the run started from, the trained policy."""
    from training.policy.spec import PolicyRunSpec, sft_base_model

    base = ""
    with contextlib.suppress(ConfigError):  # an older run's config: fall back to the SFT card
        base = PolicyRunSpec.from_dict(policy_run.config).battle.base_model
    base = base or sft_base_model(policy_run.base_model)
    models = {ModelRole.BASE.value: base} if base else {}
    models[ModelRole.SFT.value] = policy_run.base_model
    models[ModelRole.POLICY.value] = (policy_run.summary or {}).get("model_dir") or policy_run.output_dir
    return models


def _write_capability(policy_run_id: int, update) -> None:
    """Change the policy run's ``summary["capability"]`` under the row lock the reporter also takes."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().only("summary").get(pk=policy_run_id)
        summary = dict(run.summary or {})
        summary["capability"] = update(dict(summary.get("capability") or {}))
        TrainingRun.objects.filter(pk=policy_run_id).update(summary=summary)


def capability_disabled_record(*, policy_run: TrainingRun) -> None:
    _write_capability(policy_run.pk, lambda _: {"gate_run_id": None, "status": "disabled", "sets": {}})


@transaction.atomic
def gate_run_create(
    *,
    policy_run: TrainingRun,
    config: dict[str, Any] | None = None,
    user=None,
    require_finished: bool = True,
    enqueue: bool = True,
) -> TrainingRun:
    """Validate the gate config, create the queued ``gate`` run for ``policy_run`` and queue it.

    ``require_finished``: the policy run must have succeeded (an on-demand gate); the policy executor
    queues its own gate while it finishes, with its model already saved, and passes False."""
    if policy_run.kind not in GATED_KINDS:
        raise ValidationError({"policy_run": f"a {policy_run.kind} run has no capability gate"})
    if require_finished and policy_run.status != JobStatus.SUCCEEDED:
        raise ValidationError({"policy_run": f"the policy run has not succeeded ({policy_run.status})"})
    cfg = gate_config_parse(config)
    if not cfg.sets and not cfg.harness_tasks:
        raise ValidationError({"gate.sets": ["gate.sets: name at least one task set or harness task"]})
    models = gate_models(policy_run)
    if not Path(models[ModelRole.POLICY]).is_dir():
        raise ValidationError({"policy_run": "the policy run has no saved model to evaluate"})
    gate = TrainingRun.objects.create(
        kind=RunKind.GATE,
        project=policy_run.project,
        snapshot=policy_run.snapshot,
        base_model=models[ModelRole.POLICY],
        config={"policy_run_id": policy_run.pk, "models": models, "gate": cfg.to_dict()},
        seed=cfg.seed,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    _write_capability(policy_run.pk, lambda _: {"gate_run_id": gate.pk, "status": "queued", "sets": {}})
    if enqueue:
        jobs.run_enqueue(run_id=gate.pk)
    return gate


def capability_status_record(*, gate_run: TrainingRun, status: str) -> None:
    """Set the status in the policy run's summary, if it still points at this gate run."""
    policy_run_id = gate_run.config["policy_run_id"]

    def update(cap: dict) -> dict:
        if cap.get("gate_run_id") == gate_run.pk:
            cap["status"] = status
        return cap

    _write_capability(policy_run_id, update)


@transaction.atomic
def capability_result_record(
    *,
    gate_run: TrainingRun,
    role: str,
    model_path: str,
    task_set: str,
    interval: ScoreInterval,
    details: list[dict[str, Any]],
) -> CapabilityResult:
    """One model's score on one set: the row, and its cell in the policy run's summary."""
    policy_run_id = gate_run.config["policy_run_id"]
    row = CapabilityResult.objects.create(
        run=gate_run,
        policy_run_id=policy_run_id,
        model_role=role,
        model_path=model_path[:500],
        task_set=task_set,
        score=interval.score,
        ci_low=interval.low,
        ci_high=interval.high,
        n=interval.n,
        details=details,
    )

    def update(cap: dict) -> dict:
        if cap.get("gate_run_id") == gate_run.pk:
            sets = dict(cap.get("sets") or {})
            sets[task_set] = {**sets.get(task_set, {}), role: interval.as_dict()}
            cap["sets"] = sets
        return cap

    _write_capability(policy_run_id, update)
    return row
