"""A battle among several finished policy runs of one SFT model (PPO, GRPO, RLOO and DPO side by side): a
job of kind ``battle`` that generates every model's answers on one prompt set, scores them with the reward
and creates one blind battle project, so the humans' leaderboard ranks the policies against each other and
against their common SFT model.

The run row's ``config`` is ``spec.PolicyBattleSpec`` with the prompts already resolved at creation
(``services.policy_battle_create``), so the job is a pure function of its row.
"""

from __future__ import annotations

import uuid
from typing import Any

from training.jobs import RunReporter
from training.models import TrainingRun
from training.policy.spec import PolicyBattleSpec


def model_label(run: TrainingRun) -> str:
    """The name a policy carries in the battle project and its leaderboard: ``<kind>-<run id>``."""
    return f"{run.kind}-{run.pk}"


def execute_battle_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    """Answers of base (when known), the shared SFT model and every policy on the stored prompts -> reward
    scores -> the battle project. Progress is one step per model; a cancel stops between two models."""
    from training.policy.battle import battle_project_create, generate_answers
    from training.policy.executors import _base_of
    from training.policy.spec import resolve_reward

    spec = PolicyBattleSpec.from_dict(run.config)
    cfg, prompts = spec.battle, spec.prompts.items
    policies = TrainingRun.objects.filter(pk__in=spec.runs).order_by("pk")
    models: dict[str, str] = {}
    base = cfg.base_model or _base_of(run.base_model)
    if base:
        models["base"] = base
    models["sft"] = run.base_model
    for policy in policies:
        models[model_label(policy)] = (policy.summary or {}).get("model_dir") or policy.output_dir
    reward_fn, reward_desc = resolve_reward(run, spec.reward)
    total = len(models) + 1
    reporter.progress(0, total)
    reporter.log(f"battle of {', '.join(models)} on {len(prompts)} prompts")
    try:
        answers = {}
        for i, (name, path) in enumerate(models.items(), start=1):
            answers[name] = generate_answers(
                path, prompts, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=cfg.seed
            )
            reporter.progress(i, total)  # raises RunCancelled on cancel
        scores = {name: [float(x) for x in reward_fn(prompts, texts)] for name, texts in answers.items()}
    finally:
        close = getattr(reward_fn, "close", None)
        if callable(close):
            close()
    project, report = battle_project_create(
        name=f"battle: runs {', '.join(str(p.pk) for p in policies)} ({uuid.uuid4().hex[:6]})",
        prompts=prompts,
        answers=answers,
        scores=scores,
        created_by=run.created_by,
        members_from=run.project,
        overlap_k=cfg.overlap_k,
        seed=cfg.seed,
        run_id=run.pk,
        pairing_strategy=cfg.pairing_strategy,
        exploration=cfg.exploration,
    )
    reporter.progress(total, total)
    reporter.log(f"battle project {project.pk}: {report.tasks_created} tasks")
    return {
        "runs": [p.pk for p in policies],
        "models": models,
        "reward": reward_desc,
        "held_out_prompts": prompts,
        "battle": report.as_dict(),
    }
