"""A project's counted judgments as the quality statistics need them, read in forms that scale with the data.

Three shapes, each aggregated as far as the database can take it:

- per-task answer counts (``GROUP BY task``) collapsed to the distinct count rows and their multiplicities
  (``GROUP BY`` the counts): agreement metrics need nothing else, and with k votes per task a million tasks
  have a few dozen distinct rows;
- rater-pair contingency tables (a self-join of the judgments on their task, ``GROUP BY`` the pair and the two
  answers) for Cohen's kappa;
- the judgments as integer numpy columns (Dawid-Skene, per-annotator statistics, drift), moved from
  PostgreSQL with a binary ``COPY`` (about 40 bytes a judgment, no Python object per row).

Which judgments count: human pairwise ones and those expanded from rankings; imported prior preferences
(source "prior") are not an annotator's work and are left out. Swapped repeats count for repeat consistency
and annotator statistics but not for agreement (they duplicate a task).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from annotation.models import Choice, Judgment, JudgmentSource, Project, TaskKind
from annotation.quality.agreement import NOMINAL_CODES, PairTables
from annotation.quality.annotators import Votes

COUNTED_SOURCES = (JudgmentSource.HUMAN, JudgmentSource.RANKING)
CHOICES: tuple[str, ...] = tuple(sorted(NOMINAL_CODES, key=NOMINAL_CODES.get))  # code -> choice
KINDS: tuple[str, ...] = tuple(k.value for k in TaskKind)
ORDINAL_COLUMNS: tuple[tuple[str, int], ...] = tuple((f"o{v + 3}", v) for v in range(-3, 4))
"""Count columns of the signed strength scale -3..3 (A much better ... B much better); "both bad" is off it."""


def counted_judgments(project: Project):
    return Judgment.objects.filter(task__project=project, source__in=COUNTED_SOURCES)


def _code(field: str, labels: tuple[str, ...], default: int = -1) -> Case:
    return Case(
        *[When(**{field: label}, then=Value(k)) for k, label in enumerate(labels)],
        default=Value(default),
        output_field=IntegerField(),
    )


# ---------------------------------------------------------------------------------------------------------------
# Moving integer columns


def int_columns(queryset, names: list[str]) -> np.ndarray:
    """The ``names`` columns of a ``values()`` queryset as an (rows, len(names)) int64 array.

    PostgreSQL: one binary ``COPY`` of the queryset's own SQL, parsed by numpy (a million rows in well under
    a second, a few bytes of Python memory per row). Other databases (the embedded SQLite default, small by
    design): the ordinary cursor. Every column must be an integer and never NULL."""
    qs = queryset.values(*names)
    if connection.vendor != "postgresql":
        rows = list(qs.values_list(*names))
        return np.array(rows, dtype=np.int64).reshape(len(rows), len(names))
    sql, params = qs.query.sql_with_params()
    cols = ", ".join(f'q."{name}"::bigint' for name in names)
    buf = io.BytesIO()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY (SELECT {cols} FROM ({sql}) q) TO STDOUT (FORMAT BINARY)", params) as cp,
    ):
        for block in cp:
            buf.write(block)
    data = buf.getbuffer()
    # Header: 11-byte signature, int32 flags, int32 extension length (+ extension); trailer: int16 -1.
    start = 19 + int.from_bytes(data[15:19], "big")
    body = data[start : len(data) - 2]
    dtype = np.dtype(
        [("n", ">i2")] + [f for k in range(len(names)) for f in ((f"l{k}", ">i4"), (f"v{k}", ">i8"))]
    )
    rec = np.frombuffer(body, dtype=dtype)
    if len(rec) and (
        np.any(rec["n"] != len(names)) or any(np.any(rec[f"l{k}"] != 8) for k in range(len(names)))
    ):
        raise ValueError("COPY returned NULL or non-bigint columns")  # the queryset must coalesce its NULLs
    out = np.empty((len(rec), len(names)), dtype=np.int64)
    for k in range(len(names)):
        out[:, k] = rec[f"v{k}"]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Judgments as columns


@dataclass
class ProjectVotes:
    """A project's counted judgments (time order) with the task kind of each."""

    votes: Votes
    kind: np.ndarray


VOTE_COLUMNS = [
    "id",
    "task_id",
    "annotator_id",
    "choice_code",
    "strength_or_0",
    "time_spent_ms",
    "created_ms",
    "kind_code",
    "gold_code",
    "repeat_of_or_0",
]


def vote_rows(judgments) -> np.ndarray:
    """Integer columns ``VOTE_COLUMNS`` of a judgment queryset, in time order."""
    qs = judgments.annotate(
        choice_code=_code("choice", CHOICES),
        strength_or_0=Coalesce("strength", 0),
        kind_code=_code("task__kind", KINDS),
        gold_code=Case(
            *[
                When(task__kind=TaskKind.GOLD, task__gold_choice=label, then=Value(k))
                for k, label in enumerate(CHOICES)
            ],
            default=Value(-1),
            output_field=IntegerField(),
        ),
        repeat_of_or_0=Coalesce("task__repeat_of_id", 0),
        created_ms=_epoch_ms("created_at"),
    ).order_by("created_at", "id")
    return int_columns(qs, VOTE_COLUMNS)


def _epoch_ms(field: str):
    from django.db.models import ExpressionWrapper, Func

    if connection.vendor == "postgresql":
        return ExpressionWrapper(
            Func(F(field), template="(extract(epoch from %(expressions)s) * 1000)::bigint"),
            output_field=IntegerField(),
        )
    # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC.
    return ExpressionWrapper(
        Func(
            F(field), template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400000) AS INTEGER)"
        ),
        output_field=IntegerField(),
    )


def votes_from_rows(rows: np.ndarray) -> ProjectVotes:
    """The :class:`Votes` table of ``vote_rows`` output (codes turned back into labels by fancy indexing)."""
    choices = np.array(CHOICES, dtype=object)
    gold_labels = np.array([*CHOICES, ""], dtype=object)  # code -1 -> ""
    created = rows[:, 6] / 1000.0
    day = np.datetime_as_string(rows[:, 6].astype("datetime64[ms]"), unit="D").astype(object)
    votes = Votes(
        id=rows[:, 0].copy(),
        task=rows[:, 1].copy(),
        annotator=rows[:, 2].copy(),
        choice=choices[rows[:, 3]],
        strength=rows[:, 4].copy(),
        time_ms=rows[:, 5].copy(),
        created=created,
        day=day,
        gold=gold_labels[rows[:, 8]],
        repeat_of=rows[:, 9].copy(),
    )
    return ProjectVotes(votes=votes, kind=np.array(KINDS, dtype=object)[rows[:, 7]])


def project_votes(project: Project) -> ProjectVotes:
    """All counted judgments of the project as columns (for the quality job; O(judgments) memory)."""
    return votes_from_rows(vote_rows(counted_judgments(project)))


def annotator_task_votes(project: Project, annotator_id: int) -> ProjectVotes:
    """Every counted judgment on the tasks one annotator judged (theirs and the others' on the same tasks),
    and on the originals of their swapped repeats: all that annotator's statistics depend on, read through
    the judgment indexes, whatever the size of the project."""
    mine = counted_judgments(project).filter(annotator_id=annotator_id)
    tasks = mine.values("task_id")
    originals = mine.filter(task__repeat_of__isnull=False).values("task__repeat_of_id")
    return votes_from_rows(
        vote_rows(counted_judgments(project).filter(Q(task_id__in=tasks) | Q(task_id__in=originals)))
    )


# ---------------------------------------------------------------------------------------------------------------
# Agreement: count rows and pair tables


def _batch_value(raw) -> int:
    """The import batch id of a task's metadata value (0 when missing or not a plain number)."""
    return int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 0


def agreement_count_rows(project: Project) -> dict[int, dict[str, np.ndarray]]:
    """Per import batch (0: none): the distinct per-task count rows of the nominal answers (columns in
    ``NOMINAL_CODES`` order) and of the signed strength scale, with how many tasks share each row.

    Two aggregations in the database: answers per task, then tasks per distinct row of counts."""
    per_task = (
        counted_judgments(project)
        .exclude(task__kind=TaskKind.REPEAT)
        .annotate(batch=KeyTextTransform("import_batch", "task__metadata"))
        .values("task_id", "batch")
        .annotate(
            **{f"c{k}": Count("id", filter=Q(choice=label)) for k, label in enumerate(CHOICES)},
            **{name: Count("id", filter=_ordinal_q(v)) for name, v in ORDINAL_COLUMNS},
        )
        .order_by()
    )
    sql, params = per_task.query.sql_with_params()
    counts = [f"c{k}" for k in range(len(CHOICES))] + [name for name, _ in ORDINAL_COLUMNS]
    cols = ", ".join(f'q."{c}"' for c in ["batch", *counts])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {cols}, COUNT(*) FROM ({sql}) q GROUP BY {cols}", params)
        rows = cursor.fetchall()
    out: dict[int, dict[str, list]] = {}
    for batch, *values in rows:
        group = out.setdefault(_batch_value(batch), {"nominal": [], "ordinal": [], "tasks": []})
        group["nominal"].append(values[: len(CHOICES)])
        group["ordinal"].append(values[len(CHOICES) : len(counts)])
        group["tasks"].append(values[-1])
    return {
        batch: {
            "nominal": np.array(g["nominal"], dtype=float).reshape(-1, len(CHOICES)),
            "ordinal": np.array(g["ordinal"], dtype=float).reshape(-1, len(ORDINAL_COLUMNS)),
            "tasks": np.array(g["tasks"], dtype=float),
        }
        for batch, g in out.items()
    }


def _ordinal_q(value: int) -> Q:
    """Judgments whose place on the signed strength scale is ``value`` (a missing strength counts as 1)."""
    if value == 0:
        return Q(choice=Choice.TIE)
    side = Choice.A if value < 0 else Choice.B
    strength = Q(strength=abs(value))
    return Q(choice=side) & ((strength | Q(strength__isnull=True)) if abs(value) == 1 else strength)


def agreement_pair_tables(project: Project) -> dict[int, PairTables]:
    """Per import batch (0: none): the contingency tables of every annotator pair that shares a task, from
    one self-join of the counted judgments on their (non-repeat) task, aggregated by pair and answers."""
    # The ORM cannot join a queryset with itself; the self-join wraps the ORM's own SQL for the counted votes.
    base = (
        counted_judgments(project)
        .exclude(task__kind=TaskKind.REPEAT)
        .annotate(batch=KeyTextTransform("import_batch", "task__metadata"), code=_code("choice", CHOICES))
        .values("task_id", "annotator_id", "batch", "code")
        .order_by()
    )
    sql, params = base.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v AS ({sql}) SELECT v1.batch, v1.annotator_id, v2.annotator_id, v1.code, v2.code, COUNT(*)"
            " FROM v v1 JOIN v v2 ON v2.task_id = v1.task_id AND v2.annotator_id > v1.annotator_id"
            " GROUP BY v1.batch, v1.annotator_id, v2.annotator_id, v1.code, v2.code",
            params,
        )
        rows = cursor.fetchall()
    k = len(CHOICES)
    out: dict[int, PairTables] = {}
    if not rows:
        return out
    batch = np.array([_batch_value(r[0]) for r in rows], dtype=np.int64)
    data = np.array([r[1:] for r in rows], dtype=np.int64)
    for b in np.unique(batch):
        d = data[batch == b]
        pairs, inverse = np.unique(d[:, :2], axis=0, return_inverse=True)
        tables = np.zeros((len(pairs), k * k))
        np.add.at(tables, (inverse.ravel(), d[:, 2] * k + d[:, 3]), d[:, 4])
        out[int(b)] = PairTables(pairs[:, 0], pairs[:, 1], tables.reshape(len(pairs), k, k))
    return out


def merge_pair_tables(groups: list[PairTables]) -> PairTables:
    """One set of pair tables from several (a pair present in two batches has its tables summed)."""
    groups = [g for g in groups if len(g)]
    if not groups:
        k = len(CHOICES)
        return PairTables(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k, k)))
    ab = np.concatenate([np.stack([g.rater_a, g.rater_b], axis=1) for g in groups])
    tables = np.concatenate([g.tables for g in groups])
    pairs, inverse = np.unique(ab, axis=0, return_inverse=True)
    merged = np.zeros((len(pairs), *tables.shape[1:]))
    np.add.at(merged, inverse.ravel(), tables)
    return PairTables(pairs[:, 0], pairs[:, 1], merged)


# ---------------------------------------------------------------------------------------------------------------
# Leaderboard: outcome counts per model pair


def leaderboard_counts(
    project: Project, *, exclude_annotators: set[int] | frozenset[int] = frozenset()
) -> list:
    """(model of A, model of B, choice, judgments) over the counted, non-repeat judgments of the project whose
    candidates come from two different named models (what the Bradley-Terry fit needs), grouped in SQL."""
    qs = (
        counted_judgments(project)
        .exclude(task__kind=TaskKind.REPEAT)
        .exclude(task__candidate_a__model_name="")
        .exclude(task__candidate_b__model_name="")
        .exclude(task__candidate_a__model_name=F("task__candidate_b__model_name"))
    )
    if exclude_annotators:
        qs = qs.exclude(annotator_id__in=sorted(exclude_annotators))
    return list(
        qs.values_list("task__candidate_a__model_name", "task__candidate_b__model_name", "choice")
        .annotate(n=Count("id"))
        .order_by()
    )
