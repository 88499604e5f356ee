"""Fixtures for snapshot tests: a small project with judged tasks built through the factories."""

from __future__ import annotations

import pytest

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_prompt, make_task, make_user


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Factories hash a password per user; the default PBKDF2 costs seconds per test on a shared CPU.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def judge(task, annotator, choice: str, strength: int | None = None, **fields) -> Judgment:
    return Judgment.objects.create(task=task, annotator=annotator, choice=choice, strength=strength, **fields)


@pytest.fixture
def engineer(db):
    return make_user(Role.ENGINEER)


@pytest.fixture
def annotators(db):
    return [make_user(Role.ANNOTATOR) for _ in range(3)]


@pytest.fixture
def judged_project(db, engineer, annotators):
    """12 prompts, one task each, three annotators voting (2 "A" + 1 "B" majority on most tasks), with
    strengths; the engineer is a member so the project is visible to them."""
    project = make_project(members=[(engineer, Role.ENGINEER)])
    for user in annotators:
        add_member(project, user)
    tasks = []
    for i in range(12):
        prompt = make_prompt(project, f"Question {i}: how do I do thing {i}?")
        task = make_task(project, prompt=prompt, a=f"Good detailed answer {i}", b=f"Bad {i}")
        tasks.append(task)
        judge(task, annotators[0], "A", 3)
        judge(task, annotators[1], "A", 1)
        judge(task, annotators[2], "B", 2)
    project.test_tasks = tasks
    return project
