"""Job executor of DPO runs (kind ``dpo``), registered with ``training.jobs``.

Snapshot preference rows -> held-out prompts set aside for the battle -> TRL ``DPOTrainer`` (progress,
metrics and cancel through the shared TRL callback) -> the model under ``ARTIFACT_DIR/policies/run-<id>`` ->
the same after-training path as PPO / GRPO / RLOO (battle project and evaluation gate).
"""

from __future__ import annotations

from typing import Any

from training.jobs import RunReporter
from training.models import RunKind, TrainingRun
from training.policy.executors import _after_policy_training, _LiveRun, _output_root
from training.trl_runs import artifact_dir_build, progress_callback


def dpo_training_pairs(
    run: TrainingRun, split: str, held_out_count: int
) -> tuple[list[dict], list[str], int]:
    """(rows to train on, held-out prompt texts, neutral rows left out) of the run's snapshot split.

    Only preference rows are pairs (a tie's or a both-bad row's orientation is arbitrary). The held-out
    prompts are chosen among the pairs' distinct prompts as the other kinds choose theirs
    (``spec.split_held_out`` with the run's seed), and every pair of a held-out prompt stays out of training.
    """
    from training.datasets.reader import preference_rows, read_snapshot_split
    from training.policy.dpo import prompt_text
    from training.policy.spec import split_held_out

    if run.snapshot is None:
        raise ValueError("a DPO run needs a snapshot")
    rows, meta = read_snapshot_split(run.snapshot.artifact_dir, split)
    rows, _, neutral = preference_rows(rows, meta)
    prompts = list(dict.fromkeys(t for t in (prompt_text(r.get("prompt")) for r in rows) if t.strip()))
    _, held_out = split_held_out(prompts, held_out_count, run.seed)
    held = set(held_out)
    train = [r for r in rows if prompt_text(r.get("prompt")) not in held]
    return train, held_out, neutral


def execute_dpo_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.policy.dpo import DPO_METRIC_NAMES, train_dpo
    from training.policy.spec import PolicyRunSpec, algorithm_config, battle_config, resolve_reward

    spec = PolicyRunSpec.from_dict(run.config)
    cfg = algorithm_config(RunKind.DPO, spec.algorithm)
    seed = cfg.seed if cfg.seed is not None else run.seed
    bcfg = battle_config(spec)
    train, held_out, neutral = dpo_training_pairs(run, cfg.split, bcfg.held_out if bcfg.enabled else 0)
    if neutral:
        reporter.log(f"left out {neutral} tie / both-bad rows of the {cfg.split} split")
    if not train:
        raise ValueError(
            f"no preference pairs to train on in the {cfg.split} split (after the held-out prompts)"
        )
    # The reward only scores the battle's answers; resolved before training so a missing one fails fast.
    reward_fn, reward_desc = resolve_reward(run, spec.reward) if held_out else (None, None)
    reporter.log(
        f"DPO ({cfg.loss_type}, beta {cfg.beta}) on {len(train)} pairs ({len(held_out)} prompts held out); "
        f"reference: {cfg.reference_model or 'the start model'}"
    )
    root = _output_root(run)
    with artifact_dir_build(root, replace=True) as tmp:
        live = _LiveRun(run, reporter, None, tmp / "rollouts.jsonl")
        callback = progress_callback(reporter, DPO_METRIC_NAMES, on_metrics=live.on_metrics)
        out = train_dpo(
            base_model=run.base_model,
            rows=train,
            cfg=cfg,
            seed=seed,
            output_dir=tmp,
            callbacks=[callback],
        )
    history = live.history
    reporter.log(f"DPO done: {out['steps']} steps, loss {out['train_loss']:.4f}; saved to {root}")
    summary = {
        "model_dir": str(root),
        "algorithm": "dpo",
        "reference_model": cfg.reference_model or run.base_model,
        "reward": reward_desc,
        "pairs": {"train": out["pairs"], "neutral_left_out": neutral},
        "prompts": {"held_out": len(held_out)},
        "held_out_prompts": held_out,
        "steps": out["steps"],
        "train_loss": out["train_loss"],
        "train_seconds": out["train_seconds"],
        "chat_template": out["conversational"],
        "margin_first": history[0].get("rewards_margins") if history else None,
        "margin_last": history[-1].get("rewards_margins") if history else None,
        "accuracy_last": history[-1].get("rewards_accuracies") if history else None,
        "warnings": live.warnings(),
    }
    summary.update(_after_policy_training(run, reporter, live, spec, held_out, reward_fn, root))
    return summary
