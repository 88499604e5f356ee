"""Quality reads: a project's judgments as vote columns, agreement per project and per import batch,
per-annotator statistics, Dawid-Skene reliabilities, the model leaderboard and the flags.

Which judgments count: human pairwise ones and those expanded from rankings; imported prior preferences
(source "prior") are not an annotator's work and are left out. Swapped repeats count for repeat consistency
and annotator statistics but not for agreement (they duplicate a task). Results of the expensive reads are
cached for ``CACHE_SECONDS`` under a key that changes with every new judgment or flag change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, Max

from annotation.models import AnnotatorFlag, Choice, FlagStatus, Judgment, JudgmentSource, Project, TaskKind
from annotation.quality.agreement import NOMINAL_CODES, agreement_summary, ordinal_value
from annotation.quality.annotators import (
    AnnotatorStats,
    Votes,
    annotator_stats,
    drift_test,
    loo_consensus_agreement,
    quality_signal,
)
from annotation.quality.dawid_skene import dawid_skene
from annotation.quality.flags import QualitySettings
from annotation.quality.leaderboard import leaderboard

CACHE_SECONDS = 600
UNKNOWN_MODEL = ""
COUNTED_SOURCES = (JudgmentSource.HUMAN, JudgmentSource.RANKING)


def quality_settings(project: Project) -> QualitySettings:
    return QualitySettings.from_json(project.quality_settings)


def quarantined_annotator_ids(project: Project) -> set[int]:
    """Annotators with an open flag in the project: their work stays out of exports and the leaderboard."""
    return set(
        AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN).values_list(
            "annotator_id", flat=True
        )
    )


def flag_list(*, project: Project, status: str | None = None, annotator_id: int | None = None):
    qs = AnnotatorFlag.objects.filter(project=project).select_related("annotator", "cleared_by")
    if status:
        qs = qs.filter(status=status)
    if annotator_id:
        qs = qs.filter(annotator_id=annotator_id)
    return qs.order_by("-created_at", "-id")


@dataclass
class ProjectVotes:
    """A project's counted judgments (time order) with the task facts the quality code needs."""

    votes: Votes
    kind: np.ndarray
    batch: np.ndarray  # import batch id of the task (0 when not imported)
    model_a: np.ndarray
    model_b: np.ndarray


def project_votes(project: Project) -> ProjectVotes:
    rows = list(
        Judgment.objects.filter(task__project=project, source__in=COUNTED_SOURCES)
        .order_by("created_at", "id")
        .values_list(
            "id",
            "task_id",
            "annotator_id",
            "choice",
            "strength",
            "time_spent_ms",
            "created_at",
            "task__kind",
            "task__gold_choice",
            "task__repeat_of_id",
            "task__metadata__import_batch",
            "task__candidate_a__model_name",
            "task__candidate_b__model_name",
        )
    )
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(13)]
    kind = np.array(cols[7], dtype=object)
    votes = Votes(
        id=np.array(cols[0], dtype=np.int64),
        task=np.array(cols[1], dtype=np.int64),
        annotator=np.array(cols[2], dtype=np.int64),
        choice=np.array(cols[3], dtype=object),
        strength=np.array([s or 0 for s in cols[4]], dtype=np.int64),
        time_ms=np.array(cols[5], dtype=np.int64),
        created=np.array([c.timestamp() for c in cols[6]], dtype=float),
        day=np.array([c.date().isoformat() for c in cols[6]], dtype=object),
        gold=np.array(
            [g if k == TaskKind.GOLD else "" for g, k in zip(cols[8], kind, strict=True)], dtype=object
        ),
        repeat_of=np.array([r or 0 for r in cols[9]], dtype=np.int64),
    )
    return ProjectVotes(
        votes=votes,
        kind=kind,
        batch=np.array([int(b) if isinstance(b, int | str) and str(b).isdigit() else 0 for b in cols[10]]),
        model_a=np.array([m or UNKNOWN_MODEL for m in cols[11]], dtype=object),
        model_b=np.array([m or UNKNOWN_MODEL for m in cols[12]], dtype=object),
    )


def _cache_key(project: Project, name: str, *parts, flags: bool) -> str:
    """A key that changes with every new judgment, settings change and (when ``flags``) flag change."""
    j = Judgment.objects.filter(task__project=project).aggregate(n=Count("id"), last=Max("id"))
    settings = hashlib.sha256(json.dumps(project.quality_settings, sort_keys=True).encode()).hexdigest()[:12]
    stamp = f"{j['n']}-{j['last']}-{settings}"
    if flags:
        f = AnnotatorFlag.objects.filter(project=project).aggregate(
            n=Count("id"), last=Max("id"), cleared=Max("cleared_at")
        )
        cleared = f["cleared"].timestamp() if f["cleared"] else 0
        stamp += f"-{f['n']}-{f['last']}-{cleared}"
    return "quality:" + ":".join(str(p) for p in (name, project.pk, stamp, *parts))


def _cached(project: Project, name: str, compute, *parts, flags: bool = False):
    """Per-process cache (Django's cache) of an expensive read; ``flags`` if the result depends on flags."""
    key = _cache_key(project, name, *parts, flags=flags)
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Agreement


def _rating_matrices(pv: ProjectVotes, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    v = pv.votes
    tasks, t_idx = np.unique(v.task[mask], return_inverse=True)
    raters, r_idx = np.unique(v.annotator[mask], return_inverse=True)
    nominal = np.full((len(tasks), len(raters)), np.nan)
    ordinal = np.full((len(tasks), len(raters)), np.nan)
    nominal[t_idx, r_idx] = [NOMINAL_CODES[c] for c in v.choice[mask]]
    ordinal[t_idx, r_idx] = [
        ordinal_value(c, s) for c, s in zip(v.choice[mask], v.strength[mask], strict=True)
    ]
    return nominal, ordinal, [int(r) for r in raters]


def project_agreement(project: Project, *, n_boot: int | None = None) -> dict:
    """Agreement over the project and per import batch (tasks outside any batch form batch ``null``)."""
    settings = quality_settings(project)
    n_boot = settings.bootstrap_samples if n_boot is None else n_boot

    def compute() -> dict:
        pv = project_votes(project)
        base = pv.kind != TaskKind.REPEAT
        nominal, ordinal, raters = _rating_matrices(pv, base)
        out = {
            "n_judgments": int(base.sum()),
            "n_tasks": int(nominal.shape[0]),
            "project": agreement_summary(nominal, ordinal, rater_ids=raters, n_boot=n_boot),
            "batches": [],
        }
        for batch in np.unique(pv.batch[base]):
            mask = base & (pv.batch == batch)
            nom, ordl, r = _rating_matrices(pv, mask)
            summary = agreement_summary(nom, ordl, rater_ids=r, n_boot=n_boot, seed=int(batch))
            out["batches"].append(
                {
                    "batch": int(batch) or None,
                    "n_tasks": int(nom.shape[0]),
                    "n_judgments": int(mask.sum()),
                    **summary,
                }
            )
        return out

    return _cached(project, "agreement", compute, n_boot)


# ---------------------------------------------------------------------------------------------------------------
# Annotators


def annotator_reliability(*, project: Project) -> dict[int, float]:
    """Dawid-Skene reliability per annotator id: the probability the annotator gives a task's true answer,
    estimated by EM over all counted votes of the project, with gold tasks clamped to their answer."""
    return {int(k): v for k, v in _cached(project, "reliability", lambda: _reliability(project)).items()}


def _reliability(project: Project) -> dict[int, float]:
    pv = project_votes(project)
    v = pv.votes
    if len(v) == 0:
        return {}
    classes = [c.value for c in Choice]
    tasks, t_idx = np.unique(v.task, return_inverse=True)
    people, u_idx = np.unique(v.annotator, return_inverse=True)
    labels = np.array([classes.index(c) for c in v.choice])
    gold = {int(t): classes.index(g) for t, g in zip(t_idx, v.gold, strict=True) if g}
    res = dawid_skene(
        t_idx, u_idx, labels, n_tasks=len(tasks), n_annotators=len(people), n_classes=len(classes), gold=gold
    )
    return {int(p): round(float(r), 6) for p, r in zip(people, res.reliability, strict=True)}


def _usernames(ids) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=list(ids)).values_list("pk", "username"))


def annotator_table(project: Project) -> dict:
    """Per-annotator statistics, reliability and open flags, plus the project's median time per task."""

    def compute() -> dict:
        settings = quality_settings(project)
        pv = project_votes(project)
        loo = loo_consensus_agreement(pv.votes)
        stats = annotator_stats(pv.votes, fast_ms=settings.fast_ms, loo=loo)
        reliability = annotator_reliability(project=project)
        names = _usernames(s.annotator for s in stats)
        open_flags: dict[int, list[str]] = {}
        for a, reason in AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN).values_list(
            "annotator_id", "reason"
        ):
            open_flags.setdefault(a, []).append(reason)
        rows = [
            {
                **s.as_dict(),
                "username": names.get(s.annotator, str(s.annotator)),
                "reliability": reliability.get(s.annotator),
                "open_flags": sorted(open_flags.get(s.annotator, [])),
                "quarantined": s.annotator in open_flags,
            }
            for s in stats
        ]
        times = pv.votes.time_ms
        return {
            "project_median_time_ms": float(np.median(times)) if len(times) else None,
            "annotators": rows,
        }

    return _cached(project, "annotators", compute, flags=True)


def annotator_detail(project: Project, annotator_id: int) -> dict | None:
    """One annotator's statistics, drift test path, reliability and flag history; None if no judgments."""
    settings = quality_settings(project)
    pv = project_votes(project)
    mask = pv.votes.annotator == annotator_id
    if not mask.any():
        return None
    loo = loo_consensus_agreement(pv.votes)
    stats, drift = annotator_window_stats(pv, loo, annotator_id, since=None, settings=settings)
    times = pv.votes.time_ms
    return {
        "annotator": annotator_id,
        "username": _usernames([annotator_id]).get(annotator_id, str(annotator_id)),
        "stats": stats.as_dict(),
        "reliability": annotator_reliability(project=project).get(annotator_id),
        "drift": drift,
        "times_ms": [int(t) for t in pv.votes.time_ms[mask]],
        "project_median_time_ms": float(np.median(times)),
        "settings": settings.as_dict(),
    }


def annotator_window_stats(
    pv: ProjectVotes, loo: np.ndarray, annotator_id: int, *, since: float | None, settings: QualitySettings
) -> tuple[AnnotatorStats | None, dict]:
    """Statistics and drift test of one annotator over judgments created after ``since`` (epoch seconds)."""
    mask = pv.votes.annotator == annotator_id
    if since is not None:
        mask &= pv.votes.created > since
    if not mask.any():
        return None, {}
    (stats,) = annotator_stats(pv.votes.subset(mask), fast_ms=settings.fast_ms, loo=loo[mask])
    signal = quality_signal(pv.votes, loo)[mask]
    drift = drift_test(
        signal,
        window=settings.drift_window,
        min_baseline=settings.drift_min_baseline,
        delta=settings.drift_delta,
        alpha=settings.drift_alpha,
    )
    return stats, drift


# ---------------------------------------------------------------------------------------------------------------
# Leaderboard


def model_leaderboard(
    project: Project, *, n_boot: int | None = None, include_quarantined: bool = False
) -> dict:
    """Bradley-Terry leaderboard of the candidates' source models from the project's judgments.

    A wins -> 1, B wins -> 0, tie and "both bad" -> 0.5 (half a win each). Tasks whose candidates come from the
    same model, or from an unnamed one, carry no information and are left out; so are swapped repeats (the
    same annotator re-asked the same pair: counting them would double that vote) and quarantined work unless
    ``include_quarantined``."""
    settings = quality_settings(project)
    n_boot = settings.bootstrap_samples if n_boot is None else n_boot

    def compute() -> dict:
        pv = project_votes(project)
        v = pv.votes
        keep = (pv.model_a != pv.model_b) & (pv.model_a != UNKNOWN_MODEL) & (pv.model_b != UNKNOWN_MODEL)
        keep &= pv.kind != TaskKind.REPEAT
        if not include_quarantined:
            quarantined = np.array(sorted(quarantined_annotator_ids(project)), dtype=np.int64)
            keep &= ~np.isin(v.annotator, quarantined)
        if not keep.any():
            return {"n_comparisons": 0, "models": [], "order": [], "win_rate": [], "pair_games": []}
        outcome = np.where(v.choice[keep] == "A", 1.0, np.where(v.choice[keep] == "B", 0.0, 0.5))
        board = leaderboard(
            pv.model_a[keep], pv.model_b[keep], outcome, n_boot=n_boot, l2=settings.leaderboard_l2
        )
        return board.as_dict()

    return _cached(project, "leaderboard", compute, n_boot, include_quarantined, flags=True)
