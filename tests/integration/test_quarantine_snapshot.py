"""Cross-stage: automatic quality flags quarantine an annotator's work, and a new dataset snapshot leaves it
out (nothing deleted); clearing the flag brings the work back in the next snapshot."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from annotation.models import AnnotatorFlag, Judgment, Role
from annotation.services.quality import flag_clear, flags_refresh
from tests.annotation.quality.synthetic import _build_tasks, judge, noisy
from tests.factories import add_member, make_project, make_user
from training.datasets.selectors import annotator_pseudonym
from training.datasets.services import snapshot_build, snapshot_create
from training.models import JobStatus


def _snapshot(user, project):
    snap = snapshot_create(
        user=user,
        spec={"projects": [project.pk], "combine": "per_vote", "ties": "margin_zero"},
        name="quarantine",
        enqueue=False,
    )
    snap = snapshot_build(snapshot_id=snap.pk)
    assert snap.status == JobStatus.SUCCEEDED, snap.error
    root = Path(snap.artifact_dir)
    ids = {int(x) for x in (root / "judgment_ids.txt").read_text().split()}
    return snap, ids, (root / "votes.jsonl").read_text()


@pytest.mark.django_db
def test_quarantine_removes_flagged_votes_from_a_new_snapshot(require_postgres, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    rng = random.Random(5)
    engineer = make_user(Role.ENGINEER)
    reviewer = make_user(Role.REVIEWER)
    project = make_project(members=[(engineer, Role.ENGINEER), (reviewer, Role.REVIEWER)])
    tasks, truth = _build_tasks(project, 40, 10, rng)
    standard = [t for t in tasks if not t.gold_choice]
    people = {
        n: make_user(Role.ANNOTATOR, username=f"{n}-{project.pk}")
        for n in ("g1", "g2", "g3", "always_a", "fast")
    }
    for u in people.values():
        add_member(project, u)
    for n in ("g1", "g2", "g3"):
        judge(people[n], tasks, noisy(truth, rng, 0.9), rng=rng)
    judge(people["always_a"], tasks, lambda t: "A", rng=rng)
    judge(people["fast"], tasks, noisy(truth, rng, 0.9), time_ms=lambda r: 500, rng=rng)

    def ids_of(name):
        return set(
            Judgment.objects.filter(annotator=people[name], task__in=standard).values_list("id", flat=True)
        )

    _, before, _ = _snapshot(engineer, project)
    assert ids_of("always_a") <= before and ids_of("fast") <= before

    flags_refresh(project=project)
    flagged = set(
        AnnotatorFlag.objects.filter(project=project, status="open").values_list("annotator_id", flat=True)
    )
    assert flagged == {people["always_a"].pk, people["fast"].pk}

    _, after, votes = _snapshot(engineer, project)
    assert not (ids_of("always_a") | ids_of("fast")) & after
    assert ids_of("g1") <= after and after == before - ids_of("always_a") - ids_of("fast")
    assert annotator_pseudonym(people["always_a"].pk) not in votes
    assert annotator_pseudonym(people["g1"].pk) in votes
    assert Judgment.objects.filter(annotator=people["always_a"]).count() == len(tasks)  # nothing deleted

    # A reviewer clears the speed flag: the next snapshot takes that annotator's work again.
    flag_clear(flag=AnnotatorFlag.objects.get(annotator=people["fast"]), reviewer=reviewer, note="checked")
    _, cleared, _ = _snapshot(engineer, project)
    assert ids_of("fast") <= cleared and not ids_of("always_a") & cleared
