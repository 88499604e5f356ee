"""Executor of ``gate`` runs (registered in ``training.jobs.EXECUTORS``): every model of the policy run
(base, SFT, policy) on every configured task set, then on every configured lm-evaluation-harness task, a row
per (model, set or task), progress per generated batch of our sets and per harness task.

Progress counts answers generated over all models (a harness task counts as ``max_items``); a cancel stops
at the next batch of our sets or the next harness task (rows of the models already done stay, and the policy
run's summary says ``cancelled``). Harness task names are looked up in the harness's index before any model
runs: an unknown name fails the gate run at once, naming it. A harness task that fails or has no metric in
[0, 1] fails the whole gate run (a gate must not pass without a benchmark its config asked for).
"""

from __future__ import annotations

from typing import Any

from training.jobs import RunCancelled, RunReporter
from training.models import TrainingRun


def _harness_index(cfg, reporter: RunReporter):
    """The harness's task index, with every configured name in it (else ``HarnessTaskError``)."""
    from training.policy.capability.harness import HarnessTaskError, harness_task_manager, unknown_tasks

    where = " and ".join(
        ([f"the task YAMLs under {cfg.harness_include_path}"] if cfg.harness_include_path else [])
        + (["the harness's own tasks"] if cfg.harness_include_defaults else [])
    )
    reporter.log(f"lm-evaluation-harness: indexing {where}")
    task_manager = harness_task_manager(
        include_path=cfg.harness_include_path, include_defaults=cfg.harness_include_defaults
    )
    unknown = unknown_tasks(task_manager, cfg.harness_tasks)
    if unknown:
        raise HarnessTaskError(
            f"gate.harness_tasks: unknown lm-evaluation-harness task {', '.join(map(repr, unknown))} "
            f"(not in {where})"
        )
    return task_manager


def execute_gate_run(run: TrainingRun, reporter: RunReporter) -> dict[str, Any]:
    from training.policy.capability.config import GateConfig
    from training.policy.capability.harness import evaluate_harness_tasks
    from training.policy.capability.intervals import bootstrap_interval
    from training.policy.capability.runner import evaluate_model
    from training.policy.capability.services import capability_result_record, capability_status_record
    from training.policy.capability.tasksets import task_set

    cfg = GateConfig.from_dict(run.config["gate"])
    models: dict[str, str] = run.config["models"]
    sets = [task_set(name) for name in cfg.sets]
    per_model_sets = sum(min(cfg.max_items, len(ts.items)) for ts in sets)
    per_model = per_model_sets + len(cfg.harness_tasks) * cfg.max_items
    total = per_model * len(models)
    reporter.log(
        f"capability gate of run {run.config['policy_run_id']}: {', '.join(models)} on "
        f"{', '.join(cfg.sets + [f'harness:{t}' for t in cfg.harness_tasks])} "
        f"({per_model} items per model, max_new_tokens {cfg.max_new_tokens})"
    )
    capability_status_record(gate_run=run, status="running")
    results: dict[str, dict[str, dict]] = {}

    def record(role: str, path: str, name: str, interval, details: list[dict], note: str = "") -> None:
        capability_result_record(
            gate_run=run, role=role, model_path=path, task_set=name, interval=interval, details=details
        )
        results.setdefault(name, {})[role] = interval.as_dict()
        reporter.log(
            f"{role} {name}: {interval.score:.3f} [{interval.low:.3f}, {interval.high:.3f}] n={interval.n}{note}"
        )

    try:
        reporter.progress(0, total)
        task_manager = _harness_index(cfg, reporter) if cfg.harness_tasks else None
        for k, (role, path) in enumerate(models.items()):
            done_before = k * per_model
            if sets:
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
                    record(role, path, outcome.task_set, interval, outcome.items)
            if task_manager is None:
                continue
            done = done_before + per_model_sets
            reporter.check_cancel()
            for outcome in evaluate_harness_tasks(
                path,
                cfg.harness_tasks,
                task_manager=task_manager,
                limit=cfg.max_items,
                batch_size=cfg.batch_size,
                bootstrap_samples=cfg.bootstrap_samples,
                seed=cfg.seed,
            ):
                record(role, path, outcome.task_set, outcome.interval, outcome.items, f" ({outcome.metric})")
                done += cfg.max_items
                reporter.progress(done, total)
                reporter.check_cancel()  # progress is throttled; a harness task is the only stop point
    except RunCancelled:
        capability_status_record(gate_run=run, status="cancelled")
        raise
    except Exception:
        capability_status_record(gate_run=run, status="failed")
        raise
    capability_status_record(gate_run=run, status="succeeded")
    return {"policy_run_id": run.config["policy_run_id"], "models": models, "sets": results}
