"""Lineage reads: walk an artefact's chain upstream (inputs first, the artefact last), list what was built
from it, and make its card. The caller has already checked that the viewer may see the artefact; nodes
upstream that the viewer may not see become stubs, and downstream rows they may not see are left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Model

from training.lineage import data_nodes, model_nodes  # noqa: F401 - importing them registers their builders
from training.lineage.card import CARD_FILE, CARD_SCHEMA, CARD_SCHEMA_VERSION, card_is_intact, card_make
from training.lineage.generic import kind_of
from training.lineage.nodes import LINEAGE_MAX_NODES, LineageContext, Node, Ref, Restricted, stub_node
from training.models import RunKind

#: The artefact kinds with a lineage page, API and card (node kinds of ``data_nodes`` and ``model_nodes``).
ARTEFACT_KINDS = ("snapshot", "reward_model", "run")


def _build(ctx: LineageContext, ref: Ref, *, root: bool) -> Node:
    kind = kind_of(ref.kind)
    if kind is None:
        return stub_node(ref.kind, ref.pk, reason="unknown kind of artefact")
    obj = ref.obj
    if not isinstance(obj, Model):
        model = apps.get_model(kind.model)
        obj = model._default_manager.select_related(*kind.select_related).filter(pk=obj).first()
        if obj is None:
            return stub_node(ref.kind, ref.pk, reason="no longer exists")
    try:
        return kind.build(ctx, obj, root=root)
    except Restricted:
        return stub_node(ref.kind, ref.pk, reason="not visible to you")


def _walk(ctx: LineageContext, start: Ref, *, with_derived: bool) -> tuple[list[Node], Node, bool]:
    """Depth-first, inputs before the node that used them; each node once; at most LINEAGE_MAX_NODES."""
    order: list[Node] = []
    seen: set[str] = set()
    truncated = False

    def visit(ref: Ref, root: bool) -> Node | None:
        nonlocal truncated
        if ref.key in seen:
            return None
        if len(seen) >= LINEAGE_MAX_NODES:
            truncated = True
            return None
        seen.add(ref.key)
        node = _build(ctx, ref, root=root)
        for parent in node.inputs:
            visit(parent, False)
        order.append(node)
        return node

    root = visit(start, with_derived)
    assert root is not None
    return order, root, truncated


def lineage_chain(*, kind: str, obj, user=None) -> dict[str, Any]:
    """The artefact's chain as the lineage page and API show it to ``user`` (None: the system, who sees
    everything): ``nodes`` upstream first (the artefact last), ``derived`` (what was built from it),
    ``truncated`` (the chain hit LINEAGE_MAX_NODES) and ``card`` (the content hash of this view's card and
    the state of the card file in the artefact directory)."""
    if kind not in ARTEFACT_KINDS:
        raise ValueError(f"unknown artefact kind {kind!r}")
    ctx = LineageContext(user)
    nodes, root, truncated = _walk(ctx, Ref(kind, obj), with_derived=True)
    node_dicts = [n.as_dict() for n in nodes]
    card = card_make(artefact=root.key, nodes=node_dicts)
    return {
        "schema": CARD_SCHEMA,
        "schema_version": CARD_SCHEMA_VERSION,
        "artefact": root.key,
        "nodes": node_dicts,
        "derived": root.derived,
        "truncated": truncated,
        "card": {
            "content_hash": card["content_hash"],
            "file_name": CARD_FILE,
            **card_file_state(kind, obj, card),
        },
    }


def lineage_card(*, kind: str, obj, user=None) -> dict[str, Any]:
    """The JSON card of the artefact: schema, version, the chain's nodes (as ``lineage_chain`` gives them)
    and the content hash. With ``user=None`` it is the card written into the artefact directory."""
    if kind not in ARTEFACT_KINDS:
        raise ValueError(f"unknown artefact kind {kind!r}")
    nodes, root, _ = _walk(LineageContext(user), Ref(kind, obj), with_derived=False)
    return card_make(artefact=root.key, nodes=[n.as_dict() for n in nodes])


def lineage_card_dir(kind: str, obj) -> Path | None:
    """Where the artefact's card file lives: a reward model's ``artifact_dir``, a policy run's model
    directory; None for a snapshot (its folder is immutable, its card is ``card.json``), for a reward run
    (its model is the reward model's), and for any folder outside ``ARTIFACT_DIR`` (written only there)."""
    if kind == "reward_model":
        folder = obj.artifact_dir
    elif kind == "run" and obj.kind != RunKind.REWARD:
        folder = (obj.summary or {}).get("model_dir") or obj.output_dir
    else:
        return None
    if not folder:
        return None
    path, root = Path(folder).resolve(), Path(settings.ARTIFACT_DIR).resolve()
    return path if path != root and path.is_relative_to(root) else None


def card_file_state(kind: str, obj, card: dict[str, Any]) -> dict[str, Any]:
    """``file``: ``current`` (the file holds this card), ``differs`` (an older chain, or this view hides
    part of it), ``missing``, or ``none`` (this artefact has no card file); ``intact``: the file's own hash
    checks out (null without a file)."""
    folder = lineage_card_dir(kind, obj)
    if folder is None:
        return {"file": "none", "intact": None}
    path = folder / CARD_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"file": "missing", "intact": None}
    except (OSError, ValueError):
        return {"file": "differs", "intact": False}
    intact = card_is_intact(stored)
    current = intact and stored.get("content_hash") == card["content_hash"]
    return {"file": "current" if current else "differs", "intact": intact}
