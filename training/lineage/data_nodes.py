"""Node builders of the data side: the judgments behind a snapshot (by aggregate queries: count, id range,
per-annotator and per-project counts, never a list of ids) and the snapshot itself."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Min
from django.urls import reverse

from annotation.models import Project
from training.datasets.selectors import annotator_pseudonym, snapshot_judgments
from training.datasets.spec import SnapshotSpec
from training.lineage.links import evaluation_link, reward_model_link, rewarded_by, run_link
from training.lineage.nodes import (
    LINEAGE_MAX_ANNOTATORS,
    LineageContext,
    Node,
    Ref,
    capped,
    iso,
    node_kind,
    relation,
)
from training.models import DatasetSnapshot, JobStatus, RewardModel, TrainingRun


def _projects(snapshot: DatasetSnapshot) -> list[Project]:
    """The snapshot's projects, read once per object (both of its nodes need them)."""
    if not hasattr(snapshot, "_lineage_projects"):
        snapshot._lineage_projects = sorted(snapshot.projects.all(), key=lambda p: p.pk)
    return snapshot._lineage_projects


@node_kind("judgments", "training.DatasetSnapshot")
def judgments_node(ctx: LineageContext, snapshot: DatasetSnapshot, *, root: bool) -> Node:
    """The judgments a snapshot selected, by aggregates over the spec's selection up to the build: count,
    id range, dates, sources, projects and pseudonymous annotators. The exact set is the snapshot's
    ``judgment_ids.txt``, whose hash is ``judgment_ids_hash``; ``matches_build`` says whether the selection
    still counts what the build selected (a judgment undone since makes it false)."""
    projects = _projects(snapshot)
    ctx.require(p.pk for p in projects)
    counts = snapshot.counts or {}
    node = Node(
        kind="judgments",
        id=snapshot.pk,
        title=f"Judgments of snapshot {snapshot.name} v{snapshot.version}",
        hashes={"judgment_ids_hash": snapshot.judgment_ids_hash},
    )
    try:
        spec = SnapshotSpec.from_dict(snapshot.spec)
    except (ValidationError, ValueError, TypeError):
        node.facts["note"] = "the snapshot's spec no longer parses"
        return node
    selection = snapshot_judgments(spec).order_by()
    if snapshot.completed_at:
        selection = selection.filter(created_at__lte=snapshot.completed_at)
    # One scan: a group per (annotator, project, source), so the rows grow with annotators, not judgments.
    groups = list(
        selection.values("annotator_id", "task__project_id", "source").annotate(
            n=Count("id"), id_min=Min("id"), id_max=Max("id"), first=Min("created_at"), last=Max("created_at")
        )
    )
    per_annotator: dict[int, int] = {}
    per_project: dict[int, int] = {}
    sources: dict[str, int] = {}
    for g in groups:
        per_annotator[g["annotator_id"]] = per_annotator.get(g["annotator_id"], 0) + g["n"]
        per_project[g["task__project_id"]] = per_project.get(g["task__project_id"], 0) + g["n"]
        sources[g["source"]] = sources.get(g["source"], 0) + g["n"]
    top = sorted(per_annotator.items(), key=lambda item: (-item[1], item[0]))[:LINEAGE_MAX_ANNOTATORS]
    total = {
        "judgments": sum(per_annotator.values()),
        "id_min": min((g["id_min"] for g in groups), default=None),
        "id_max": max((g["id_max"] for g in groups), default=None),
        "annotators": len(per_annotator),
        "first_at": min((g["first"] for g in groups), default=None),
        "last_at": max((g["last"] for g in groups), default=None),
    }
    selected = counts.get("judgments_selected")
    node.facts = {
        "judgments": total["judgments"],
        "id_min": total["id_min"],
        "id_max": total["id_max"],
        "annotators": total["annotators"],
        "first_at": iso(total["first_at"]),
        "last_at": iso(total["last_at"]),
        "selected_at_build": selected,
        "used_in_rows": counts.get("judgments_used"),
        "matches_build": selected is not None and selected == total["judgments"],
    }
    node.sections = {
        "annotators": capped(
            ({"annotator": annotator_pseudonym(uid), "judgments": n} for uid, n in top),
            total["annotators"],
            cap=LINEAGE_MAX_ANNOTATORS,
        ),
        "projects": [{"id": p.pk, "name": p.name, "judgments": per_project.get(p.pk, 0)} for p in projects],
        "sources": dict(sorted(sources.items())),
    }
    return node


@node_kind("snapshot", "training.DatasetSnapshot")
def snapshot_node(ctx: LineageContext, snapshot: DatasetSnapshot, *, root: bool) -> Node:
    projects = _projects(snapshot)
    ctx.require(p.pk for p in projects)
    counts = snapshot.counts or {}
    node = Node(
        kind="snapshot",
        id=snapshot.pk,
        title=f"Snapshot {snapshot.name} v{snapshot.version}",
        page=reverse("training:snapshot_detail", args=[snapshot.pk]),
        hashes={
            "content_hash": snapshot.content_hash,
            "judgment_ids_hash": snapshot.judgment_ids_hash,
            "code_version": snapshot.code_version,
        },
        facts={
            "name": snapshot.name,
            "version": snapshot.version,
            "status": snapshot.status,
            "rows_total": counts.get("rows_total"),
            "created_at": iso(snapshot.created_at),
            "completed_at": iso(snapshot.completed_at),
        },
        config=snapshot.spec or {},
        sections={
            "projects": [{"id": p.pk, "name": p.name} for p in projects],
            "counts": counts,
            "class_balance": snapshot.class_balance or {},
        },
        inputs=[Ref("judgments", snapshot)] if snapshot.status == JobStatus.SUCCEEDED else [],
    )
    if root:
        rms = (
            RewardModel.objects.filter(snapshot=snapshot)
            .filter(ctx.visible_q("project"))
            .select_related("project")
            .order_by("-id")
        )
        runs = TrainingRun.objects.filter(snapshot=snapshot).filter(ctx.visible_q("project", nullable=True))
        evaluations = (
            snapshot.evaluations.filter(ctx.visible_q("reward_model__project"))
            .select_related("reward_model__project")
            .order_by("-id")
        )
        rm_ids = list(rms.values_list("pk", flat=True)[:1000])
        rewarded = rewarded_by(rm_ids).filter(ctx.visible_q("project", nullable=True))
        node.derived = [
            relation("reward_models", "Reward models trained on it", rms, reward_model_link),
            relation(
                "runs", "Training runs on it (reward, SFT, DPO, prompts)", runs.order_by("-id"), run_link
            ),
            relation("evaluations", "Reward-model evaluations on it", evaluations, evaluation_link),
            relation(
                "policy_runs",
                "Policy runs rewarded by those reward models",
                rewarded.order_by("-id"),
                run_link,
            ),
        ]
    return node
