"""Celery tasks of the annotation app (thin wrappers over services)."""

from celery import shared_task

from annotation.models import Project
from annotation.services.quality import flags_refresh


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
