"""The import page: upload a file, see its first rows and column mapping, run a dry run, then the import,
each as a background job whose progress the page polls from a small JSON endpoint."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.models import ImportJob, ImportJobStatus, Project
from annotation.services.import_jobs import import_job_create, import_job_start
from annotation.ui.lead import managed_project
from annotation.ui.setup_forms import ImportUploadForm

RECENT_JOBS = 20


def _job(project: Project, import_id: int) -> ImportJob:
    return get_object_or_404(ImportJob, pk=import_id, project=project)


def job_state(job: ImportJob) -> dict:
    """What the progress bar needs. ``total`` is known once a dry run has counted the records."""
    total = (job.dry_run_report or {}).get("records") or None
    return {
        "id": job.pk,
        "status": job.status,
        "dry_run": job.dry_run,
        "stage": job.stage,
        "records_read": job.records_read,
        "total": total,
        "error": job.error,
        "dry_run_report": job.dry_run_report or None,
        "report": job.report or None,
        "live": job.status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING),
    }


@login_required
def import_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    form = ImportUploadForm()
    jobs = ImportJob.objects.filter(project=project).select_related("created_by")[:RECENT_JOBS]
    return render(request, "annotation/setup/import.html", {"project": project, "form": form, "jobs": jobs})


@login_required
@require_POST
def import_upload(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    form = ImportUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = import_job_create(
                project=project,
                upload=form.cleaned_data["file"],
                created_by=request.user,
                options=form.options(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            return redirect("annotation:import-job", project_id=project.pk, import_id=job.pk)
    jobs = ImportJob.objects.filter(project=project)[:RECENT_JOBS]
    return render(
        request, "annotation/setup/import.html", {"project": project, "form": form, "jobs": jobs}, status=400
    )


@login_required
def import_job_page(request: HttpRequest, project_id: int, import_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    job = _job(project, import_id)
    return render(
        request, "annotation/setup/import_job.html", {"project": project, "job": job, "state": job_state(job)}
    )


@login_required
def import_job_status(request: HttpRequest, project_id: int, import_id: int) -> JsonResponse:
    project = managed_project(request, project_id)
    return JsonResponse(job_state(_job(project, import_id)))


@login_required
@require_POST
def import_job_start_page(request: HttpRequest, project_id: int, import_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    job = _job(project, import_id)
    dry_run = request.POST.get("mode") != "import"
    try:
        import_job_start(job=job, dry_run=dry_run)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, "Dry run started." if dry_run else "Import started.")
    return redirect("annotation:import-job", project_id=project.pk, import_id=job.pk)
