"""Celery tasks of the annotation app (thin wrappers over services)."""

from celery import shared_task
from django.conf import settings

from annotation.models import Project
from annotation.services.quality import flags_refresh
from config.celery import beat_every


@shared_task(name="annotation.quality.refresh_flags")
def quality_refresh_flags(project_id: int | None = None) -> dict[str, int]:
    """Run the annotator flag rules for one project (or every project); returns new flags per project id."""
    projects = Project.objects.all() if project_id is None else Project.objects.filter(pk=project_id)
    return {str(p.pk): len(flags_refresh(project=p)) for p in projects}


@shared_task(name="annotation.imports.run")
def import_job_run_task(job_id: int) -> str:
    """Run one dry run or import started from the import page."""
    from annotation.services.import_jobs import import_job_run

    return import_job_run(job_id=job_id).status


@shared_task(name="annotation.quality.compute_report")
def quality_compute_report(project_id: int) -> dict:
    """Compute and store one project's quality report (agreement, annotators, reliability, leaderboard),
    running the flag rules on the same votes."""
    from annotation.services.quality_report import quality_report_compute

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "computed": False}
    report = quality_report_compute(project=project, raise_flags=True)
    return {"project": project_id, "judgments": report.judgment_count, "duration_ms": report.duration_ms}


@shared_task(name="annotation.quality.compute_stale_reports")
def quality_compute_stale_reports() -> list[int]:
    """Periodic (beat): recompute the report of every project with judgments newer than its report."""
    from annotation.services.quality_report import quality_report_compute, stale_project_ids

    done = []
    for project in Project.objects.filter(pk__in=stale_project_ids()):
        quality_report_compute(project=project, raise_flags=True)
        done.append(project.pk)
    return done


# The Celery app is a stage before us (config): put the quality reports on the beat schedule.
beat_every("annotation.quality.compute_stale_reports", settings.PREFLAB_QUALITY_REPORT_EVERY_S)


@shared_task(name="annotation.pairing.refresh")
def pairing_refresh(project_id: int) -> int:
    """Re-score a battle project's open tasks by model pair (active pairing); returns the tasks written."""
    from annotation.services.pairing import pair_priorities_refresh

    project = Project.objects.filter(pk=project_id).first()
    return pair_priorities_refresh(project=project) if project else 0
