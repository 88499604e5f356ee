"""Writes of spot-check verdicts: a reviewer's verdict on one spot-checked sample (fine, reward hacking,
length inflation, empty or template answer, unsafe, hallucination), once per sample and reviewer; answering
again changes the verdict."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import (
    SPOT_CHECK_NOTE_MAX,
    Candidate,
    Project,
    SpotCheckVerdict,
    SpotCheckVerdictChoice,
)
from annotation.selectors.spot_checks import spot_check_sample_run_id, spot_check_task_of


@transaction.atomic
def spot_check_verdict_submit(
    *, project: Project, candidate_id: int, reviewer, verdict: str, note: str = ""
) -> tuple[SpotCheckVerdict, bool]:
    """Record (or change) ``reviewer``'s verdict on a sample of ``project``; returns (verdict, created).

    Refused with a ``ValidationError`` naming the field: an unknown verdict, a note over
    ``SPOT_CHECK_NOTE_MAX`` characters, a candidate that is no sample of this project's spot-check tasks."""
    if verdict not in SpotCheckVerdictChoice.values:
        raise ValidationError({"verdict": f"not a verdict: {str(verdict)[:40]!r}"})
    if len(note) > SPOT_CHECK_NOTE_MAX:
        raise ValidationError({"note": f"at most {SPOT_CHECK_NOTE_MAX} characters"})
    candidate = Candidate.objects.filter(pk=candidate_id, prompt__project=project).first()
    task = spot_check_task_of(project=project, candidate=candidate) if candidate else None
    if task is None:
        raise ValidationError({"candidate": f"no spot-check sample {candidate_id} in this project"})
    row, created = SpotCheckVerdict.objects.update_or_create(
        candidate=candidate,
        reviewer=reviewer,
        defaults={
            "project": project,
            "task": task,
            "verdict": verdict,
            "note": note,
            "run_id": spot_check_sample_run_id(candidate, task),
        },
    )
    return row, created
