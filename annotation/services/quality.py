"""Quality writes: raise automatic annotator flags (which quarantine the work) and clear them after review.

An open flag quarantines the annotator's judgments in the project: snapshots and the leaderboard leave them
out; nothing is deleted. A reviewer clears a flag with a note. After a clearance the rule that raised it only
looks at work done since then, so the same history does not re-flag the annotator on the next refresh.
"""

from __future__ import annotations

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.auth import has_role
from annotation.models import AnnotatorFlag, FlagStatus, Project, ProjectMembership, Role
from annotation.quality.annotators import loo_consensus_agreement, quality_signal
from annotation.quality.flags import REASONS, flag_reasons
from annotation.selectors.quality import (
    annotator_positions,
    annotator_reliability,
    annotator_window_stats,
    quality_report_read,
    quality_settings,
)
from annotation.selectors.quality_data import ProjectVotes, project_votes


def can_review_quality(user, project: Project) -> bool:
    """Reviewers, engineers and admins of the project (global admins everywhere)."""
    if not user or not user.is_authenticated:
        return False
    if has_role(user, Role.ADMIN):
        return True
    membership = ProjectMembership.objects.filter(project=project, user=user).first()
    if membership is None:
        return False
    return membership.role in (Role.REVIEWER, Role.ENGINEER, Role.ADMIN) or has_role(
        user, Role.REVIEWER, Role.ENGINEER
    )


def _stored_reliability(project: Project) -> dict[int, float] | None:
    view = quality_report_read(project)
    if view is None or "reliability" not in view.payload:
        return None
    return {int(k): v for k, v in view.payload["reliability"].items()}


@transaction.atomic
def flags_refresh(
    *,
    project: Project,
    pv: ProjectVotes | None = None,
    reliability: dict[int, float] | None = None,
    all_time_stats: dict | None = None,
) -> list[AnnotatorFlag]:
    """Evaluate every flag rule for every annotator of the project and open the flags that fire.

    An annotator who already has an open flag for a reason gets no duplicate. Returns the new flags. The
    quality job passes the votes, reliabilities and all-time annotator statistics it has just computed;
    otherwise the votes are read here and the reliabilities come from the stored report (computed afresh
    when there is none)."""
    # Serialise refreshes of one project so two workers do not raise the same flag twice.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    settings = quality_settings(project)
    pv = project_votes(project) if pv is None else pv
    if len(pv.votes) == 0:
        return []
    loo = loo_consensus_agreement(pv.votes)
    signal = quality_signal(pv.votes, loo)
    if reliability is None:
        reliability = _stored_reliability(project)
    if reliability is None:
        reliability = annotator_reliability(project=project, pv=pv)
    project_median = float(np.median(pv.votes.time_ms))
    positions = annotator_positions(pv)

    open_reasons: set[tuple[int, str]] = set()
    last_cleared: dict[tuple[int, str], float] = {}
    for a, reason, status, cleared_at in AnnotatorFlag.objects.filter(project=project).values_list(
        "annotator_id", "reason", "status", "cleared_at"
    ):
        if status == FlagStatus.OPEN:
            open_reasons.add((a, reason))
        elif cleared_at is not None:
            key = (a, reason)
            last_cleared[key] = max(last_cleared.get(key, 0.0), cleared_at.timestamp())

    created: list[AnnotatorFlag] = []
    for annotator_id, rows in positions.items():
        # One evaluation per distinct window start (all work, or work since a clearance of some reason).
        windows: dict[float | None, list[str]] = {}
        for reason in REASONS:
            windows.setdefault(last_cleared.get((annotator_id, reason)), []).append(reason)
        for since, reasons in windows.items():
            known = (all_time_stats or {}).get(annotator_id) if since is None else None
            stats, drift = annotator_window_stats(
                pv, loo, rows, since=since, settings=settings, signal=signal, stats=known
            )
            if stats is None:
                continue
            for reason, evidence in flag_reasons(
                stats,
                settings=settings,
                project_median_ms=project_median,
                drift=drift,
                reliability=reliability.get(annotator_id),
            ):
                if reason not in reasons or (annotator_id, reason) in open_reasons:
                    continue
                evidence = {
                    **evidence,
                    "n_judgments": stats.n,
                    "window_since": since,
                    "rule_settings": settings.as_dict(),
                }
                created.append(
                    AnnotatorFlag(
                        project=project,
                        annotator_id=annotator_id,
                        reason=reason,
                        evidence=_jsonable(evidence),
                    )
                )
                open_reasons.add((annotator_id, reason))
    return AnnotatorFlag.objects.bulk_create(created)


@transaction.atomic
def flag_clear(*, flag: AnnotatorFlag, reviewer, note: str = "") -> AnnotatorFlag:
    """A reviewer clears an open flag (the quarantine lifts once no open flag remains for the annotator)."""
    flag = AnnotatorFlag.objects.select_for_update().get(pk=flag.pk)
    if not can_review_quality(reviewer, flag.project):
        raise PermissionDenied("Only reviewers, engineers and admins of the project may clear flags.")
    if flag.annotator_id == reviewer.pk:
        # Clearing lifts the quarantine on the flagged person's own votes: that is someone else's call.
        raise PermissionDenied("No one clears a flag about themselves: another reviewer of the project must.")
    if flag.status != FlagStatus.OPEN:
        raise ValidationError({"status": ["This flag is already cleared."]})
    flag.status = FlagStatus.CLEARED
    flag.cleared_by = reviewer
    flag.cleared_at = timezone.now()
    flag.clear_note = note
    flag.save(update_fields=["status", "cleared_by", "cleared_at", "clear_note"])
    return flag


@transaction.atomic
def flag_create(*, project: Project, annotator, reason: str, reviewer, note: str = "") -> AnnotatorFlag:
    """A reviewer quarantines an annotator by hand (reason "manual" unless given)."""
    if not can_review_quality(reviewer, project):
        raise PermissionDenied("Only reviewers, engineers and admins of the project may flag annotators.")
    return AnnotatorFlag.objects.create(
        project=project,
        annotator=annotator,
        reason=reason or "manual",
        evidence={"note": note, "flagged_by": reviewer.pk},
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
