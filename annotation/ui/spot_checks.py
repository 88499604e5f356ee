"""The reviewers' spot-check verdict page: one spot-checked sample at a time (prompt, response, the reward
model's score), a verdict picked with the keys 1-6 and sent with Enter; the next sample follows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import SpotCheckVerdictChoice
from annotation.selectors.spot_checks import (
    spot_check_next_sample,
    spot_check_sample_run_id,
    spot_check_samples_left,
    spot_check_task_of,
)
from annotation.services.spot_checks import spot_check_verdict_submit
from annotation.ui.views import _reviewed_project


def _after(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 19 else 0


@login_required
def spot_check_verdicts(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _reviewed_project(request, project_id)
    sample = spot_check_next_sample(
        project=project, reviewer=request.user, after=_after(request.GET.get("after"))
    )
    task = spot_check_task_of(project=project, candidate=sample) if sample else None
    meta = ((task.metadata or {}).get("spot_check") or {}) if task else {}
    side = "a" if task and task.candidate_a_id == sample.pk else "b"
    return render(
        request,
        "annotation/spot_check_verdicts.html",
        {
            "project": project,
            "sample": sample,
            "reward": meta.get(f"reward_{side}"),
            "run_id": spot_check_sample_run_id(sample, task) if sample else None,
            "left": spot_check_samples_left(project=project, reviewer=request.user),
            "choices": list(enumerate(SpotCheckVerdictChoice.choices, start=1)),
        },
    )


@login_required
@require_POST
def spot_check_verdict_submit_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _reviewed_project(request, project_id)
    raw = request.POST.get("candidate", "")
    candidate_id = _after(raw)
    url = reverse("annotation:spot-check-verdicts", args=[project.pk])
    try:
        spot_check_verdict_submit(
            project=project,
            candidate_id=candidate_id,
            reviewer=request.user,
            verdict=request.POST.get("verdict", ""),
            note=request.POST.get("note", ""),
        )
    except ValidationError as exc:
        messages.error(request, f"Verdict not recorded: {'; '.join(exc.messages)}")
        return redirect(f"{url}?after={max(candidate_id - 1, 0)}")
    return redirect(f"{url}?after={candidate_id}")
