"""Job executors of the policy loop (run kinds sft, ppo, grpo, rloo), registered with ``training.jobs``.

Each executor: resolve data and reward -> train (reporting progress, metrics, samples and detector
warnings) -> save the model under ``ARTIFACT_DIR/policies/run-<id>`` -> (policy runs) send sampled rollouts
to the spot-check signal and run the evaluation gate (battle project). Heavy imports stay inside functions.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from training.jobs import RunReporter
from training.models import RunKind, TrainingRun
from training.tracking import tracking_for
from training.trl_runs import artifact_dir_build, progress_callback

#: Rollouts per step written to ``rollouts.jsonl`` and sent to the spot-check queue.
ROLLOUTS_PER_STEP = 4


def _output_root(run: TrainingRun) -> Path:
    from django.conf import settings

    return Path(run.output_dir or Path(settings.ARTIFACT_DIR) / "policies" / f"run-{run.pk}")


def _tracking(run: TrainingRun):
    """TensorBoard / MLflow for a TRL policy run (``PREFLAB_REPORT_TO``), named ``<kind>-run-<id>``."""
    return tracking_for(
        kind=run.kind,
        run_id=run.pk,
        project=run.project.name if run.project else "",
        tags={"preflab.base_model": run.base_model},
    )


def execute_sft_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.policy.sft import demonstrations_from_rows, read_demonstrations, train_sft
    from training.policy.spec import PolicyRunSpec, algorithm_config

    spec = PolicyRunSpec.from_dict(run.config)
    cfg = algorithm_config(RunKind.SFT, spec.algorithm)
    if cfg.source == "demonstrations":
        demos = read_demonstrations(cfg.demonstrations_path)
    else:
        from training.datasets.reader import preference_rows, read_snapshot_split

        if run.snapshot is None:
            raise ValueError("this SFT run has no snapshot")
        rows, meta = read_snapshot_split(run.snapshot.artifact_dir, cfg.split)
        # Only a preference's chosen answer is a demonstration: a tie's or a both-bad pair's "chosen" side is
        # an arbitrary orientation (and both-bad answers were judged bad).
        rows, _, neutral = preference_rows(rows, meta)
        if neutral:
            reporter.log(f"left out {neutral} tie / both-bad rows of the {cfg.split} split")
        demos = demonstrations_from_rows(rows)
    reporter.log(f"SFT on {len(demos)} demonstrations from {cfg.source}")
    root = _output_root(run)
    with artifact_dir_build(root, replace=True) as tmp:
        out = train_sft(
            base_model=run.base_model,
            demonstrations=demos,
            cfg=cfg,
            seed=run.seed,
            output_dir=tmp,
            callbacks=[progress_callback(reporter, SFT_METRICS)],
            tracking=_tracking(run),
        )
    reporter.log(f"SFT done: {out['steps']} steps, loss {out['train_loss']:.4f}; saved to {root}")
    return {
        "model_dir": str(root),
        "examples": out["examples"],
        "steps": out["steps"],
        "train_loss": out["train_loss"],
        "train_seconds": out["train_seconds"],
        "chat_template": out["conversational"],
    }


SFT_METRICS = {
    "loss": "loss",
    "mean_token_accuracy": "token_accuracy",
    "entropy": "entropy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


def _no_nul(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) else value


class _LiveRun:
    """Per-step bookkeeping shared by PPO and GRPO/RLOO: metrics, samples, rollouts file, detectors."""

    def __init__(self, run: TrainingRun, reporter: RunReporter, target_kl: float | None, rollouts_path: Path):
        self.run, self.reporter, self.target_kl = run, reporter, target_kl
        self.history: list[dict] = []
        self.rollouts: list[dict] = []
        self.rollouts_path = rollouts_path
        self.pending: list[dict] = []

    def warnings(self) -> list[dict]:
        from training.policy.detectors import detect_all

        return [w.as_dict() for w in detect_all(self.history, target_kl=self.target_kl)]

    def on_metrics(self, step: int, metrics: dict, samples: list[dict] | None = None) -> None:
        from training.policy.services import policy_run_live_update

        # PostgreSQL text and jsonb refuse NUL: a policy's sample may decode one (a byte-fallback token).
        samples = [{k: _no_nul(v) for k, v in s.items()} for s in samples or []]
        row = {k: v for k, v in metrics.items() if k != "step"}
        self.reporter.log_metrics(step, row)
        self.history.append({"step": step, **row})
        rows = [
            {**s, "step": step, "run_id": self.run.pk, "source": "rollout"}
            for s in (samples or [])[:ROLLOUTS_PER_STEP]
        ]
        if rows:
            self.rollouts.extend(rows)
            with self.rollouts_path.open("a", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        policy_run_live_update(run_id=self.run.pk, step=step, samples=samples, warnings=self.warnings())


def _after_policy_training(
    run: TrainingRun,
    reporter: RunReporter,
    live: _LiveRun,
    spec,
    held_out: list[str],
    reward_fn,
    model_dir: Path,
) -> dict[str, Any]:
    """Send rollouts to the spot-check signal, run the battle and queue the capability gate (a ``gate`` run
    of its own, which writes ``summary["capability"]``); returns summary parts."""
    from training.policy.signals import policy_rollouts_sampled

    out: dict[str, Any] = {}
    if live.rollouts:
        policy_rollouts_sampled.send(sender=TrainingRun, run=run, rows=live.rollouts)
        out["rollouts_sent"] = len(live.rollouts)
    try:
        out["battle"] = _battle(run, reporter, spec, held_out, reward_fn, model_dir)
    finally:
        close = getattr(reward_fn, "close", None)  # the HTTP reward's connection pool
        if callable(close):
            close()
    _queue_capability_gate(run, reporter, spec)
    return out


def _queue_capability_gate(run: TrainingRun, reporter: RunReporter, spec) -> None:
    """Queue the capability benchmarks (base / SFT / policy) as a ``gate`` run on the training queue."""
    from training.policy.capability.services import capability_disabled_record, gate_run_create

    if not spec.gate.enabled:
        capability_disabled_record(policy_run=run)
        return
    run.refresh_from_db(fields=["summary"])
    gate = gate_run_create(
        policy_run=run, config=spec.gate.to_dict(), user=run.created_by, require_finished=False
    )
    reporter.log(f"capability gate queued as run {gate.pk} ({', '.join(spec.gate.sets)})")


def _base_of(model_dir: str) -> str:
    """The pre-SFT model of an SFT output directory, or "" (``spec.sft_base_model``)."""
    from training.policy.spec import sft_base_model

    return sft_base_model(model_dir)


def _battle(run, reporter, spec, held_out, reward_fn, model_dir: Path) -> dict[str, Any]:
    from training.policy.battle import run_battle
    from training.policy.spec import battle_config

    cfg = battle_config(spec)
    if not cfg.enabled or not held_out:
        return {"skipped": "disabled" if not cfg.enabled else "no held-out prompts"}
    models = {}
    base = cfg.base_model or _base_of(run.base_model)
    if base:
        models["base"] = base
    models["sft"] = run.base_model
    models["policy"] = str(model_dir)
    reporter.log(f"evaluation gate: {', '.join(models)} on {len(held_out)} held-out prompts")
    project, report, _ = run_battle(
        models=models,
        prompts=held_out,
        reward_fn=reward_fn,
        cfg=cfg,
        project_name=f"battle: {run.kind} run {run.pk} ({uuid.uuid4().hex[:6]})",
        created_by=run.created_by,
        members_from=run.project,
        run_id=run.pk,
    )
    reporter.log(f"battle project {project.pk}: {report.tasks_created} tasks")
    return report.as_dict()


def execute_ppo_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.policy.ppo import load_ppo_models, save_policy, train_ppo
    from training.policy.spec import (
        PolicyRunSpec,
        algorithm_config,
        battle_config,
        resolve_prompts,
        resolve_reward,
        split_held_out,
    )

    spec = PolicyRunSpec.from_dict(run.config)
    cfg = algorithm_config(RunKind.PPO, spec.algorithm)
    cfg.seed = run.seed
    prompts = resolve_prompts(run, spec)
    bcfg = battle_config(spec)
    train, held_out = split_held_out(prompts, bcfg.held_out if bcfg.enabled else 0, run.seed)
    if not train:
        raise ValueError("no prompts to train on")
    reward_fn, reward_desc = resolve_reward(run, spec.reward)
    reporter.log(f"PPO on {len(train)} prompts ({len(held_out)} held out); reward: {reward_desc}")
    root = _output_root(run)
    with artifact_dir_build(root, replace=True) as tmp:
        live = _LiveRun(run, reporter, cfg.target_kl, tmp / "rollouts.jsonl")

        def on_step(step: int, metrics: dict, samples: list[dict]) -> None:
            live.on_metrics(step, metrics, samples)
            reporter.progress(step, cfg.steps)  # raises RunCancelled on cancel

        policy, ref, value, tokenizer = load_ppo_models(run.base_model, spec.critic_model or None)
        reporter.progress(0, cfg.steps)
        result = train_ppo(
            policy=policy,
            ref_policy=ref,
            value_model=value,
            tokenizer=tokenizer,
            prompts=train,
            reward_fn=reward_fn,
            config=cfg,
            on_step=on_step,
        )
        save_policy(policy, tokenizer, tmp, cfg)
        del policy, ref, value
    first, last = result.history[0], result.final
    summary = {
        "model_dir": str(root),
        "reward": reward_desc,
        "prompts": {"train": len(train), "held_out": len(held_out)},
        "held_out_prompts": held_out,
        "reward_first": first["reward_mean"],
        "reward_last": last["reward_mean"],
        "kl_last": last["kl"],
        "warnings": live.warnings(),
    }
    summary.update(_after_policy_training(run, reporter, live, spec, held_out, reward_fn, root))
    return summary


def _execute_group_rl(run: TrainingRun, reporter: RunReporter, algorithm: str) -> dict[str, Any]:
    from training.policy.grpo import TRL_METRIC_NAMES, train_group_rl
    from training.policy.spec import (
        PolicyRunSpec,
        algorithm_config,
        battle_config,
        resolve_prompts,
        resolve_reward,
        split_held_out,
    )

    spec = PolicyRunSpec.from_dict(run.config)
    cfg = algorithm_config(algorithm, spec.algorithm)
    prompts = resolve_prompts(run, spec)
    bcfg = battle_config(spec)
    train, held_out = split_held_out(prompts, bcfg.held_out if bcfg.enabled else 0, run.seed)
    if not train:
        raise ValueError("no prompts to train on")
    reward_fn, reward_desc = resolve_reward(run, spec.reward)
    reporter.log(
        f"{algorithm.upper()} on {len(train)} prompts ({len(held_out)} held out); reward: {reward_desc}"
    )
    root = _output_root(run)
    # TRL does not hand completions to callbacks: keep a few scored rollouts from the latest reward call.
    with artifact_dir_build(root, replace=True) as tmp:
        live = _LiveRun(run, reporter, None, tmp / "rollouts.jsonl")

        def recording_reward(prompts_: list[str], responses: list[str]) -> list[float]:
            scores = reward_fn(prompts_, responses)
            live.pending = [
                {"prompt": p, "response": r, "reward": float(s)}
                for p, r, s in list(zip(prompts_, responses, scores, strict=True))[:ROLLOUTS_PER_STEP]
            ]
            return scores

        callback = progress_callback(
            reporter,
            TRL_METRIC_NAMES,
            on_metrics=lambda step, values: live.on_metrics(step, values, live.pending),
        )
        out = train_group_rl(
            algorithm=algorithm,
            model_dir=run.base_model,
            prompts=train,
            reward_fn=recording_reward,
            cfg=cfg,
            seed=run.seed,
            output_dir=tmp,
            callbacks=[callback],
            tracking=_tracking(run),
        )
    history = live.history
    summary = {
        "model_dir": str(root),
        "algorithm": algorithm,
        "reward": reward_desc,
        "prompts": {"train": len(train), "held_out": len(held_out)},
        "held_out_prompts": held_out,
        "steps": out["steps"],
        "reward_first": history[0].get("reward_mean") if history else None,
        "reward_last": history[-1].get("reward_mean") if history else None,
        "warnings": live.warnings(),
    }
    summary.update(_after_policy_training(run, reporter, live, spec, held_out, reward_fn, root))
    return summary


def execute_grpo_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    return _execute_group_rl(run, reporter, "grpo")


def execute_rloo_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    return _execute_group_rl(run, reporter, "rloo")
