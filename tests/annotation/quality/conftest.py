"""Fixtures of the quality tests: a synthetic project with good annotators and known bad behaviours."""

from __future__ import annotations

import random

import pytest

from annotation.models import Role
from tests.annotation.quality.synthetic import SyntheticProject, _build_tasks, judge, noisy
from tests.factories import add_member, make_project, make_user


@pytest.fixture
def synthetic_project(db) -> SyntheticProject:
    """80 tasks (20 gold), four good annotators (90%), a random clicker, an always-A and a too-fast one."""
    rng = random.Random(7)
    reviewer = make_user(Role.REVIEWER)
    project = make_project(members=[(reviewer, Role.REVIEWER)])
    tasks, truth = _build_tasks(project, 60, 20, rng)
    users = {}
    for name in ("good1", "good2", "good3", "good4", "random", "always_a", "too_fast"):
        users[name] = make_user(Role.ANNOTATOR, username=f"{name}-{project.pk}")
        add_member(project, users[name])
    for name in ("good1", "good2", "good3", "good4"):
        judge(users[name], tasks, noisy(truth, rng, 0.9), rng=rng)
    judge(users["random"], tasks, lambda t: rng.choice(["A", "B", "tie"]), rng=rng)
    judge(users["always_a"], tasks, lambda t: "A", rng=rng)
    judge(users["too_fast"], tasks, noisy(truth, rng, 0.9), time_ms=lambda r: r.randint(300, 900), rng=rng)
    return SyntheticProject(project=project, tasks=tasks, truth=truth, users=users, reviewer=reviewer)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Each synthetic project makes eight users; the default PBKDF2 would dominate the test time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
