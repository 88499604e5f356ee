"""Kinds without a builder of their own yet: a model named in ``nodes.OPTIONAL_KINDS`` that is installed (a
policy version, a policy promotion) is described generically, and a run lists its rows as "built from it"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from annotation.models import Project
from training.lineage.nodes import (
    NODE_KINDS,
    OPTIONAL_KINDS,
    LineageContext,
    Node,
    NodeKind,
    Ref,
    iso,
    link,
    optional_model,
    relation,
)
from training.models import DatasetSnapshot, RewardModel, TrainingRun


def kind_of(name: str) -> NodeKind | None:
    """The registered kind, or a generic one for an installed model of ``OPTIONAL_KINDS``."""
    if name in NODE_KINDS:
        return NODE_KINDS[name]
    label = OPTIONAL_KINDS.get(name)
    if label and optional_model(label) is not None:
        return NodeKind(name, label, row_node)
    return None


def optional_derived(run: TrainingRun) -> list[dict[str, Any]]:
    """Rows of installed optional models (``OPTIONAL_KINDS``) that point at this run."""
    out = []
    for kind, label in OPTIONAL_KINDS.items():
        model = optional_model(label)
        if model is None:
            continue
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is TrainingRun:
                qs = model._default_manager.filter(**{f.name: run}).order_by("-pk")
                name = kind.replace("_", " ")
                out.append(
                    relation(
                        f"{kind}:{f.name}",
                        f"{name}s from it",
                        qs,
                        lambda row, k=kind: link(k, row.pk, str(row), None),
                    )
                )
    return out


_INPUT_KINDS = {TrainingRun: "run", RewardModel: "reward_model", DatasetSnapshot: "snapshot"}


def row_node(ctx: LineageContext, obj, *, root: bool) -> Node:
    """A generic node for a model without its own builder: fields named like a hash go to ``hashes``,
    JSON fields to ``config``, scalars to ``facts``; foreign keys to runs, reward models and snapshots are
    its inputs, a project key decides access, and links to users are left out (no names in a lineage)."""
    hashes: dict[str, str] = {}
    facts: dict[str, Any] = {}
    config: dict[str, Any] = {}
    inputs: list[Ref] = []
    project_ids: list[int | None] = []
    for f in obj._meta.concrete_fields:
        value = getattr(obj, f.attname)
        if f.is_relation:
            if f.related_model is Project:
                project_ids.append(value)
            elif f.related_model in _INPUT_KINDS and value is not None:
                inputs.append(Ref(_INPUT_KINDS[f.related_model], value))
                facts[f.attname] = value
        elif isinstance(value, dict | list):
            config[f.name] = value
        elif "hash" in f.name and isinstance(value, str):
            hashes[f.name] = value
        elif isinstance(value, datetime):
            facts[f.name] = iso(value)
        elif value is None or isinstance(value, bool | int | float | str):
            facts[f.name] = value
    ctx.require(project_ids)
    kind = next((k for k, label in OPTIONAL_KINDS.items() if label == obj._meta.label), obj._meta.model_name)
    return Node(
        kind=kind, id=obj.pk, title=str(obj), hashes=hashes, facts=facts, config=config, inputs=inputs
    )
