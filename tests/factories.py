"""Small factories for test data: each builds one thing with sane defaults and returns the model."""

from __future__ import annotations

import itertools
import random

from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from annotation.models import (
    ApiToken,
    Candidate,
    ComparisonTask,
    Project,
    ProjectMembership,
    Prompt,
    Role,
    content_hash,
)

_seq = itertools.count(1)


def make_user(role: str = Role.ANNOTATOR, *, username: str | None = None, password: str = "pw-test-123"):
    username = username or f"{role}-{next(_seq)}"
    user = User.objects.create_user(username=username, password=password, is_superuser=(role == Role.ADMIN))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def make_project(*, name: str | None = None, members: list[tuple[User, str]] | None = None, **fields):
    project = Project.objects.create(name=name or f"project-{next(_seq)}", **fields)
    for user, role in members or []:
        ProjectMembership.objects.create(project=project, user=user, role=role)
    return project


def add_member(project: Project, user: User, role: str = Role.ANNOTATOR) -> ProjectMembership:
    return ProjectMembership.objects.create(project=project, user=user, role=role)


def make_prompt(project: Project, text: str | None = None, **fields) -> Prompt:
    text = text or f"Prompt {next(_seq)}: explain something."
    return Prompt.objects.create(project=project, text=text, content_hash=content_hash(text), **fields)


def make_candidate(
    prompt: Prompt, text: str | None = None, model_name: str = "model-x", **fields
) -> Candidate:
    text = text or f"Response {next(_seq)}"
    return Candidate.objects.create(
        prompt=prompt, text=text, model_name=model_name, content_hash=content_hash(text), **fields
    )


def make_task(
    project: Project,
    *,
    prompt: Prompt | None = None,
    a: str | None = None,
    b: str | None = None,
    model_a: str = "model-a",
    model_b: str = "model-b",
    **fields,
) -> ComparisonTask:
    prompt = prompt or make_prompt(project)
    cand_a = make_candidate(prompt, a, model_name=model_a)
    cand_b = make_candidate(prompt, b, model_name=model_b)
    return ComparisonTask.objects.create(
        project=project, prompt=prompt, candidate_a=cand_a, candidate_b=cand_b, **fields
    )


def make_tasks(project: Project, n: int, seed: int = 0) -> list[ComparisonTask]:
    rng = random.Random(seed)
    return [make_task(project, a=f"answer {rng.random()}", b=f"answer {rng.random()}") for _ in range(n)]


def make_token(user: User, scopes: list[str], name: str = "test") -> str:
    """Create a token and return its raw key (what a client sends)."""
    raw = ApiToken.generate_key()
    ApiToken.objects.create(
        user=user, name=name, key_prefix=raw[:8], key_hash=ApiToken.hash_key(raw), scopes=scopes
    )
    return raw


def token_client(user: User, scopes: tuple[str, ...] | list[str] = ("annotate",)) -> APIClient:
    """An API client that authenticates with a new token of ``user`` carrying ``scopes``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, list(scopes))}")
    return client
