"""Quality reads: agreement per project and per import batch, per-annotator statistics, Dawid-Skene
reliabilities, the model leaderboard and the flags, plus the stored report the pages show.

Two kinds of read. The *fresh* computations (``project_agreement``, ``annotator_table``,
``annotator_reliability``, ``model_leaderboard``) scale with the project's judgments (linear, from sparse
vote columns; see ``quality_data``) and run in the quality job, snapshots and tests. Pages
and the API read the :class:`ProjectQualityReport` that job stored (``quality_report_read``), with its age and
the judgments added since; ``annotator_detail`` reads only one annotator's tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max
from django.db.models.fields.json import KeyTransform

from annotation.models import (
    AnnotatorFlag,
    Choice,
    FlagStatus,
    Project,
    ProjectQualityReport,
)
from annotation.quality.agreement import agreement_from_counts
from annotation.quality.annotators import (
    AnnotatorStats,
    annotator_stats,
    drift_test,
    group_indices,
    loo_consensus_agreement,
    quality_signal,
)
from annotation.quality.dawid_skene import dawid_skene
from annotation.quality.flags import QualitySettings
from annotation.quality.leaderboard import leaderboard
from annotation.selectors.quality_data import (
    CHOICES,
    COUNTED_SOURCES,
    AgreementGroup,
    ProjectVotes,
    agreement_groups,
    annotator_task_votes,
    counted_judgments,
    leaderboard_counts,
    project_votes,
    task_batches,
)

__all__ = ["COUNTED_SOURCES", "ProjectVotes", "project_votes"]

UNKNOWN_MODEL = ""
NEW_SINCE_CAP = 10_000
"""Judgments added since a report are counted up to this many (the page then says "10,000+")."""


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


# ---------------------------------------------------------------------------------------------------------------
# Agreement


def project_agreement(project: Project, *, n_boot: int | None = None, pv: ProjectVotes | None = None) -> dict:
    """Agreement over the project and per import batch (tasks outside any batch form batch ``null``), from
    per-task answer counts and annotator-pair tables built from the sparse vote columns (swapped repeats
    left out). ``pv``: the votes when the caller has them already (the quality job)."""
    settings = quality_settings(project)
    n_boot = settings.bootstrap_samples if n_boot is None else n_boot
    pv = project_votes(project) if pv is None else pv
    whole, batches = agreement_groups(pv, task_batches(project))

    def summary(g: AgreementGroup, seed: int) -> dict:
        return agreement_from_counts(
            g.nominal, g.ordinal, g.pairs, multiplicity=g.tasks, n_boot=n_boot, seed=seed
        )

    project_summary = summary(whole, 0)
    out = {
        "n_judgments": whole.n_judgments,
        "n_tasks": whole.n_tasks,
        "project": project_summary,
        "batches": [],
    }
    for batch in sorted(batches):
        g = batches[batch]
        # A project without imports is one batch equal to the whole (same rows, same seed 0): same numbers.
        same = len(batches) == 1 and batch == 0
        out["batches"].append(
            {
                "batch": batch or None,
                "n_tasks": g.n_tasks,
                "n_judgments": g.n_judgments,
                **(project_summary if same else summary(g, batch)),
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Annotators


def annotator_reliability(*, project: Project, pv: ProjectVotes | None = None) -> dict[int, float]:
    """Dawid-Skene reliability per annotator id: the probability the annotator gives a task's true answer,
    estimated by EM over all counted votes of the project (sparse: one row per vote), with gold tasks
    clamped to their answer."""
    pv = project_votes(project) if pv is None else pv
    v = pv.votes
    if len(v) == 0:
        return {}
    classes = [c.value for c in Choice]
    assert tuple(classes) == CHOICES  # vote codes are indices in CHOICES
    tasks, t_idx = np.unique(v.task, return_inverse=True)
    people, u_idx = np.unique(v.annotator, return_inverse=True)
    code = {c: k for k, c in enumerate(classes)}
    labels = pv.choice_code
    gold_rows = np.flatnonzero(v.gold != "")
    gold = {int(t_idx[r]): code[v.gold[r]] for r in gold_rows}
    res = dawid_skene(
        t_idx, u_idx, labels, n_tasks=len(tasks), n_annotators=len(people), n_classes=len(classes), gold=gold
    )
    return {int(p): round(float(r), 6) for p, r in zip(people, res.reliability, strict=True)}


def _usernames(ids) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=list(ids)).values_list("pk", "username"))


def open_flag_reasons(project: Project) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for a, reason in AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN).values_list(
        "annotator_id", "reason"
    ):
        out.setdefault(a, []).append(reason)
    return out


def annotator_table(
    project: Project,
    *,
    pv: ProjectVotes | None = None,
    reliability: dict[int, float] | None = None,
    stats: list[AnnotatorStats] | None = None,
) -> dict:
    """Per-annotator statistics, reliability and open flags, plus the project's median time per task."""
    settings = quality_settings(project)
    pv = project_votes(project) if pv is None else pv
    if stats is None:
        stats = annotator_stats(pv.votes, fast_ms=settings.fast_ms, loo=loo_consensus_agreement(pv.votes))
    reliability = annotator_reliability(project=project, pv=pv) if reliability is None else reliability
    names = _usernames(s.annotator for s in stats)
    open_flags = open_flag_reasons(project)
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


def annotator_detail(project: Project, annotator_id: int) -> dict | None:
    """One annotator's statistics, drift test path, reliability and flag history; None if no judgments.

    Reads the annotator's own tasks only (their judgments and the others' on the same tasks, all the
    leave-one-out consensus needs); reliability and the project median come from the stored report."""
    settings = quality_settings(project)
    pv = annotator_task_votes(project, annotator_id)
    positions = np.flatnonzero(pv.votes.annotator == annotator_id)
    if len(positions) == 0:
        return None
    loo = loo_consensus_agreement(pv.votes)
    stats, drift = annotator_window_stats(pv, loo, positions, since=None, settings=settings)
    stored = report_values(project, reliability=str(annotator_id))
    return {
        "annotator": annotator_id,
        "username": _usernames([annotator_id]).get(annotator_id, str(annotator_id)),
        "stats": stats.as_dict(),
        "reliability": stored.get("reliability"),
        "drift": drift,
        "times_ms": [int(t) for t in pv.votes.time_ms[positions]],
        "project_median_time_ms": stored.get("project_median_time_ms"),
        "settings": settings.as_dict(),
    }


def report_values(project: Project, *, reliability: str) -> dict:
    """Two numbers of the stored report, read inside the database (the payload of a big project is
    megabytes): one annotator's reliability and the project's median time per task."""
    row = (
        ProjectQualityReport.objects.filter(project=project)
        .values_list(
            KeyTransform(reliability, KeyTransform("reliability", "payload")),
            KeyTransform("project_median_time_ms", KeyTransform("annotator_table", "payload")),
        )
        .first()
    )
    if row is None:
        return {}
    return {"reliability": row[0], "project_median_time_ms": row[1]}


def annotator_positions(pv: ProjectVotes) -> dict[int, np.ndarray]:
    """Each annotator's rows of ``pv`` in time order (one stable sort for all of them)."""
    annotators, positions = group_indices(pv.votes.annotator)
    return {int(a): p for a, p in zip(annotators, positions, strict=True)}


def annotator_window_stats(
    pv: ProjectVotes,
    loo: np.ndarray,
    positions: np.ndarray,
    *,
    since: float | None,
    settings: QualitySettings,
    signal: np.ndarray | None = None,
    stats: AnnotatorStats | None = None,
) -> tuple[AnnotatorStats | None, dict]:
    """Statistics and drift test of one annotator (their rows ``positions`` of ``pv``, in time order) over
    judgments created after ``since`` (epoch seconds). ``signal`` is ``quality_signal`` of all of ``pv``
    (computed here when not given; pass it when looping over annotators); ``stats`` the statistics when the
    caller has them already."""
    if since is not None:
        positions = positions[pv.votes.created[positions] > since]
    if len(positions) == 0:
        return None, {}
    if stats is None:
        (stats,) = annotator_stats(pv.votes.subset(positions), fast_ms=settings.fast_ms, loo=loo[positions])
    if signal is None:
        signal = quality_signal(pv.votes.subset(positions), loo[positions])
    else:
        signal = signal[positions]
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


def leaderboard_comparisons(
    project: Project, *, include_quarantined: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The comparisons a model leaderboard is fitted on, counted: (model A names, model B names, outcome,
    judgments), outcome 1 A won, 0 B won, 0.5 tie or both bad. Rules in ``model_leaderboard``."""
    rows = leaderboard_counts(project, quarantined=quarantined_annotator_ids(project))
    if not include_quarantined:
        rows = [r for r in rows if not r[3]]
    return (
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=object),
        np.array([1.0 if r[2] == "A" else 0.0 if r[2] == "B" else 0.5 for r in rows]),
        np.array([r[4] for r in rows], dtype=float),
    )


def model_leaderboard(
    project: Project, *, n_boot: int | None = None, include_quarantined: bool = False
) -> dict:
    """Bradley-Terry leaderboard of the candidates' source models from the project's judgments.

    A wins -> 1, B wins -> 0, tie and "both bad" -> 0.5 (half a win each). Tasks whose candidates come from the
    same model, or from an unnamed one, carry no information and are left out; so are swapped repeats (the
    same annotator re-asked the same pair: counting them would double that vote) and quarantined work unless
    ``include_quarantined``. The judgments arrive counted per (model A, model B, answer) from SQL."""
    return model_leaderboards(project, n_boot=n_boot)[
        "with_quarantined" if include_quarantined else "default"
    ]


def model_leaderboards(project: Project, *, n_boot: int | None = None) -> dict[str, dict]:
    """Both leaderboards (``default``: quarantined work left out; ``with_quarantined``) from one SQL pass."""
    settings = quality_settings(project)
    n_boot = settings.bootstrap_samples if n_boot is None else n_boot
    rows = leaderboard_counts(project, quarantined=quarantined_annotator_ids(project))

    def board(selected: list) -> dict:
        if not selected:
            return {"n_comparisons": 0, "models": [], "order": [], "win_rate": [], "pair_games": []}
        model_a = np.array([r[0] for r in selected], dtype=object)
        model_b = np.array([r[1] for r in selected], dtype=object)
        outcome = np.array([1.0 if r[2] == "A" else 0.0 if r[2] == "B" else 0.5 for r in selected])
        weight = np.array([r[4] for r in selected], dtype=float)
        fit = leaderboard(model_a, model_b, outcome, n_boot=n_boot, l2=settings.leaderboard_l2, weight=weight)
        return fit.as_dict()

    return {"default": board([r for r in rows if not r[3]]), "with_quarantined": board(rows)}


# ---------------------------------------------------------------------------------------------------------------
# The stored report


@dataclass(frozen=True)
class QualityReportView:
    """The stored report with what a page says about its freshness."""

    report: ProjectQualityReport
    new_judgments: int
    """Counted judgments added since the report (capped at ``NEW_SINCE_CAP``)."""

    @property
    def payload(self) -> dict:
        return self.report.payload

    @property
    def computed_at(self) -> datetime | None:
        return self.report.computed_at

    @property
    def new_judgments_display(self) -> str:
        return f"{NEW_SINCE_CAP:,}+" if self.new_judgments >= NEW_SINCE_CAP else f"{self.new_judgments:,}"

    @property
    def recompute_pending(self) -> bool:
        r = self.report
        return r.requested_at is not None and (r.computed_at is None or r.requested_at > r.computed_at)

    def as_dict(self) -> dict:
        r = self.report
        return {
            "computed_at": r.computed_at.isoformat() if r.computed_at else None,
            "judgment_count": r.judgment_count,
            "new_judgments_since": self.new_judgments,
            "new_judgments_since_capped": self.new_judgments >= NEW_SINCE_CAP,
            "duration_ms": r.duration_ms,
            "recompute_requested_at": r.requested_at.isoformat() if self.recompute_pending else None,
        }


def new_judgments_since(project: Project, last_judgment_id: int) -> int:
    """Counted judgments with an id above ``last_judgment_id``, up to ``NEW_SINCE_CAP`` (a primary-key range
    scan, bounded by the cap, not a count over the project)."""
    return (
        counted_judgments(project)
        .filter(id__gt=last_judgment_id)
        .order_by("id")
        .values("id")[:NEW_SINCE_CAP]
        .count()
    )


def quality_report_read(
    project: Project, *, sections: tuple[str, ...] | None = None
) -> QualityReportView | None:
    """The project's stored quality report and its freshness, or None before the first computation.

    ``sections``: only these top-level keys of the payload are read (the payload of a big project is
    megabytes, mostly sections a given page does not show)."""
    qs = ProjectQualityReport.objects.filter(project=project)
    if sections is not None:
        qs = qs.defer("payload").annotate(**{f"section_{k}": KeyTransform(k, "payload") for k in sections})
    report = qs.first()
    if report is None:
        return None
    if sections is not None:
        report.payload = {k: v for k in sections if (v := getattr(report, f"section_{k}")) is not None}
    return QualityReportView(
        report=report, new_judgments=new_judgments_since(project, report.last_judgment_id)
    )


def inline_compute_allowed(project: Project) -> bool:
    """Small projects (at most ``PREFLAB_QUALITY_INLINE_MAX_JUDGMENTS`` counted judgments, checked with a
    bounded count) may have a stale report recomputed while the page waits: it costs a fraction of a second
    and keeps small projects and the demo live. Larger ones wait for the job."""
    limit = int(getattr(django_settings, "PREFLAB_QUALITY_INLINE_MAX_JUDGMENTS", 0))
    if limit <= 0:
        return False
    return counted_judgments(project).values("id")[: limit + 1].count() <= limit


def judgments_covered(project: Project) -> tuple[int, int]:
    """(count, highest id) of the project's counted judgments: what a report computed now covers."""
    agg = counted_judgments(project).aggregate(n=Count("id"), last=Max("id"))
    return int(agg["n"] or 0), int(agg["last"] or 0)


def report_annotator_rows(view: QualityReportView, project: Project) -> list[dict]:
    """The stored annotator rows with today's open flags (flags are few and change between reports)."""
    open_flags = open_flag_reasons(project)
    rows = view.payload.get("annotator_table", {}).get("annotators", [])
    return [
        {
            **r,
            "open_flags": sorted(open_flags.get(r["annotator"], [])),
            "quarantined": r["annotator"] in open_flags,
        }
        for r in rows
    ]
