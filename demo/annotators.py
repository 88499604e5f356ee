"""The human half of `make demo`: demo users, a fresh project with hh-rlhf pairs, scripted annotators of
different quality judging through the real assignment and submit services, and the quality check."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone

from annotation import demo as annotation_demo
from annotation.models import AnnotatorFlag, Choice, FlagStatus, Project, Role
from annotation.quality.flags import REASON_DRIFT
from annotation.selectors.quality import annotator_reliability, annotator_table, project_agreement
from annotation.services.assignment import task_next_for_annotator
from annotation.services.imports import items_import
from annotation.services.judgments import judgment_submit
from annotation.services.projects import membership_add, project_create
from annotation.services.quality import flag_clear, flags_refresh

# progress(stage, done, total): total is None while unknown.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class SimulatedAnnotator:
    """A scripted annotator: picks the hh-rlhf "chosen" side with probability ``accuracy`` (else the other
    side, or a tie), taking about ``median_ms`` per judgment. ``always`` makes a careless one ("A")."""

    username: str
    accuracy: float
    median_ms: int = 12_000
    tie_rate: float = 0.03
    always: str = ""

    def answer(self, truth: str | None, rng: random.Random) -> tuple[str, int | None, int]:
        """(choice, strength, time spent in ms) for a task whose known preference is ``truth``."""
        spent = max(200, int(self.median_ms * math.exp(rng.gauss(0.0, 0.35))))
        if self.always:
            return self.always, 1, spent
        truth = truth if truth in (Choice.A, Choice.B) else rng.choice([Choice.A, Choice.B])
        other = Choice.B if truth == Choice.A else Choice.A
        r = rng.random()
        if r < self.tie_rate:
            return Choice.TIE.value, None, spent
        choice = truth if r < self.tie_rate + (1 - self.tie_rate) * self.accuracy else other
        return str(choice), rng.choice([1, 2, 2, 3]), spent


DEFAULT_ANNOTATORS = (
    SimulatedAnnotator("sim-careful", accuracy=0.92, median_ms=18_000),
    SimulatedAnnotator("sim-solid", accuracy=0.82, median_ms=11_000),
    SimulatedAnnotator("sim-hasty", accuracy=0.68, median_ms=5_000),
    SimulatedAnnotator("sim-spammer", accuracy=0.5, median_ms=900, always=Choice.A.value),
)


# --- users and project -------------------------------------------------------------------------------------


def demo_user(username: str, role: str, *, can_log_in: bool) -> User:
    user, created = User.objects.get_or_create(username=username)
    if created:
        if can_log_in:
            user.set_password(settings.PREFLAB_DEMO_PASSWORD)
        else:
            user.set_unusable_password()
            user.first_name = "Simulated"
        user.save()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def demo_project_create(*, engineer: User, reviewer: User, annotators: list[User], overlap_k: int) -> Project:
    """A new project per demo run (re-running the demo never touches an earlier one)."""
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
    name, n = f"Demo loop {stamp}", 1
    while Project.objects.filter(name=name).exists():
        n += 1
        name = f"Demo loop {stamp} ({n})"
    project = project_create(
        created_by=engineer,
        name=name,
        description="Created by `make demo`: simulated annotators, a MiniLM reward model and a short PPO run.",
        guidelines=annotation_demo.GUIDELINES,
        overlap_k=overlap_k,
    )
    membership_add(project=project, user=reviewer, role=Role.REVIEWER)
    for user in annotators:
        membership_add(project=project, user=user, role=Role.ANNOTATOR)
    return project


def import_pairs(*, project: Project, pairs: int, seed: int, user: User, progress: Progress) -> dict:
    """The shared hh-rlhf file when present (read in place), else generated pairs."""
    source = annotation_demo.demo_source()
    done = 0

    def tick(stage: str, n: int) -> None:
        nonlocal done
        if stage == "read":
            done = min(pairs, done + n)
            progress("import", done, pairs)

    if source is not None:
        report = items_import(
            project=project, source=source, limit=pairs, seed=seed, created_by=user, progress=tick
        )
    else:
        report = items_import(
            project=project,
            source=annotation_demo.generated_pairs(pairs, seed=seed),
            shape="pairs",
            seed=seed,
            created_by=user,
            progress=tick,
        )
    progress("import", pairs, pairs)
    return report.as_dict()


def simulate_annotators(
    *, project: Project, annotators: dict[SimulatedAnnotator, User], seed: int, progress: Progress
) -> dict[str, int]:
    """Each simulated annotator asks for its next task (the same lease-based assignment the UI uses) and
    submits a judgment, round-robin, until no task has a free slot. Returns judgments per username."""
    rng = random.Random(seed)
    total = project.tasks.count() * project.overlap_k
    counts = {sim.username: 0 for sim in annotators}
    active = list(annotators.items())
    done = 0
    while active:
        rng.shuffle(active)  # a fresh order each round, so every pair of annotators shares tasks
        for sim, user in list(active):
            task = task_next_for_annotator(project=project, annotator=user)
            if task is None:
                active.remove((sim, user))
                continue
            choice, strength, spent = sim.answer((task.metadata or {}).get("source_preference"), rng)
            judgment_submit(task=task, annotator=user, choice=choice, strength=strength, time_spent_ms=spent)
            counts[sim.username] += 1
            done += 1
            progress("annotate", done, total)
    return counts


#: The simulated reviewer clears a lone ``drift`` flag of an annotator whose Dawid-Skene reliability is at
#: least this: with k=2 the drift signal (agreement with one other vote) is noisy, so a reliable annotator
#: with no other sign of trouble gets the flag cleared, with a note. Every other flag stays open.
REVIEWER_CLEARS_DRIFT_FROM = 0.7


def quality_check(*, project: Project, reviewer: User) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """Open the automatic flags (they quarantine the flagged annotator's votes), let the reviewer clear the
    false alarms (see ``REVIEWER_CLEARS_DRIFT_FROM``) and read agreement and the annotator table.

    Returns (agreement, annotator rows, flags raised, flags cleared)."""
    raised = flags_refresh(project=project)
    reliability = annotator_reliability(project=project)
    open_by_annotator: dict[int, list[AnnotatorFlag]] = {}
    for flag in AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN).select_related(
        "annotator"
    ):
        open_by_annotator.setdefault(flag.annotator_id, []).append(flag)
    cleared = []
    for annotator_id, flags in open_by_annotator.items():
        score = reliability.get(annotator_id)
        if (
            [f.reason for f in flags] == [REASON_DRIFT]
            and score is not None
            and score >= REVIEWER_CLEARS_DRIFT_FROM
        ):
            note = (
                f"make demo reviewer: reliability {score:.2f} and no other flag; a drift alarm on agreement "
                "with a single other vote (k=2) is expected noise"
            )
            flag_clear(flag=flags[0], reviewer=reviewer, note=note)
            cleared.append(
                {"username": flags[0].annotator.username, "reason": REASON_DRIFT, "reliability": score}
            )
    summary = project_agreement(project, n_boot=200)
    headline = summary["project"]
    agreement = {
        "tasks": summary["n_tasks"],
        "raw_agreement": headline["raw_agreement"]["value"],
        "krippendorff_alpha": headline["krippendorff_alpha_nominal"]["value"],
        "fleiss_kappa": headline["fleiss_kappa"]["value"],
    }
    rows = [
        {
            "id": row["annotator"],
            "username": row["username"],
            "n": row["n"],
            "consensus_agreement": row["consensus_agreement"],
            "share_a": row["share_a"],
            "median_time_ms": row["median_time_ms"],
            "reliability": row["reliability"],
            "open_flags": row["open_flags"],
        }
        for row in annotator_table(project)["annotators"]
    ]
    raised_rows = [{"username": f.annotator.username, "reason": f.reason} for f in raised]
    return agreement, rows, raised_rows, cleared
