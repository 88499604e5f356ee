"""Node builders of the model side: a reward model version (its run, card, evaluations, promotions with gate
verdicts) and a training run (config, base model resolved to the run that made it, reward source resolved to
a reward model version, the gate record)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from training.datasets.selectors import annotator_pseudonym
from training.lineage.card import json_hash
from training.lineage.generic import optional_derived
from training.lineage.links import (
    producing_run,
    reward_model_link,
    rewarded_by,
    run_link,
    run_page,
    run_title,
)
from training.lineage.nodes import (
    LineageContext,
    Node,
    Ref,
    capped,
    capped_rows,
    iso,
    link,
    node_kind,
    relation,
    scalars,
)
from training.models import RewardModel, RunKind, TaskScoringJob, TrainingRun

#: Run kinds whose reward does not come from a reward model (SFT imitates; DPO learns from the pairs).
REWARDLESS_KINDS = (RunKind.REWARD, RunKind.SFT, "dpo")
#: Keys of a policy run's summary that make up its gate record (the evaluation gate's layers write them).
GATE_SUMMARY_KEYS = ("battle", "warnings", "capability", "benchmarks", "gate", "spot_checks")


@node_kind("reward_model", "training.RewardModel", select_related=("project", "run", "snapshot"))
def reward_model_node(ctx: LineageContext, rm: RewardModel, *, root: bool) -> Node:
    ctx.require([rm.project_id])
    run, card = rm.run, rm.card or {}
    snapshot_hash = card.get("snapshot_hash") or (rm.snapshot.content_hash if rm.snapshot else "")
    evaluations = capped_rows(
        rm.evaluations.select_related("snapshot").order_by("-id"),
        lambda e: {
            "id": e.pk,
            "snapshot_id": e.snapshot_id,
            "snapshot": f"{e.snapshot.name} v{e.snapshot.version}",
            "snapshot_hash": e.snapshot.content_hash,
            "split": e.split,
            "metrics": scalars(e.metrics),
            "created_at": iso(e.created_at),
        },
    )
    promotions = capped_rows(
        rm.promotions.order_by("-id"),
        lambda p: {
            "id": p.pk,
            "created_at": iso(p.created_at),
            "previous_id": p.previous_id,
            "promoted_by": annotator_pseudonym(p.promoted_by_id) if p.promoted_by_id else None,
            "forced": p.forced,
            "reason": p.reason,
            "gate": p.gate,
        },
    )
    inputs = [Ref("snapshot", rm.snapshot)] if rm.snapshot_id else []
    producer = producing_run(rm.base_model, exclude=rm.run_id)
    if producer is not None:
        inputs.insert(0, Ref("run", producer))
    node = Node(
        kind="reward_model",
        id=rm.pk,
        title=f"{rm.project.name} reward model v{rm.version}",
        page=reverse("training:reward_model_detail", args=[rm.pk]),
        hashes={
            "snapshot_hash": snapshot_hash,
            "config_hash": json_hash(run.config) if run else "",
            "card_hash": json_hash(card) if card else "",
        },
        facts={
            "project": rm.project.name,
            "version": rm.version,
            "base_model": rm.base_model,
            "max_length": rm.max_length,
            "reward_mean": rm.reward_mean,
            "reward_std": rm.reward_std,
            "run_id": rm.run_id,
            "snapshot_id": rm.snapshot_id,
            "created_at": iso(rm.created_at),
        },
        config=run.config if run else card.get("params", {}),
        sections={
            "run": _run_facts(run) if run else None,
            "evaluations": evaluations,
            "promotions": promotions,
            "card": card,
        },
        inputs=inputs,
    )
    if root:
        rewarded = rewarded_by([rm.pk]).filter(ctx.visible_q("project", nullable=True)).order_by("-id")
        scoring = TaskScoringJob.objects.filter(reward_model=rm).order_by("-id")
        node.derived = [
            relation("policy_runs", "Policy runs rewarded by it", rewarded, run_link),
            relation(
                "task_scoring",
                "Task scoring jobs with it",
                scoring,
                lambda j: {
                    **link("task_scoring", j.pk, f"Task scoring #{j.pk}", None),
                    "status": j.status,
                    "scored": j.scored,
                    "total": j.total,
                },
            ),
        ]
    return node


def _run_facts(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "seed": run.seed,
        "base_model": run.base_model,
        "retry_of": run.retry_of_id,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def reward_source(run: TrainingRun) -> dict[str, Any]:
    """The run's reward source, resolved to a reward model version where there is one: what the run
    recorded when it started (``summary.reward``), else what its config names."""
    configured = dict((run.config or {}).get("reward") or {})
    used = (run.summary or {}).get("reward") or {}
    out: dict[str, Any] = {"type": configured.get("type", "active"), "reward_model_id": None, "version": None}
    if used.get("reward_model_id"):
        out.update(
            reward_model_id=used["reward_model_id"], version=used.get("version"), resolved="at run start"
        )
    elif out["type"] == "registry" and configured.get("reward_model_id"):
        out.update(reward_model_id=configured["reward_model_id"], resolved="from the config")
    elif out["type"] == "active":
        out["resolved"] = None
        out["note"] = "the project's active reward model when the run starts"
    else:
        out["resolved"] = None
        out["described"] = scalars(used or configured, drop=("token", "token_env"))
    return out


@node_kind("run", "training.TrainingRun", select_related=("project", "snapshot"))
def run_node(ctx: LineageContext, run: TrainingRun, *, root: bool) -> Node:
    ctx.require([run.project_id])
    summary = run.summary or {}
    inputs = [Ref("snapshot", run.snapshot)] if run.snapshot_id else []
    producer = producing_run(run.base_model, exclude=run.pk)
    if producer is not None:
        inputs.append(Ref("run", producer))
    sections: dict[str, Any] = {"run": _run_facts(run), "summary": scalars(summary, drop=("model_dir",))}
    if run.kind not in REWARDLESS_KINDS:
        reward = reward_source(run)
        sections["reward"] = reward
        if reward["reward_model_id"]:
            inputs.append(Ref("reward_model", reward["reward_model_id"]))
    gate = {key: summary[key] for key in GATE_SUMMARY_KEYS if summary.get(key) not in (None, [], {})}
    if isinstance(gate.get("warnings"), list):
        gate["warnings"] = capped(gate["warnings"])
    if gate:
        sections["gate"] = gate
    node = Node(
        kind="run",
        id=run.pk,
        title=run_title(run),
        page=run_page(run),
        hashes={"config_hash": json_hash(run.config or {})},
        facts={
            "kind": run.kind,
            "status": run.status,
            "project": run.project.name if run.project else None,
            "base_model": run.base_model,
            "seed": run.seed,
            "steps": run.step,
            "finished_at": iso(run.finished_at),
        },
        config=run.config or {},
        sections=sections,
        inputs=inputs,
    )
    if root:
        model_dir = summary.get("model_dir") or run.output_dir
        built_on = (
            TrainingRun.objects.filter(base_model=model_dir).exclude(pk=run.pk)
            if model_dir
            else TrainingRun.objects.none()
        )
        registered = (
            RewardModel.objects.filter(run=run).filter(ctx.visible_q("project")).select_related("project")
        )
        node.derived = [
            relation(
                "runs",
                "Runs started from its model",
                built_on.filter(ctx.visible_q("project", nullable=True)).order_by("-id"),
                run_link,
            ),
            relation(
                "reward_models",
                "Reward models registered from it",
                registered.order_by("-id"),
                reward_model_link,
            ),
            *optional_derived(run),
        ]
    return node
