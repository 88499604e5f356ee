"""Reads of spot-check verdicts: the samples of a project's spot-check tasks (each candidate of a
``spot_check`` task is one sample), the next one a reviewer has not judged, and verdict counts per policy run
(what the policy gate and the run page read by run id)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from annotation.models import (
    Candidate,
    ComparisonTask,
    Project,
    SpotCheckVerdict,
    SpotCheckVerdictChoice,
    TaskKind,
)

#: "Samples left" on the verdict page stops counting here.
SAMPLES_LEFT_CAP = 1000


def spot_check_tasks(*, project: Project) -> QuerySet[ComparisonTask]:
    return ComparisonTask.objects.filter(project=project, kind=TaskKind.SPOT_CHECK)


def spot_check_samples(*, project: Project) -> QuerySet[Candidate]:
    """The project's spot-checked samples (candidates of its ``spot_check`` tasks), oldest first."""
    tasks = spot_check_tasks(project=project)
    return Candidate.objects.filter(
        Q(pk__in=tasks.values("candidate_a")) | Q(pk__in=tasks.values("candidate_b"))
    ).order_by("pk")


def spot_check_task_of(*, project: Project, candidate: Candidate) -> ComparisonTask | None:
    """The first spot-check task of the project that shows ``candidate``."""
    return (
        spot_check_tasks(project=project)
        .filter(Q(candidate_a=candidate) | Q(candidate_b=candidate))
        .order_by("pk")
        .first()
    )


def spot_check_sample_run_id(candidate: Candidate, task: ComparisonTask | None) -> int | None:
    """The policy run that produced a sample: the candidate's ``run_id`` (set when rewardsvc sends a rollout
    to the project), else the task's per-side ``run_ids``."""
    run_id = (candidate.generation_params or {}).get("run_id")
    if run_id is None and task is not None:
        run_ids = ((task.metadata or {}).get("spot_check") or {}).get("run_ids") or []
        side = 0 if task.candidate_a_id == candidate.pk else 1
        run_id = run_ids[side] if len(run_ids) > side else None
    return int(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else None


def spot_check_next_sample(*, project: Project, reviewer, after: int = 0) -> Candidate | None:
    """The next sample (after candidate id ``after``, wrapping round) that ``reviewer`` has not judged."""
    open_samples = spot_check_samples(project=project).exclude(
        pk__in=SpotCheckVerdict.objects.filter(reviewer=reviewer, project=project).values("candidate")
    )
    sample = open_samples.filter(pk__gt=after).select_related("prompt").first()
    return sample or open_samples.select_related("prompt").first()


def spot_check_samples_left(*, project: Project, reviewer) -> int:
    """Samples the reviewer has not judged yet, counted up to ``SAMPLES_LEFT_CAP``."""
    judged = SpotCheckVerdict.objects.filter(reviewer=reviewer, project=project).values("candidate")
    return spot_check_samples(project=project).exclude(pk__in=judged).values("pk")[:SAMPLES_LEFT_CAP].count()


def spot_check_verdict_list(*, project: Project, run_id: int | None = None) -> QuerySet[SpotCheckVerdict]:
    qs = SpotCheckVerdict.objects.filter(project=project).select_related("reviewer", "candidate")
    return qs.filter(run_id=run_id) if run_id is not None else qs


def spot_check_verdict_counts(*, run_id: int) -> dict[str, int]:
    """Verdicts on a policy run's samples, per verdict (every verdict listed, zeros included). Each
    reviewer's verdict counts once: two reviewers on one sample are two verdicts."""
    counts = dict.fromkeys((c.value for c in SpotCheckVerdictChoice), 0)
    rows = SpotCheckVerdict.objects.filter(run_id=run_id).values("verdict").annotate(n=Count("pk"))
    for row in rows:
        counts[row["verdict"]] = row["n"]
    return counts
