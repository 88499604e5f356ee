"""Shared by the upload and resource-limit tests: an engineer calling the import API with a real token, the
row counts a refused import must leave unchanged, and a memory probe for hostile inputs."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from annotation.models import (
    Candidate,
    ComparisonTask,
    ImportBatch,
    Judgment,
    Prompt,
    Ranking,
    Role,
    TokenScope,
)
from tests.factories import make_project, make_task, make_token, make_user


def counts() -> dict[str, int]:
    """Every table an import or a ranking writes, across all projects (a refusal must change none)."""
    return {
        "prompts": Prompt.objects.count(),
        "candidates": Candidate.objects.count(),
        "tasks": ComparisonTask.objects.count(),
        "judgments": Judgment.objects.count(),
        "rankings": Ranking.objects.count(),
        "batches": ImportBatch.objects.count(),
    }


def named_file(data: bytes, name: str) -> io.BytesIO:
    buf = io.BytesIO(data)
    buf.name = name
    return buf


class Importer:
    """An engineer of a project, calling the import API with a real ``train`` token."""

    def __init__(self) -> None:
        self.user = make_user(Role.ENGINEER)
        self.project = make_project(members=[(self.user, Role.ENGINEER)])
        make_task(self.project)  # existing rows, so "nothing written" is checked against a non-empty table
        self.client = APIClient()
        self.client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {make_token(self.user, [TokenScope.TRAIN], name='importer')}"
        )
        self.url = f"/api/v1/projects/{self.project.pk}/import"

    def upload(self, data: bytes, name: str, **fields):
        return self.client.post(self.url, {"file": named_file(data, name), **fields}, format="multipart")

    def refused(self, response, status: int) -> dict:
        """Assert the status and the one error body; return the error."""
        assert response.status_code == status, response.content[:500]
        error = response.json()["error"]
        assert set(error) == {"code", "message", "fields"}, error
        return error


@dataclass
class MemoryPeak:
    traced: int
    """Peak bytes allocated through Python's allocator (tracemalloc) during the call."""
    rss: int | None
    """Peak resident set size above the process's RSS before the call (Linux /proc; None elsewhere)."""
    result: Any

    @property
    def worst(self) -> int:
        return max(self.traced, self.rss or 0)


def _status_kb(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's high-water mark of this process (``VmHWM``); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_peak(call: Callable[[], Any]) -> MemoryPeak:
    """Run ``call`` and measure its memory peak above the process before it: by tracemalloc (what Python
    objects took) and, on Linux, by the resident set size's high-water mark (what the process really took,
    C allocations included). Warm the code path up first, so that first-use imports are not counted."""
    rss_ok = _reset_rss_peak()
    before = _status_kb("VmRSS")
    tracemalloc.start()
    try:
        result = call()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak = _status_kb("VmHWM")
    rss = (peak - before) * 1024 if rss_ok and peak is not None and before is not None else None
    return MemoryPeak(traced=traced, rss=rss, result=result)
