"""Fixtures shared by the annotation tests."""

from __future__ import annotations

import pytest

from annotation.models import Role
from tests.factories import make_user


@pytest.fixture
def annotator():
    return make_user(Role.ANNOTATOR)
