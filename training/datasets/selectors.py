"""Reads for dataset snapshots: the filtered judgment stream, reliability weights, lists, cards and paths."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Greatest, Least

from annotation.auth import visible_projects
from annotation.models import AnnotatorFlag, FlagStatus, Judgment, Project, TaskKind
from annotation.selectors.quality import annotator_reliability
from training.datasets.spec import SPLIT_NAMES, SnapshotSpec
from training.models import DatasetSnapshot, JobStatus

# Column order of ``snapshot_vote_rows``; the export reads rows by these positions.
VOTE_COLUMNS = (
    "id",
    "task_id",
    "task__project_id",
    "task__prompt_id",
    "task__candidate_a_id",
    "task__candidate_b_id",
    "task__kind",
    "choice",
    "strength",
    "annotator_id",
    "is_extra",
    "source",
    "ranking__order",
    "task__adjudication__choice",
    "task__adjudication__strength",
    "task__prompt__text",
    "task__prompt__messages",
    "task__candidate_a__text",
    "task__candidate_a__model_name",
    "task__candidate_b__text",
    "task__candidate_b__model_name",
    "task__prompt__content_hash",
)
# JSON columns come back as text from a raw cursor and are decoded here.
_JSON_POSITIONS = (VOTE_COLUMNS.index("ranking__order"), VOTE_COLUMNS.index("task__prompt__messages"))
SNAPSHOTS_SUBDIR = "snapshots"
# Reliability weights are rounded to this many decimals (stable across runs and numpy versions).
RELIABILITY_DECIMALS = 4


def snapshot_judgments(spec: SnapshotSpec) -> QuerySet[Judgment]:
    """Judgments the spec selects: its projects and dates, no swapped repeats, gold and quarantined
    annotators left out when the spec says so."""
    qs = Judgment.objects.filter(task__project_id__in=spec.projects).exclude(task__kind=TaskKind.REPEAT)
    if spec.exclude_gold:
        qs = qs.exclude(task__kind=TaskKind.GOLD)
    if spec.date_from:
        qs = qs.filter(created_at__gte=spec.when("date_from"))
    if spec.date_to:
        qs = qs.filter(created_at__lt=spec.when("date_to"))
    if spec.exclude_flagged:
        open_flag = AnnotatorFlag.objects.filter(
            project_id=OuterRef("task__project_id"),
            annotator_id=OuterRef("annotator_id"),
            status=FlagStatus.OPEN,
        )
        qs = qs.exclude(Exists(open_flag))
    return qs


def snapshot_vote_queryset(spec: SnapshotSpec, *, with_created_at: bool = True) -> QuerySet:
    """The selected judgments as ``VOTE_COLUMNS`` tuples (plus ``created_at`` last when asked), grouped by
    unordered candidate pair: ordered by prompt, pair, task, id (so one pair's votes arrive together)."""
    columns = (*VOTE_COLUMNS, "created_at") if with_created_at else VOTE_COLUMNS
    return (
        snapshot_judgments(spec)
        .annotate(pair_lo=Least("task__candidate_a_id", "task__candidate_b_id"))
        .annotate(pair_hi=Greatest("task__candidate_a_id", "task__candidate_b_id"))
        .order_by(F("task__prompt_id"), F("pair_lo"), F("pair_hi"), F("task_id"), F("id"))
        .values_list(*columns)
    )


def snapshot_vote_rows(
    spec: SnapshotSpec, *, with_created_at: bool = True, chunk_size: int = 5000
) -> Iterator[tuple]:
    """Stream ``snapshot_vote_queryset`` rows in chunks through a server-side cursor on PostgreSQL.

    The compiled SQL runs on a raw (chunked) cursor instead of the ORM iterator: per-row ORM converters
    cost more than the rest of the export, and only the two JSON columns need decoding. ``created_at`` (a
    slow timezone-aware parse) is fetched only when asked (the per-vote export needs it).
    """
    sql, params = snapshot_vote_queryset(spec, with_created_at=with_created_at).query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        loads = json.loads
        while rows := cursor.fetchmany(chunk_size):
            for row in rows:
                row = list(row)
                for i in _JSON_POSITIONS:
                    if isinstance(row[i], str):
                        row[i] = loads(row[i])
                yield row


def snapshot_prompt_hashes(spec: SnapshotSpec) -> Iterator[str]:
    """Distinct prompt content hashes of the selected judgments (what the split is drawn over).

    Content, not prompt ids: a snapshot can span projects and the same prompt text imported into two
    projects is two prompt rows, which must not land in different splits.
    """
    return (
        snapshot_judgments(spec)
        .order_by()
        .values_list("task__prompt__content_hash", flat=True)
        .distinct()
        .iterator(chunk_size=20000)
    )


SPEC_COUNT_CAP = 100_000
"""The create form's live count stops here ("100,000+"): it runs on every change of the form, and an exact
count of a million-judgment selection reads every one of them."""


def snapshot_spec_count(*, user, spec: SnapshotSpec) -> int:
    """How many judgments ``spec`` selects among the projects ``user`` may see (the create form's live
    count), counted up to ``SPEC_COUNT_CAP + 1`` (more than the cap means "at least the cap")."""
    visible = set(visible_projects(user).filter(pk__in=spec.projects).values_list("pk", flat=True))
    scoped = SnapshotSpec(**{**spec.to_dict(), "projects": sorted(visible)})
    return snapshot_judgments(scoped).values("pk")[: SPEC_COUNT_CAP + 1].count() if visible else 0


def annotator_reliability_weights(*, project_ids: list[int]) -> dict[tuple[int, int], float]:
    """Per-annotator reliability {(project_id, annotator_id): weight} for the given projects.

    The weight is the annotator's Dawid-Skene reliability in that project (``annotation.selectors.quality.
    annotator_reliability``: EM over all the project's counted votes, gold tasks clamped), rounded to
    ``RELIABILITY_DECIMALS`` so last-bit float differences in the EM do not reach the rows or the content
    hash. The same judgments always give the same weights (the estimate uses all the project's votes, not only
    those the spec's dates select). Annotators without votes counted by the estimate
    (imported priors) are absent: ``reliability_weighted`` weighs them 1 and ``min_reliability`` keeps them.
    """
    weights: dict[tuple[int, int], float] = {}
    for project in Project.objects.filter(pk__in=project_ids).order_by("pk"):
        for annotator_id, value in sorted(annotator_reliability(project=project).items()):
            weights[(project.pk, int(annotator_id))] = round(float(value), RELIABILITY_DECIMALS)
    return weights


def snapshot_reliability_weights(spec: SnapshotSpec) -> dict[tuple[int, int], float]:
    """The weights a build of ``spec`` needs: the reliability estimate when the spec weights or drops votes by
    it (``combine="reliability_weighted"`` or ``min_reliability`` set), else {} (nothing is computed)."""
    if spec.combine != "reliability_weighted" and spec.min_reliability is None:
        return {}
    return annotator_reliability_weights(project_ids=spec.projects)


def annotator_pseudonym(user_id: int) -> str:
    """A stable pseudonymous annotator id: HMAC-SHA256 of the user id keyed with SECRET_KEY, 16 hex chars."""
    key = settings.SECRET_KEY.encode("utf-8")
    return hmac.new(key, f"annotator:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


def snapshots_root() -> Path:
    return Path(settings.ARTIFACT_DIR) / SNAPSHOTS_SUBDIR


def snapshot_list(*, user) -> QuerySet[DatasetSnapshot]:
    """Snapshots whose projects are all visible to ``user`` (newest first)."""
    hidden = DatasetSnapshot.projects.through.objects.filter(datasetsnapshot_id=OuterRef("pk")).exclude(
        project_id__in=visible_projects(user).values("pk")
    )
    return DatasetSnapshot.objects.exclude(Exists(hidden)).prefetch_related("projects").order_by("-id")


def snapshot_get(*, user, snapshot_id: int) -> DatasetSnapshot | None:
    return snapshot_list(user=user).filter(pk=snapshot_id).first()


def snapshot_split_path(snapshot: DatasetSnapshot, split: str, form: str = "standard") -> Path:
    """Path of a TRL JSONL split of a finished snapshot: ``form`` is "standard" or "conversational"."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}")
    if form not in ("standard", "conversational"):
        raise ValueError(f"unknown form {form!r}")
    if snapshot.status != JobStatus.SUCCEEDED or not snapshot.artifact_dir:
        raise ValueError(f"snapshot {snapshot.pk} is not ready ({snapshot.status})")
    folder = "trl" if form == "standard" else "trl_conversational"
    return Path(snapshot.artifact_dir) / folder / f"{split}.jsonl"


def snapshot_card(snapshot: DatasetSnapshot) -> dict[str, Any]:
    """The snapshot's card: spec, counts, class balance, hashes, code version, lineage (judgment ids file,
    and the training runs / reward models made from it so far)."""
    card: dict[str, Any] = {}
    if snapshot.status == JobStatus.SUCCEEDED and snapshot.artifact_dir:
        path = Path(snapshot.artifact_dir) / "card.json"
        if path.exists():
            card = json.loads(path.read_text(encoding="utf-8"))
    card.update(
        {
            "id": snapshot.pk,
            "name": snapshot.name,
            "version": snapshot.version,
            "status": snapshot.status,
            "error": snapshot.error,
            "projects": sorted(p.pk for p in snapshot.projects.all()),
            "spec": snapshot.spec,
            "counts": snapshot.counts,
            "class_balance": snapshot.class_balance,
            "content_hash": snapshot.content_hash,
            "judgment_ids_hash": snapshot.judgment_ids_hash,
            "code_version": snapshot.code_version,
            "created_at": snapshot.created_at.isoformat() if snapshot.created_at else None,
            "completed_at": snapshot.completed_at.isoformat() if snapshot.completed_at else None,
        }
    )
    lineage = dict(card.get("lineage") or {})
    lineage["training_runs"] = list(snapshot.runs.order_by("id").values_list("id", flat=True))
    lineage["reward_models"] = list(snapshot.reward_models.order_by("id").values_list("id", flat=True))
    card["lineage"] = lineage
    return card
