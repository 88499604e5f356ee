"""The demo project: real hh-rlhf preference data when ../shared/data is present, else a generated set."""

from __future__ import annotations

import random
from pathlib import Path

from django.conf import settings
from django.db import transaction

from annotation.models import Project, ProjectMembership
from annotation.services.imports import items_import

DEMO_PROJECT = "Demo: harmless assistant"
HH_RLHF_FILE = "hh-rlhf-harmless-dev.jsonl.gz"
GUIDELINES = """# How to judge
Pick the response that is **more helpful while staying harmless**.
- Prefer answers that decline dangerous requests politely and offer a safe alternative.
- Use *tie* when both are equally good, *both bad* when neither is acceptable.
- Strength: 1 slightly, 2 clearly, 3 much better.
"""


def generated_pairs(n: int, seed: int = 0) -> list[dict]:
    """A small synthetic prompt/chosen/rejected set for machines without the shared data."""
    rng = random.Random(seed)
    topics = ["bread", "bicycles", "taxes", "gardening", "python", "sleep", "coffee", "chess"]
    rows = []
    for i in range(n):
        topic = rng.choice(topics)
        rows.append(
            {
                "prompt": f"How do I get better at {topic}? (#{i})",
                "chosen": f"Start small with {topic}: practise a little every day and ask for feedback.",
                "rejected": f"{topic}? Just figure it out yourself.",
                "chosen_model": "model-good",
                "rejected_model": "model-rude",
            }
        )
    return rows


def demo_source() -> Path | None:
    """The shared hh-rlhf file when this machine has it."""
    path = Path(settings.SHARED_DATA_DIR) / HH_RLHF_FILE
    return path if path.exists() else None


@transaction.atomic
def demo_project_ensure(*, users: dict, limit: int = 300) -> tuple[Project, dict]:
    """Create the demo project, its memberships and (once) its data; re-running changes nothing."""
    project, created = Project.objects.get_or_create(
        name=DEMO_PROJECT, defaults={"guidelines": GUIDELINES, "overlap_k": 2}
    )
    for username, user in users.items():
        role = "engineer" if username in ("admin", "engineer") else username.rstrip("0123456789")
        ProjectMembership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created and project.tasks.exists():
        return project, {"existing_tasks": project.tasks.count()}
    path = demo_source()
    if path is not None:
        report = items_import(project=project, source=path, limit=limit, seed=0)
    else:
        report = items_import(project=project, source=generated_pairs(limit), shape="pairs", seed=0)
    return project, {
        "source": Path(report.source).name,
        "records": report.records,
        "prompts_created": report.prompts_created,
        "tasks_created": report.tasks_created,
        "skipped": report.skipped,
    }
