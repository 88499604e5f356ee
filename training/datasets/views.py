"""Web pages for ML engineers: the list of dataset snapshots with the create form (and its live count),
and one snapshot's card with its downloads and a "Train reward model" form."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from training.access import require_engineer
from training.datasets.api import DOWNLOAD_FORMATS, SPLIT_FILES
from training.datasets.forms import SnapshotSpecForm
from training.datasets.selectors import (
    SPEC_COUNT_CAP,
    snapshot_card,
    snapshot_get,
    snapshot_list,
    snapshot_spec_count,
)
from training.datasets.services import snapshot_create
from training.datasets.spec import SPLIT_NAMES
from training.models import JobStatus
from training.rewardmodels.sweeps.config import default_space_json
from training.rewardmodels.trainer import RewardRunConfig


def _spec_form(request, data=None) -> SnapshotSpecForm:
    return SnapshotSpecForm(data, projects=visible_projects(request.user).order_by("name"))


def _render_list(request, form: SnapshotSpecForm, status: int = 200):
    snapshots = list(snapshot_list(user=request.user)[:200])
    return render(
        request, "training/snapshots/list.html", {"snapshots": snapshots, "form": form}, status=status
    )


@login_required
def snapshot_list_page(request):
    require_engineer(request.user, what="Snapshots")
    return _render_list(request, _spec_form(request))


@login_required
@require_POST
def snapshot_create_page(request):
    require_engineer(request.user, what="Snapshots")
    form = _spec_form(request, request.POST)
    if form.is_valid():
        try:
            snapshot = snapshot_create(user=request.user, spec=form.spec(), name=form.cleaned_data["name"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"Snapshot {snapshot.name} v{snapshot.version} queued.")
            return redirect("training:snapshot_detail", snapshot_id=snapshot.pk)
    return _render_list(request, form, status=400)


@login_required
def snapshot_count_json(request):
    """``{"judgments": n}`` for the spec in the query string (what the create form would put in), or
    ``{"error": ...}`` with 400 when the spec is not valid yet."""
    require_engineer(request.user, what="Snapshots")
    form = _spec_form(request, request.GET)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        count = snapshot_spec_count(user=request.user, spec=form.spec())
    except ValidationError as exc:
        reasons = exc.message_dict if hasattr(exc, "error_dict") else {"spec": exc.messages}
        field, errors = next(iter(reasons.items()))
        return JsonResponse({"error": f"{field}: {errors[0]}"}, status=400)
    if count > SPEC_COUNT_CAP:
        return JsonResponse({"judgments": SPEC_COUNT_CAP, "capped": True})
    return JsonResponse({"judgments": count, "capped": False})


@login_required
def snapshot_detail_page(request, snapshot_id: int):
    require_engineer(request.user, what="Snapshots")
    snapshot = snapshot_get(user=request.user, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    downloads = []
    for fmt in DOWNLOAD_FORMATS:
        if fmt in SPLIT_FILES:
            downloads += [(f"{fmt} {split}", fmt, f"?split={split}") for split in SPLIT_NAMES]
        else:
            downloads.append((fmt, fmt, ""))
    return render(
        request,
        "training/snapshots/detail.html",
        {
            "snapshot": snapshot,
            "card": snapshot_card(snapshot),
            "downloads": downloads,
            "can_train": snapshot.status == JobStatus.SUCCEEDED,
            "defaults": RewardRunConfig(),
            "space_json": default_space_json(),
        },
    )
