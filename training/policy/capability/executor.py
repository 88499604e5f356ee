"""Executor of ``gate`` runs (registered in ``training.jobs.EXECUTORS``): every model of the policy run
(base, SFT, policy) on every configured task set, a row per (model, set), progress per generated batch.

Progress counts answers generated over all models; a cancel stops at the next batch (rows of the models
already done stay, and the policy run's summary says ``cancelled``).
"""

from __future__ import annotations

from typing import Any

from training.jobs import RunCancelled, RunReporter
from training.models import TrainingRun


def execute_gate_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.policy.capability.config import GateConfig
    from training.policy.capability.intervals import bootstrap_interval
    from training.policy.capability.runner import evaluate_model
    from training.policy.capability.services import capability_result_record, capability_status_record
    from training.policy.capability.tasksets import task_set

    cfg = GateConfig.from_dict(run.config["gate"])
    models: dict[str, str] = run.config["models"]
    sets = [task_set(name) for name in cfg.sets]
    per_model = sum(min(cfg.max_items, len(ts.items)) for ts in sets)
    total = per_model * len(models)
    reporter.log(
        f"capability gate of run {run.config['policy_run_id']}: {', '.join(models)} on "
        f"{', '.join(cfg.sets)} ({per_model} items per model, max_new_tokens {cfg.max_new_tokens})"
    )
    capability_status_record(gate_run=run, status="running")
    results: dict[str, dict[str, dict]] = {}
    try:
        reporter.progress(0, total)
        for k, (role, path) in enumerate(models.items()):
            done_before = k * per_model
            outcomes = evaluate_model(
                path,
                sets,
                max_items=cfg.max_items,
                max_new_tokens=cfg.max_new_tokens,
                batch_size=cfg.batch_size,
                on_batch=lambda done, base=done_before: reporter.progress(base + done, total),
            )
            for outcome in outcomes:
                interval = bootstrap_interval(outcome.scores, n_boot=cfg.bootstrap_samples, seed=cfg.seed)
                capability_result_record(
                    gate_run=run,
                    role=role,
                    model_path=path,
                    task_set=outcome.task_set,
                    interval=interval,
                    details=outcome.items,
                )
                results.setdefault(outcome.task_set, {})[role] = interval.as_dict()
                reporter.log(
                    f"{role} {outcome.task_set}: {interval.score:.3f} "
                    f"[{interval.low:.3f}, {interval.high:.3f}] n={interval.n}"
                )
    except RunCancelled:
        capability_status_record(gate_run=run, status="cancelled")
        raise
    except Exception:
        capability_status_record(gate_run=run, status="failed")
        raise
    capability_status_record(gate_run=run, status="succeeded")
    return {"policy_run_id": run.config["policy_run_id"], "models": models, "sets": results}
