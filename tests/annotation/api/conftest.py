"""Fixtures for the core API tests: an API client per user/token and a small project with members."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from annotation.models import Role
from tests.factories import add_member, make_project, make_tasks, make_token, make_user


@pytest.fixture(autouse=True)
def _postgres(require_postgres, db):
    """Every API test runs on the real PostgreSQL database."""


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 costs ~0.5 s per user on the shared 2-core box; these tests are about permissions, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for():
    """``client_for(user)`` logs in by session; ``client_for(token=raw)`` sends a Bearer token."""

    def build(user=None, *, token: str | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        if token is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return build


@dataclass
class World:
    project: object
    other_project: object
    annotator: object
    annotator2: object
    outsider: object
    reviewer: object
    engineer: object
    admin: object
    tasks: list


@pytest.fixture
def world(_fast_passwords) -> World:
    """A project with an annotator, a second annotator, a reviewer and an engineer; another project whose
    only member is the outsider annotator; an admin who is a member of nothing."""
    annotator, annotator2, outsider = make_user(), make_user(), make_user()
    reviewer, engineer, admin = make_user(Role.REVIEWER), make_user(Role.ENGINEER), make_user(Role.ADMIN)
    project = make_project()
    for user, role in [
        (annotator, Role.ANNOTATOR),
        (annotator2, Role.ANNOTATOR),
        (reviewer, Role.REVIEWER),
        (engineer, Role.ENGINEER),
    ]:
        add_member(project, user, role)
    other = make_project()
    add_member(other, outsider, Role.ANNOTATOR)
    make_tasks(other, 2, seed=1)
    return World(
        project, other, annotator, annotator2, outsider, reviewer, engineer, admin, make_tasks(project, 3)
    )


@pytest.fixture
def token_for():
    def build(user, *scopes: str) -> str:
        return make_token(user, list(scopes))

    return build
