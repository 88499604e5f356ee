"""Lineage pages: one per artefact kind, the chain drawn top to bottom (inputs first, the artefact last)
with short hashes (the full digest on hover and copy) and configs folded. Access is the artefact's own
page's: engineers and admins, artefacts of their projects only (404 otherwise)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from annotation.auth import visible_projects
from training.access import require_engineer
from training.datasets.selectors import snapshot_get
from training.lineage.selectors import lineage_chain
from training.policy.selectors import policy_run_list
from training.rewardmodels.selectors import reward_model_list

#: Characters of a hash shown on the page (the whole digest is in the title and the copy button).
SHORT_HASH = 12


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _table(value: Any) -> dict[str, Any] | None:
    """A list of records (or a capped ``{"count", "items", "truncated"}`` of them) as a table: columns in
    first-seen order, nested values as compact JSON; None for anything else (shown as JSON)."""
    rows, count = value, None
    if isinstance(value, dict) and set(value) == {"count", "items", "truncated"}:
        rows, count = value["items"], value["count"]
    if not rows or not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    columns = list(dict.fromkeys(k for r in rows for k in r))
    cell = lambda v: v if v is None or isinstance(v, str | int | float) else json.dumps(v, sort_keys=True)  # noqa: E731
    return {
        "columns": columns,
        "rows": [[cell(r.get(c)) for c in columns] for r in rows],
        "count": len(rows) if count is None else count,
    }


def _display(node: dict[str, Any]) -> dict[str, Any]:
    """A node as the template draws it: hashes shortened, config folded as JSON, sections folded as a table
    (lists of records: annotators, evaluations, promotions) or JSON."""
    sections = [(k, v) for k, v in node["sections"].items() if v not in (None, {}, [])]
    return {
        **node,
        "anchor": node["key"].replace(":", "-"),
        "hash_items": [(name, value, value[:SHORT_HASH]) for name, value in node["hashes"].items()],
        "fact_items": [(k, v) for k, v in node["facts"].items() if v is not None and v != ""],
        "config_json": _pretty(node["config"]) if node["config"] else "",
        "section_items": [(k, _table(v), _pretty(v)) for k, v in sections],
        "input_anchors": [(key, key.replace(":", "-")) for key in node["inputs"]],
    }


def _render(request, *, title: str, back: str, chain: dict[str, Any], card_url: str, api_url: str):
    return render(
        request,
        "training/lineage/detail.html",
        {
            "title": title,
            "back": back,
            "chain": chain,
            "nodes": [_display(n) for n in chain["nodes"]],
            "card_url": card_url,
            "api_url": api_url,
        },
    )


@login_required
def snapshot_lineage_page(request, snapshot_id: int):
    require_engineer(request.user, what="Snapshots")
    snapshot = snapshot_get(user=request.user, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    return _render(
        request,
        title=f"Lineage of snapshot {snapshot.name} v{snapshot.version}",
        back=reverse("training:snapshot_detail", args=[snapshot.pk]),
        chain=lineage_chain(kind="snapshot", obj=snapshot, user=request.user),
        card_url=reverse("snapshot-lineage-card", args=[snapshot.pk]),
        api_url=reverse("snapshot-lineage", args=[snapshot.pk]),
    )


@login_required
def reward_model_lineage_page(request, model_id: int):
    require_engineer(request.user, what="Training runs")
    rm = reward_model_list(projects=visible_projects(request.user)).filter(pk=model_id).first()
    if rm is None:
        raise Http404("No such reward model.")
    return _render(
        request,
        title=f"Lineage of {rm.project.name} reward model v{rm.version}",
        back=reverse("training:reward_model_detail", args=[rm.pk]),
        chain=lineage_chain(kind="reward_model", obj=rm, user=request.user),
        card_url=reverse("reward-model-lineage-card", args=[rm.pk]),
        api_url=reverse("reward-model-lineage", args=[rm.pk]),
    )


@login_required
def policy_lineage_page(request, run_id: int):
    require_engineer(request.user, what="Policy runs")
    run = policy_run_list(projects=visible_projects(request.user)).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such policy run.")
    return _render(
        request,
        title=f"Lineage of {run.get_kind_display()} run #{run.pk}",
        back=reverse("training:policy_detail", args=[run.pk]),
        chain=lineage_chain(kind="run", obj=run, user=request.user),
        card_url=reverse("policy-run-lineage-card", args=[run.pk]),
        api_url=reverse("policy-run-lineage", args=[run.pk]),
    )
