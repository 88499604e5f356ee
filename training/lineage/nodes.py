"""The pieces a lineage chain is made of: a ``Node`` per artefact, the viewer's access context, the registry
of node builders (one function per kind), and the capped "built from this" relation.

A builder is ``fn(ctx, obj, *, root) -> Node``: it checks access first (``ctx.require``), then describes the
object (hashes, config, facts, sections), names its inputs (``Ref``: what it was made from, walked
upstream by ``training.lineage.selectors``) and, for the artefact the chain was asked for (``root``), what
was made from it (``derived``). The cost of a node is a few queries whatever the data behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet

#: Nodes in one chain at most (a policy trained from a policy trained from ... stops here, marked).
LINEAGE_MAX_NODES = 40
#: Items listed per "built from this" relation and per list inside a node (evaluations, promotions); the
#: count is always exact.
LINEAGE_MAX_LINKS = 50
#: Pseudonymous annotators listed (most judgments first); the total is always exact.
LINEAGE_MAX_ANNOTATORS = 100


class Restricted(Exception):
    """The viewer may not see this node: it becomes a stub with its kind and id only."""


@dataclass
class Ref:
    """A reference to an input node: its kind and the object (or its primary key, loaded by the walker)."""

    kind: str
    obj: Any

    @property
    def pk(self) -> Any:
        return getattr(self.obj, "pk", self.obj)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.pk}"


@dataclass
class Node:
    """One artefact in a chain. ``hashes`` hold full hex digests; ``config`` is what produced it (shown
    collapsed); ``facts`` are short scalars; ``sections`` longer parts (evaluations, promotions, gate)."""

    kind: str
    id: Any
    title: str
    page: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    inputs: list[Ref] = field(default_factory=list)
    derived: list[dict[str, Any]] = field(default_factory=list)
    restricted: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "page": self.page,
            "restricted": self.restricted,
            "hashes": {k: v for k, v in self.hashes.items() if v},
            "facts": self.facts,
            "config": self.config,
            "sections": self.sections,
            "inputs": [ref.key for ref in self.inputs],
        }


def stub_node(kind: str, pk: Any, *, reason: str) -> Node:
    """What a viewer sees of a node they may not see (or of one that no longer exists)."""
    return Node(
        kind=kind, id=pk, title=f"{kind.replace('_', ' ')} {pk}", restricted=True, facts={"note": reason}
    )


class LineageContext:
    """Who is looking. ``user=None`` is the system (the card written into an artefact directory): it sees
    everything. Otherwise a node is visible when all the projects it belongs to are (the snapshot rule);
    a node of no project (a run without one) is visible to every engineer, as on the run pages."""

    def __init__(self, user=None):
        self.user = user
        self._visible: set[int] | None = None
        self._all = user is None

    @property
    def visible_ids(self) -> set[int] | None:
        """The ids of the viewer's projects, or None when every project is visible."""
        if self._all:
            return None
        if self._visible is None:
            from annotation.auth import is_admin, visible_projects

            if is_admin(self.user):
                self._all = True
                return None
            self._visible = set(visible_projects(self.user).values_list("pk", flat=True))
        return self._visible

    def sees(self, project_ids: Iterable[int | None]) -> bool:
        visible = self.visible_ids
        return visible is None or all(pid is None or pid in visible for pid in project_ids)

    def require(self, project_ids: Iterable[int | None]) -> None:
        if not self.sees(project_ids):
            raise Restricted

    def visible_q(self, project_field: str, *, nullable: bool = False) -> Q:
        """A filter keeping rows whose ``project_field`` is visible (or empty, when ``nullable``)."""
        visible = self.visible_ids
        if visible is None:
            return Q()
        q = Q(**{f"{project_field}__in": visible})
        return q | Q(**{f"{project_field}__isnull": True}) if nullable else q


Builder = Callable[..., Node]


@dataclass(frozen=True)
class NodeKind:
    name: str
    model: str
    """``app_label.ModelName`` of the objects this kind describes (the walker loads ids through it)."""
    build: Builder
    select_related: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------------------
# The registry. A new kind of artefact is one decorated function in a module that
# ``training.lineage.selectors`` imports (``data_nodes``, ``model_nodes``, or a new one beside them):
#
#     @node_kind("policy_version", "training.PolicyVersion", select_related=("run",))
#     def policy_version_node(ctx, version, *, root):
#         ctx.require([version.run.project_id])
#         return Node(kind="policy_version", id=version.pk, title=..., hashes=..., config=...,
#                     inputs=[Ref("run", version.run)], derived=[...] if root else [])
#
# Until such a function exists, a model named in ``OPTIONAL_KINDS`` that is installed is described by the
# generic ``generic.row_node`` (its hash-like fields, JSON fields and scalars), and the run node lists its
# rows (``generic.kind_of`` and ``generic.optional_derived``).
NODE_KINDS: dict[str, NodeKind] = {}
OPTIONAL_KINDS: dict[str, str] = {
    "policy_version": "training.PolicyVersion",
    "policy_promotion": "training.PolicyPromotion",
}


def node_kind(name: str, model: str, *, select_related: tuple[str, ...] = ()):
    """Register ``fn(ctx, obj, *, root) -> Node`` as the builder of nodes of kind ``name``."""

    def register(fn: Builder) -> Builder:
        NODE_KINDS[name] = NodeKind(name, model, fn, select_related)
        return fn

    return register


def optional_model(label: str):
    """The model class named ``app_label.ModelName``, or None when it is not installed (yet)."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------
# Small shared helpers of the builders.


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def scalars(data: dict[str, Any] | None, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The scalar entries of a JSON object (numbers, strings, booleans, nulls), for headline metrics."""
    return {
        k: v
        for k, v in (data or {}).items()
        if k not in drop and (v is None or isinstance(v, bool | int | float | str))
    }


def capped(items: Iterable[Any], total: int | None = None, *, cap: int = LINEAGE_MAX_LINKS) -> dict[str, Any]:
    """``{"count", "items", "truncated"}`` for a list shown inside a node."""
    listed = list(items)[:cap]
    count = len(listed) if total is None else total
    return {"count": count, "items": listed, "truncated": count > len(listed)}


def relation(
    name: str,
    label: str,
    qs: QuerySet,
    item: Callable[[Any], dict[str, Any]],
    *,
    cap: int = LINEAGE_MAX_LINKS,
) -> dict[str, Any]:
    """A "built from this" relation: up to ``cap`` items (newest first) and the exact count of visible rows.
    One query when the rows fit under the cap, two when they do not."""
    rows = list(qs[: cap + 1])
    count = len(rows) if len(rows) <= cap else qs.count()
    return {
        "relation": name,
        "label": label,
        "count": count,
        "items": [item(row) for row in rows[:cap]],
        "truncated": count > cap,
    }


def link(kind: str, pk: Any, title: str, page: str | None) -> dict[str, Any]:
    return {"key": f"{kind}:{pk}", "kind": kind, "id": pk, "title": title, "page": page}


def capped_rows(qs: QuerySet, item: Callable[[Any], Any]) -> dict[str, Any]:
    """``capped`` over a queryset: one query when the rows fit under the cap, two when they do not."""
    rows = list(qs[: LINEAGE_MAX_LINKS + 1])
    total = len(rows) if len(rows) <= LINEAGE_MAX_LINKS else qs.count()
    return capped((item(r) for r in rows), total)
