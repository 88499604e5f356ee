"""Reads of the capability gate: a policy run's results per task set and model, for its page and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from training.models import CapabilityResult, ModelRole, TrainingRun
from training.policy.capability.harness import TASK_SET_PREFIX
from training.policy.capability.tasksets import TASK_SET_DESCRIPTIONS

ROLES = [r.value for r in ModelRole]


def capability_results(*, policy_run: TrainingRun, gate_run_id: int | None = None) -> QuerySet:
    """Result rows of a policy run (all its gate runs, newest first; or one gate run)."""
    qs = CapabilityResult.objects.filter(policy_run=policy_run).order_by("-run_id", "task_set", "model_role")
    return qs.filter(run_id=gate_run_id) if gate_run_id is not None else qs


def capability_table(policy_run: TrainingRun) -> dict[str, Any] | None:
    """The latest gate of a policy run as a table: per task set, base / SFT / policy score and interval."""
    cap = (policy_run.summary or {}).get("capability") or {}
    gate_run_id = cap.get("gate_run_id")
    if not gate_run_id:
        return None  # no gate queued (or disabled: the page says so from the summary)
    rows = list(capability_results(policy_run=policy_run, gate_run_id=gate_run_id))
    cells: dict[str, dict[str, CapabilityResult]] = {}
    for row in rows:
        cells.setdefault(row.task_set, {})[row.model_role] = row
    roles = [r for r in ROLES if any(r in by_role for by_role in cells.values())]
    sets = [
        {
            "name": name,
            "description": TASK_SET_DESCRIPTIONS.get(name)
            or (
                f"lm-evaluation-harness task {name.removeprefix(TASK_SET_PREFIX)}"
                if name.startswith(TASK_SET_PREFIX)
                else ""
            ),
            "cells": [cells[name].get(role) for role in roles],
        }
        for name in sorted(cells)
    ]
    return {"gate_run_id": gate_run_id, "status": cap.get("status"), "roles": roles, "sets": sets}
