"""The review queue's project filter: bad values are refused, good or empty ones accepted."""

from __future__ import annotations

import pytest

from annotation.models import Role
from tests.factories import add_member, make_project, make_user, token_client

pytestmark = pytest.mark.django_db

API = "/api/v1"


# 4. Review queue filter ------------------------------------------------------------------------------------


@pytest.fixture
def reviewer_client():
    reviewer = make_user(Role.REVIEWER)
    project = make_project()
    add_member(project, reviewer, Role.REVIEWER)
    return project, token_client(reviewer)


@pytest.mark.parametrize("value", ["abc", "1.5", "-3", "0", str(2**70)])
def test_review_queue_rejects_a_bad_project_filter(reviewer_client, value):
    _, api = reviewer_client
    res = api.get(f"{API}/review/queue", {"project": value})
    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "invalid"
    assert "project" in error["fields"]


@pytest.mark.parametrize("value", [None, "", "own"])
def test_review_queue_accepts_a_good_or_empty_filter(reviewer_client, value):
    project, api = reviewer_client
    params = {} if value is None else {"project": project.pk if value == "own" else value}
    res = api.get(f"{API}/review/queue", params)
    assert res.status_code == 200
    assert res.json() == {"results": []}
