"""Web pages for ML engineers: the list of dataset snapshots with their cards, and one snapshot's card."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from annotation.auth import has_role
from annotation.models import Role
from training.api.snapshots import DOWNLOAD_FORMATS, SPLIT_FILES
from training.datasets.spec import SPLIT_NAMES
from training.selectors.snapshots import snapshot_card, snapshot_get, snapshot_list


def _require_engineer(user) -> None:
    if not has_role(user, Role.ENGINEER, Role.ADMIN):
        raise PermissionDenied("Snapshots are for ML engineers and admins.")


@login_required
def snapshot_list_page(request):
    _require_engineer(request.user)
    snapshots = list(snapshot_list(user=request.user)[:200])
    return render(request, "training/snapshots/list.html", {"snapshots": snapshots})


@login_required
def snapshot_detail_page(request, snapshot_id: int):
    _require_engineer(request.user)
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
        {"snapshot": snapshot, "card": snapshot_card(snapshot), "downloads": downloads},
    )
