"""A project's counted judgments as the quality statistics need them, read in forms that scale with the data.

The judgments travel once, as integer numpy columns (task, annotator, answer code, strength, time, kind, gold,
repeat): PostgreSQL aggregates each column into an ``int8[]`` sent in the binary protocol, about 80 bytes a
judgment and no Python object per row. Everything else is derived from these sparse columns, never from a
(tasks x annotators) matrix:

- per-task answer counts (``bincount`` over task and answer), collapsed to the distinct count rows and how
  many tasks share each: agreement needs nothing else, and with k votes per task a million tasks have a few
  dozen distinct rows;
- annotator-pair contingency tables for Cohen's kappa, from the votes of each task compared with the next
  ones of the same task after one sort;
- Dawid-Skene, per-annotator statistics and drift (in ``quality``), on the same columns.

Which judgments count: human pairwise ones and those expanded from rankings; imported prior preferences
(source "prior") are not an annotator's work and are left out. Swapped repeats count for repeat consistency
and annotator statistics but not for agreement (they duplicate a task). The leaderboard's counts per model
pair are grouped in SQL (``leaderboard_counts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, Case, Count, F, IntegerField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from annotation.models import ComparisonTask, Judgment, JudgmentSource, Project, TaskKind
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
    """The ``names`` columns of a ``values()`` queryset as an (rows, len(names)) int64 array, in no
    particular order. Every column must be an integer and never NULL.

    PostgreSQL: one row back, each column aggregated into an ``int8[]`` (``array_agg``) and received in
    the binary protocol, which psycopg's C loader turns into a list in one call: a million rows cost no
    Python call per row (a cursor or a COPY costs one per row, 10 s at a million on a busy 2-core box).
    Other databases (the embedded SQLite default, small by design): the ordinary cursor."""
    qs = queryset.values(*names).order_by()
    if connection.vendor != "postgresql":
        rows = list(qs.values_list(*names))
        return np.array(rows, dtype=np.int64).reshape(len(rows), len(names))
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:  # e.g. "id IN ()": nothing to read
        return np.zeros((0, len(names)), dtype=np.int64)
    aggregates = ", ".join(f'array_agg(q."{name}"::bigint)' for name in names)
    connection.ensure_connection()
    # A plain (server-binding) psycopg cursor: Django's client-side-binding cursor has no binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"SELECT {aggregates} FROM ({sql}) q", params, binary=True)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return np.zeros((0, len(names)), dtype=np.int64)
    return np.stack([np.asarray(col, dtype=np.int64) for col in row], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Judgments as columns


@dataclass
class ProjectVotes:
    """A project's counted judgments (time order) with the task kind of each."""

    votes: Votes
    kind: np.ndarray
    choice_code: np.ndarray  # index in CHOICES of each vote's answer


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
    )
    rows = int_columns(qs, VOTE_COLUMNS)
    return rows[
        np.lexsort((rows[:, 0], rows[:, 6]))
    ]  # time order (created, then id), as the drift test needs


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
    return ProjectVotes(
        votes=votes, kind=np.array(KINDS, dtype=object)[rows[:, 7]], choice_code=rows[:, 3].copy()
    )


def project_votes(project: Project) -> ProjectVotes:
    """All counted judgments of the project as columns (for the quality job; O(judgments) memory)."""
    return votes_from_rows(vote_rows(counted_judgments(project)))


def annotator_task_votes(project: Project, annotator_id: int) -> ProjectVotes:
    """Every counted judgment on the tasks one annotator judged (theirs and the others' on the same tasks),
    and on the originals of their swapped repeats: all that annotator's statistics depend on, read through
    the judgment indexes (annotator, then task), whatever the size of the project."""
    mine = counted_judgments(project).filter(annotator_id=annotator_id)
    # Ids first, as a list: "task IN (subquery) OR task IN (subquery)" makes PostgreSQL scan every judgment.
    tasks = set(mine.values_list("task_id", flat=True))
    tasks |= set(mine.filter(task__repeat_of__isnull=False).values_list("task__repeat_of_id", flat=True))
    return votes_from_rows(vote_rows(counted_judgments(project).filter(task_id__in=sorted(tasks))))


# ---------------------------------------------------------------------------------------------------------------
# Agreement: count rows and pair tables


def _batch_value(raw) -> int:
    """The import batch id of a task's metadata value (0 when missing or not a plain number)."""
    return int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 0


def task_batches(project: Project) -> dict[int, int]:
    """Task id -> import batch id, for the tasks that came from an import (the rest are batch 0)."""
    rows = (
        ComparisonTask.objects.filter(project=project, metadata__has_key="import_batch")
        .annotate(batch=KeyTextTransform("import_batch", "metadata"))
        .values_list("id", "batch")
    )
    return {task: b for task, raw in rows.iterator(chunk_size=10_000) if (b := _batch_value(raw))}


@dataclass(frozen=True)
class AgreementGroup:
    """One group of tasks (the project, or an import batch) as agreement needs it: the distinct per-task
    count rows of the nominal answers and of the signed strength scale, how many tasks share each row, and
    the annotator pairs' contingency tables."""

    nominal: np.ndarray  # (rows, len(CHOICES))
    ordinal: np.ndarray  # (rows, len(ORDINAL_COLUMNS))
    tasks: np.ndarray  # (rows,) tasks with that row
    pairs: PairTables

    @property
    def n_tasks(self) -> int:
        return int(self.tasks.sum())

    @property
    def n_judgments(self) -> int:
        return int((self.tasks * self.nominal.sum(axis=1)).sum())


def agreement_groups(
    pv: ProjectVotes, batches: dict[int, int]
) -> tuple[AgreementGroup, dict[int, AgreementGroup]]:
    """The whole project and each import batch (0: none) as :class:`AgreementGroup`, from the sparse vote
    columns (swapped repeats left out): per-task counts by ``bincount``, the distinct rows by one ``unique``,
    the pairs of annotators who share a task by comparing each vote with the next ones of its task."""
    keep = pv.kind != TaskKind.REPEAT
    task, annotator, code = pv.votes.task[keep], pv.votes.annotator[keep], pv.choice_code[keep]
    strength = np.maximum(pv.votes.strength[keep], 1)  # a missing strength counts as 1 ("slightly")
    tasks, t_idx = np.unique(task, return_inverse=True)
    k, v = len(CHOICES), len(ORDINAL_COLUMNS)
    nominal = np.bincount(t_idx * k + code, minlength=len(tasks) * k).reshape(len(tasks), k)
    signed = np.where(
        code == NOMINAL_CODES["A"], -strength, np.where(code == NOMINAL_CODES["B"], strength, 0)
    )
    on_scale = code != NOMINAL_CODES["both_bad"]
    ordinal = np.bincount(t_idx[on_scale] * v + signed[on_scale] + 3, minlength=len(tasks) * v).reshape(
        len(tasks), v
    )
    if batches:
        keys = np.array(sorted(batches), dtype=np.int64)
        vals = np.array([batches[t] for t in keys.tolist()], dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, tasks), len(keys) - 1)
        task_batch = np.where(keys[pos] == tasks, vals[pos], 0)
    else:
        task_batch = np.zeros(len(tasks), dtype=np.int64)
    pairs = _pairs(t_idx, annotator, code, task_batch)

    def group(mask: np.ndarray | None, pair_tables: PairTables) -> AgreementGroup:
        both = np.concatenate([nominal, ordinal], axis=1)
        rows, mult = _distinct_rows(both if mask is None else both[mask])
        return AgreementGroup(
            rows[:, :k].astype(float), rows[:, k:].astype(float), mult.astype(float), pair_tables
        )

    whole = group(None, merge_pair_tables(list(pairs.values())))
    batch_ids = np.unique(task_batch).tolist()
    if len(batch_ids) == 1:  # one group: the batch is the whole project
        return whole, {batch_ids[0]: whole}
    return whole, {b: group(task_batch == b, pairs.get(b, _no_pairs())) for b in batch_ids}


def _distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a non-negative integer matrix (in lexicographic order) and their counts. Rows are
    read as numbers in base (max + 1), so one 1-D ``unique`` does what ``unique(axis=0)`` does ten times
    slower; a matrix whose rows do not fit in an int64 falls back to the latter."""
    if matrix.size == 0:
        return matrix.reshape(0, matrix.shape[1]), np.zeros(0, dtype=np.int64)
    base = int(matrix.max()) + 1
    if base ** matrix.shape[1] >= 2**62:
        return np.unique(matrix, axis=0, return_counts=True)
    weights = base ** np.arange(matrix.shape[1] - 1, -1, -1, dtype=np.int64)
    _, first, counts = np.unique(matrix.astype(np.int64) @ weights, return_index=True, return_counts=True)
    return matrix[first], counts


def _no_pairs() -> PairTables:
    k = len(CHOICES)
    return PairTables(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k, k)))


def _pairs(t_idx: np.ndarray, annotator: np.ndarray, code: np.ndarray, task_batch: np.ndarray) -> dict:
    """Per batch: contingency tables of the annotator pairs sharing a task (each task's votes in a run after
    one sort; vote i pairs with i + d while the task is the same)."""
    order = np.lexsort((annotator, t_idx))
    t, a, c = t_idx[order], annotator[order], code[order]
    k = len(CHOICES)
    first, second = [], []
    for d in range(1, len(t)):
        same = np.flatnonzero(t[d:] == t[:-d])
        if len(same) == 0:
            break
        first.append(same)
        second.append(same + d)
    if not first:
        return {}
    i, j = np.concatenate(first), np.concatenate(second)  # a[i] < a[j]: sorted by annotator within a task
    people, ab = np.unique(np.stack([a[i], a[j]]), return_inverse=True)
    ab = ab.reshape(2, -1)
    batches, b_idx = np.unique(task_batch[t[i]], return_inverse=True)
    n = len(people)
    key = ((b_idx.ravel() * n + ab[0]) * n + ab[1]) * (k * k) + c[i] * k + c[j]
    cells, counts = np.unique(key, return_counts=True)
    pair_key, cell = cells // (k * k), cells % (k * k)
    out = {}
    for bi, batch in enumerate(batches.tolist()):
        in_batch = (pair_key // (n * n)) == bi
        pk = pair_key[in_batch] % (n * n)
        distinct, inverse = np.unique(pk, return_inverse=True)
        tables = np.zeros((len(distinct), k * k))
        np.add.at(tables, (inverse.ravel(), cell[in_batch]), counts[in_batch])
        out[int(batch)] = PairTables(people[distinct // n], people[distinct % n], tables.reshape(-1, k, k))
    return out


def merge_pair_tables(groups: list[PairTables]) -> PairTables:
    """One set of pair tables from several (a pair present in two batches has its tables summed)."""
    groups = [g for g in groups if len(g)]
    if not groups:
        return _no_pairs()
    if len(groups) == 1:
        return groups[0]
    ab = np.concatenate([np.stack([g.rater_a, g.rater_b], axis=1) for g in groups])
    tables = np.concatenate([g.tables for g in groups])
    pairs, inverse = np.unique(ab, axis=0, return_inverse=True)
    merged = np.zeros((len(pairs), *tables.shape[1:]))
    np.add.at(merged, inverse.ravel(), tables)
    return PairTables(pairs[:, 0], pairs[:, 1], merged)


# ---------------------------------------------------------------------------------------------------------------
# Leaderboard: outcome counts per model pair


def leaderboard_counts(project: Project, *, quarantined: set[int] | frozenset[int] = frozenset()) -> list:
    """(model of A, model of B, choice, by a quarantined annotator, judgments) over the counted, non-repeat
    judgments of the project whose candidates come from two different named models (what the Bradley-Terry
    fit needs), grouped in SQL: one pass serves the board with and without quarantined work."""
    qs = (
        counted_judgments(project)
        .exclude(task__kind=TaskKind.REPEAT)
        .exclude(task__candidate_a__model_name="")
        .exclude(task__candidate_b__model_name="")
        .exclude(task__candidate_a__model_name=F("task__candidate_b__model_name"))
        .annotate(
            quarantined=Case(
                When(annotator_id__in=sorted(quarantined) or [0], then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )
    return list(
        qs.values_list(
            "task__candidate_a__model_name", "task__candidate_b__model_name", "choice", "quarantined"
        )
        .annotate(n=Count("id"))
        .order_by()
    )
