"""Fixtures for assignment and judgment service tests."""

from __future__ import annotations

import pytest

from annotation.models import Role
from tests.factories import add_member, make_project, make_user


@pytest.fixture
def annotator(db):
    return make_user(Role.ANNOTATOR)


@pytest.fixture
def project(db, annotator):
    project = make_project(overlap_k=2, ask_strength=True)
    add_member(project, annotator)
    return project
