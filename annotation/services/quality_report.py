"""The quality job's writes: compute a project's quality statistics and store them as its report, and the
reviewer's "Recompute now" request.

The statistics are computed outside any transaction (they take seconds on a big project) from one read of
the votes; the report row is then written in one short transaction. The judgments a report covers are fixed
before the reads (count and highest id), so a judgment that arrives meanwhile shows as "new since".
"""

from __future__ import annotations

import time

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation.models import Judgment, Project, ProjectQualityReport
from annotation.quality import charts
from annotation.quality.annotators import annotator_stats, loo_consensus_agreement
from annotation.selectors.quality import (
    annotator_reliability,
    annotator_table,
    inline_compute_allowed,
    judgments_covered,
    model_leaderboards,
    project_agreement,
    quality_report_read,
    quality_settings,
    quarantined_annotator_ids,
)
from annotation.selectors.quality_data import COUNTED_SOURCES, project_votes
from annotation.services.quality import _jsonable, can_review_quality, flags_refresh
from config.jobs import enqueue, task_by_name

RECOMPUTE_REQUEST_TTL_SECONDS = 900
"""A pending "Recompute now" older than this is treated as lost (the worker died) and may be asked again."""


def quality_payload(project: Project, *, raise_flags: bool = False) -> tuple[dict, int, int]:
    """Every stored statistic of the project, computed afresh: (payload, judgment count, highest id).

    With ``raise_flags`` the flag rules run on the same votes before the leaderboard, so work quarantined
    by this run is already left out of it."""
    judgment_count, last_id = judgments_covered(project)
    settings = quality_settings(project)
    pv = project_votes(project)
    reliability = annotator_reliability(project=project, pv=pv)
    stats = annotator_stats(pv.votes, fast_ms=settings.fast_ms, loo=loo_consensus_agreement(pv.votes))
    if raise_flags:
        by_id = {s.annotator: s for s in stats}
        flags_refresh(project=project, pv=pv, reliability=reliability, all_time_stats=by_id)
    table = annotator_table(project, pv=pv, reliability=reliability, stats=stats)
    agreement = project_agreement(project, pv=pv)
    del pv  # the biggest object; free it before the leaderboard read
    boards = model_leaderboards(project)
    payload = {
        "n_boot": settings.bootstrap_samples,
        "settings": settings.as_dict(),
        "agreement": agreement,
        "annotator_table": table,
        "reliability": {str(k): v for k, v in reliability.items()},
        "leaderboard": boards["default"],
        "leaderboard_with_quarantined": boards["with_quarantined"],
        "quarantined": sorted(quarantined_annotator_ids(project)),
    }
    # The charts depend only on these numbers: drawn once here, not on every page view.
    payload["charts"] = {
        "agreement": charts.agreement_chart(agreement["project"]),
        "annotators": charts.annotator_scatter(table["annotators"]),
        "leaderboard_ratings": charts.leaderboard_chart(boards["default"]["models"]),
        "leaderboard_win_rates": charts.win_rate_heatmap(
            boards["default"]["order"], boards["default"]["win_rate"]
        ),
    }
    return _jsonable(payload), judgment_count, last_id


def quality_report_compute(*, project: Project, raise_flags: bool = False) -> ProjectQualityReport:
    """Compute the project's quality statistics and store them as its report (one row per project)."""
    started = timezone.now()
    t0 = time.perf_counter()
    payload, judgment_count, last_id = quality_payload(project, raise_flags=raise_flags)
    duration_ms = int((time.perf_counter() - t0) * 1000)
    with transaction.atomic():
        report, _ = ProjectQualityReport.objects.select_for_update().get_or_create(project=project)
        report.payload = payload
        report.computed_at = timezone.now()
        report.judgment_count = judgment_count
        report.last_judgment_id = last_id
        report.duration_ms = duration_ms
        if report.requested_at is not None and report.requested_at <= started:
            report.requested_at = None  # this run answers the request
            report.requested_by = None
        report.save()
    return report


def quality_report_request(*, project: Project, user) -> bool:
    """A reviewer asks for a recompute: queue the quality job unless one asked for is still pending.

    Returns True when a job was queued (False: one is already on its way). Reviewers, engineers and admins
    of the project only."""
    if not can_review_quality(user, project):
        raise PermissionDenied(
            "Only reviewers, engineers and admins of the project may recompute its quality."
        )
    now = timezone.now()
    with transaction.atomic():
        report, _ = ProjectQualityReport.objects.select_for_update().get_or_create(project=project)
        pending = report.requested_at is not None and (
            report.computed_at is None or report.requested_at > report.computed_at
        )
        if pending and (now - report.requested_at).total_seconds() < RECOMPUTE_REQUEST_TTL_SECONDS:
            return False
        report.requested_at = now
        report.requested_by = user
        report.save(update_fields=["requested_at", "requested_by"])
        enqueue(task_by_name("annotation.quality.compute_report"), project.pk)
    return True


def quality_report_for_page(project: Project, *, sections: tuple[str, ...] | None = None):
    """The stored report (only ``sections`` of its payload, when given) for a page or API read. A small
    project (see ``inline_compute_allowed``) whose report is missing or stale is recomputed first; a large
    one is only ever read."""
    view = quality_report_read(project, sections=sections)
    stale = view is None or view.computed_at is None or view.new_judgments > 0
    if stale and inline_compute_allowed(project):
        quality_report_compute(project=project)
        view = quality_report_read(project, sections=sections)
    return view


def stale_project_ids() -> list[int]:
    """Projects whose report is missing or older than their last counted judgment (for the periodic job)."""
    newer = Judgment.objects.filter(
        task__project=OuterRef("pk"),
        source__in=COUNTED_SOURCES,
        id__gt=F("task__project__quality_report__last_judgment_id"),
    )
    no_report = Project.objects.filter(quality_report__isnull=True).filter(
        Exists(Judgment.objects.filter(task__project=OuterRef("pk"), source__in=COUNTED_SOURCES))
    )
    stale = Project.objects.filter(quality_report__isnull=False).filter(Exists(newer))
    return sorted(set(no_report.values_list("pk", flat=True)) | set(stale.values_list("pk", flat=True)))
