"""Writes of the policy loop: create (and enqueue) SFT / PPO / GRPO / RLOO runs, and keep a running policy
run's live extras (sample responses, failure-detector warnings) in ``TrainingRun.summary``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from training import jobs
from training.configs import ConfigError
from training.limits import work_limits_check
from training.models import DatasetSnapshot, JobStatus, RunKind, TrainingRun, check_seed
from training.policy.spec import PolicyRunSpec, RewardSource, algorithm_config

POLICY_KINDS = (RunKind.SFT, RunKind.PPO, RunKind.GRPO, RunKind.RLOO)
#: Sample-response steps kept in the run summary for the run page.
SAMPLE_STEPS_KEPT = 5


def policy_output_dir(run: TrainingRun) -> str:
    return str(Path(settings.ARTIFACT_DIR) / "policies" / f"run-{run.pk}")


@transaction.atomic
def policy_run_create(
    *,
    kind: str,
    base_model: str,
    config: dict[str, Any] | None = None,
    project=None,
    snapshot: DatasetSnapshot | None = None,
    seed: int = 42,
    user=None,
    enqueue: bool = True,
) -> TrainingRun:
    """Validate a policy run's spec, create the queued run and send it to the ``training`` queue.

    ``base_model`` is the model to start from: the pretrained model for SFT, the SFT model (which is also the
    frozen reference) for PPO / GRPO / RLOO."""
    if kind not in POLICY_KINDS:
        raise ValidationError({"kind": f"not a policy run kind: {kind!r}"})
    if not base_model:
        raise ValidationError({"base_model": "a base model (directory or Hugging Face id) is required"})
    check_seed(seed)
    try:
        spec = PolicyRunSpec.from_dict(config)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("config")) from exc
    try:
        algo = algorithm_config(kind, spec.algorithm)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("config.algorithm")) from exc
    prompts = spec.prompts
    work_limits_check("algorithm", algo)
    work_limits_check("prompts", prompts)
    work_limits_check("battle", spec.battle)
    battle_errors = spec.battle.errors()
    if battle_errors:
        raise ValidationError({"config": battle_errors})
    if snapshot is not None and snapshot.status != JobStatus.SUCCEEDED:
        raise ValidationError({"snapshot": f"snapshot {snapshot} is not ready ({snapshot.status})"})
    if kind == RunKind.SFT:
        if getattr(algo, "source", "snapshot") == "snapshot" and snapshot is None:
            raise ValidationError(
                {"snapshot": "an SFT run on a snapshot's chosen responses needs a snapshot"}
            )
        if algo.source == "demonstrations" and not Path(algo.demonstrations_path).is_file():
            raise ValidationError({"config": f"demonstrations file not found: {algo.demonstrations_path}"})
    else:
        if prompts.source == "project" and project is None:
            raise ValidationError({"project": "prompts from the project need a project"})
        if prompts.source == "snapshot" and snapshot is None:
            raise ValidationError({"snapshot": "prompts from a snapshot need a snapshot"})
        if prompts.source == "list" and not prompts.items:
            raise ValidationError({"config": "prompts.items is empty"})
        if spec.reward.type == "http" and not spec.reward.url:
            raise ValidationError({"config": "reward.url is required for an HTTP reward"})
    if spec.reward.token:
        raise ValidationError(
            {"config": "do not store tokens in a run; use reward.token_env (an env var name)"}
        )
    _check_reward_access(spec.reward, user)
    spec.algorithm = _asdict(algo)
    run = TrainingRun.objects.create(
        kind=kind,
        project=project
        if project is not None
        else (snapshot.projects.order_by("pk").first() if snapshot else None),
        snapshot=snapshot,
        base_model=base_model,
        config=spec.to_dict(),
        seed=seed,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    run.output_dir = policy_output_dir(run)
    run.save(update_fields=["output_dir"])
    if enqueue:
        jobs.run_enqueue(run_id=run.pk)
    return run


#: The environment variables an HTTP reward may send as its bearer token: a run must not be able to send
#: the worker's other secrets (SECRET_KEY, DATABASE_URL, ...) to a URL of its choosing.
REWARD_TOKEN_ENV = re.compile(r"^PREFLAB_REWARD_TOKEN(_[A-Z0-9_]+)?$")


def _check_reward_access(reward: RewardSource, user) -> None:
    """A registry reward model must belong to a project the user can see (the rule every other route
    applies to reward models), and an HTTP reward's ``token_env`` must name a reward-token variable."""
    if reward.type == "registry":
        from annotation.auth import visible_projects
        from training.models import RewardModel

        rm_id = reward.reward_model_id
        visible = RewardModel.objects.all()
        if user is not None:
            visible = visible.filter(project__in=visible_projects(user))
        if rm_id is None or not visible.filter(pk=rm_id).exists():
            raise ValidationError(
                {"config": f"reward.reward_model_id: no such reward model ({str(rm_id)[:20]})"}
            )
    if not REWARD_TOKEN_ENV.match(reward.token_env):
        raise ValidationError(
            {"config": "reward.token_env must be PREFLAB_REWARD_TOKEN or PREFLAB_REWARD_TOKEN_<NAME>"}
        )


def _asdict(obj) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def policy_run_live_update(
    *, run_id: int, step: int, samples: list[dict] | None = None, warnings: list[dict] | None = None
) -> None:
    """Merge the latest sample responses (last few steps kept) and the current detector warnings into the
    run's summary, under a row lock (the reporter writes ``summary["latest"]`` the same way)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().only("summary").get(pk=run_id)
        summary = dict(run.summary or {})
        if samples:
            kept = [s for s in summary.get("samples", []) if s.get("step") != step]
            kept.append({"step": step, "items": samples})
            summary["samples"] = kept[-SAMPLE_STEPS_KEPT:]
        if warnings is not None:
            summary["warnings"] = warnings
        TrainingRun.objects.filter(pk=run_id).update(summary=summary)


def policy_openrlhf_export(
    *, run: TrainingRun, reward_server_url: str, save_path: str = "", cluster=None
) -> dict[str, Any]:
    """Write the PPO run's training prompts as OpenRLHF JSONL next to its outputs and return the
    ``ray job submit`` command (and its argument list) that trains the same config with OpenRLHF."""
    from training.policy.openrlhf import export_prompts, openrlhf_args, openrlhf_command
    from training.policy.spec import algorithm_config, battle_config, resolve_prompts, split_held_out

    if run.kind != RunKind.PPO:
        raise ValidationError({"kind": "only PPO runs can be exported to OpenRLHF"})
    spec = PolicyRunSpec.from_dict(run.config)
    cfg = algorithm_config(RunKind.PPO, spec.algorithm)
    cfg.seed = run.seed
    bcfg = battle_config(spec)
    try:
        prompts = resolve_prompts(run, spec)
    except ValueError as exc:
        raise ValidationError({"prompts": str(exc)}) from exc
    train, _ = split_held_out(prompts, bcfg.held_out if bcfg.enabled else 0, run.seed)
    root = Path(settings.ARTIFACT_DIR) / "policies" / f"run-{run.pk}-openrlhf"
    prompt_path = export_prompts(train, root / "prompts.jsonl")
    kwargs = dict(
        cfg=cfg,
        pretrain=run.base_model,
        prompt_data=str(prompt_path),
        reward_server_url=reward_server_url,
        save_path=save_path or str(root / "checkpoint"),
        n_prompts=len(train),
        critic_pretrain=spec.critic_model,
        cluster=cluster,
    )
    return {
        "command": openrlhf_command(**kwargs),
        "args": openrlhf_args(**kwargs),
        "prompt_data": str(prompt_path),
        "prompts": len(train),
    }
