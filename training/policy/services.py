"""Writes of the policy loop: create (and enqueue) SFT / PPO / GRPO / RLOO / DPO runs and battles among
finished policy runs, and keep a running policy run's live extras (sample responses, failure-detector warnings) in ``TrainingRun.summary``."""

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
from training.policy.capability.services import gate_config_parse
from training.policy.spec import PolicyRunSpec, RewardSource, algorithm_config

POLICY_KINDS = (RunKind.SFT, RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO)
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
    frozen reference) for PPO / GRPO / RLOO, and the start model (by default also the reference) for DPO.

    A DPO run needs a ready snapshot whose ``algorithm.split`` holds preference rows (ties and both-bad rows
    teach no preference): anything else is refused here, naming ``snapshot``, before a row is written."""
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
    algo_errors = algo.errors() if hasattr(algo, "errors") else []
    if algo_errors:
        raise ValidationError({"config": algo_errors})
    work_limits_check("algorithm", algo)
    work_limits_check("prompts", prompts)
    work_limits_check("battle", spec.battle)
    battle_errors = spec.battle.errors()
    if battle_errors:
        raise ValidationError({"config": battle_errors})
    try:
        gate_config_parse(spec.gate.to_dict())
    except ValidationError as exc:
        raise ValidationError({"config": exc.messages}) from exc
    if snapshot is not None and snapshot.status != JobStatus.SUCCEEDED:
        raise ValidationError({"snapshot": f"snapshot {snapshot} is not ready ({snapshot.status})"})
    if kind == RunKind.SFT:
        if getattr(algo, "source", "snapshot") == "snapshot" and snapshot is None:
            raise ValidationError(
                {"snapshot": "an SFT run on a snapshot's chosen responses needs a snapshot"}
            )
        if algo.source == "demonstrations" and not Path(algo.demonstrations_path).is_file():
            raise ValidationError({"config": f"demonstrations file not found: {algo.demonstrations_path}"})
    elif kind == RunKind.DPO:
        _check_preference_snapshot(snapshot, algo.split)
    else:
        if prompts.source == "project" and project is None:
            raise ValidationError({"project": "prompts from the project need a project"})
        if prompts.source == "snapshot" and snapshot is None:
            raise ValidationError({"snapshot": "prompts from a snapshot need a snapshot"})
        if prompts.source == "list" and not prompts.items:
            raise ValidationError({"config": "prompts.items is empty"})
    if kind != RunKind.SFT and spec.reward.type == "http" and not spec.reward.url:
        raise ValidationError({"config": "reward.url is required for an HTTP reward"})
    if spec.reward.errors():
        raise ValidationError({"config": spec.reward.errors()})
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


def _check_preference_snapshot(snapshot: DatasetSnapshot | None, split: str) -> None:
    """A DPO run's snapshot: given, ready (checked by the caller) and with preference rows in ``split``."""
    from training.datasets.reader import split_has_preferences

    if snapshot is None:
        raise ValidationError(
            {"snapshot": "a DPO run learns from a snapshot's preference pairs: pick a snapshot"}
        )
    labels = (snapshot.class_balance or {}).get("label_type") or {}
    if labels.get("pref") == 0 or not split_has_preferences(snapshot.artifact_dir, split):
        raise ValidationError(
            {
                "snapshot": f"snapshot {snapshot} has no preference rows in its {split} split (only ties or "
                "both-bad rows, or none): DPO has no pair to learn from"
            }
        )


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


#: Run kinds a battle compares (policies; their common SFT model joins as "sft").
BATTLE_POLICY_KINDS = (RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO)


@transaction.atomic
def policy_battle_create(
    *, run_ids: list[int], config: dict[str, Any] | None = None, user=None, enqueue: bool = True
) -> TrainingRun:
    """Validate and queue a battle among finished policy runs of one SFT model (a run of kind ``battle``).

    Refused with a ``ValidationError`` naming ``run_ids`` when there are fewer than two distinct runs, more
    than ``PREFLAB_MAX_BATTLE_RUNS``, a run that the user cannot see, is not a succeeded PPO / GRPO / RLOO /
    DPO run, or when the runs start from different SFT models; naming ``config`` for a bad config, no common
    prompt, or a reward the battle cannot use."""
    from training.policy.selectors import policy_run_list
    from training.policy.spec import BATTLE_PROMPT_SOURCES, PolicyBattleSpec

    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise ValidationError({"run_ids": "a battle compares at least two policy runs"})
    if len(ids) > settings.PREFLAB_MAX_BATTLE_RUNS:
        raise ValidationError(
            {
                "run_ids": f"run_ids: {len(ids)} runs is over the limit of {settings.PREFLAB_MAX_BATTLE_RUNS} "
                "(PREFLAB_MAX_BATTLE_RUNS)"
            }
        )
    try:
        spec = PolicyBattleSpec.from_dict({**(config or {}), "runs": ids})
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("config")) from exc
    work_limits_check("battle", spec.battle)
    work_limits_check("prompts", spec.prompts)
    errors = spec.battle.errors()
    if spec.prompts.source not in BATTLE_PROMPT_SOURCES:
        errors.append(f"prompts.source: {spec.prompts.source[:20]!r} is not one of held_out, list")
    if errors:
        raise ValidationError({"config": errors})
    projects = None
    if user is not None:
        from annotation.auth import visible_projects

        projects = visible_projects(user)
    runs = {r.pk: r for r in policy_run_list(projects=projects).filter(pk__in=ids)}
    for pk in ids:
        run = runs.get(pk)
        if run is None or run.kind not in BATTLE_POLICY_KINDS or run.status != JobStatus.SUCCEEDED:
            raise ValidationError(
                {"run_ids": f"run {pk} is not a succeeded PPO, GRPO, RLOO or DPO run you can see"}
            )
    starts = {runs[pk].base_model for pk in ids}
    if len(starts) > 1:
        detail = ", ".join(f"run {pk}: {runs[pk].base_model[:80]}" for pk in ids)
        raise ValidationError(
            {
                "run_ids": f"the runs start from different SFT models ({detail}); a battle compares policies of one"
            }
        )
    spec.prompts.items = _battle_prompts(spec, [runs[pk] for pk in ids])
    first = runs[ids[0]]
    _check_battle_reward(spec.reward, first.project, user)
    run = TrainingRun.objects.create(
        kind=RunKind.BATTLE,
        project=first.project,
        base_model=first.base_model,
        config=spec.to_dict(),
        seed=spec.battle.seed,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        jobs.run_enqueue(run_id=run.pk)
    return run


def _battle_prompts(spec, runs: list[TrainingRun]) -> list[str]:
    """The battle's prompts: the listed ones, or those every run held out of training; at most
    ``battle.held_out``. None left is a ``ValidationError`` naming ``config``."""
    if spec.prompts.source == "list":
        prompts = [p for p in dict.fromkeys(spec.prompts.items) if p.strip()]
    else:
        held = [set((r.summary or {}).get("held_out_prompts") or []) for r in runs]
        first = (runs[0].summary or {}).get("held_out_prompts") or []
        prompts = [p for p in dict.fromkeys(first) if all(p in h for h in held)]
    if not prompts:
        raise ValidationError(
            {
                "config": "prompts: no prompt to battle on (the runs share no held-out prompt); pass "
                '{"prompts": {"source": "list", "items": [...]}}'
            }
        )
    return prompts[: spec.battle.held_out]


def _check_battle_reward(reward: RewardSource, project, user) -> None:
    if reward.token:
        raise ValidationError(
            {"config": "do not store tokens in a run; use reward.token_env (an env var name)"}
        )
    if reward.type == "http" and not reward.url:
        raise ValidationError({"config": "reward.url is required for an HTTP reward"})
    if reward.type == "active":
        from training.models import RewardModel

        if project is None or not RewardModel.objects.filter(project=project, is_active=True).exists():
            raise ValidationError(
                {
                    "config": "reward: the runs' project has no active reward model; pick one (registry) or a rule"
                }
            )
    _check_reward_access(reward, user)
