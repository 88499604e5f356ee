"""A membership role of reviewer makes a user a reviewer of that project (the higher of the global and the
membership role), through the API and the pages, and of no other project."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Adjudication, Role, TaskStatus
from annotation.services.judgments import judgment_submit
from tests.factories import add_member, make_project, make_task, make_token, make_user

pytestmark = pytest.mark.django_db


def _disputed(project):
    task = make_task(project)
    for choice in ("A", "B"):
        voter = make_user(Role.ANNOTATOR)
        add_member(project, voter)
        judgment_submit(task=task, annotator=voter, choice=choice)
    task.refresh_from_db()
    assert task.status == TaskStatus.NEEDS_REVIEW
    return task


def test_a_project_reviewer_membership_reviews_that_project_only(client):
    mine = make_project(overlap_k=2, ask_strength=False)
    other = make_project(overlap_k=2, ask_strength=False)
    user = make_user(Role.ANNOTATOR)  # globally an annotator
    add_member(mine, user, Role.REVIEWER)
    add_member(other, user, Role.ANNOTATOR)
    disputed, elsewhere = _disputed(mine), _disputed(other)

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, ['annotate'])}")
    queue = api.get("/api/v1/review/queue")
    assert queue.status_code == 200
    assert [t["id"] for t in queue.json()["results"]] == [disputed.pk]  # not the other project's task
    assert (
        api.post(f"/api/v1/tasks/{elsewhere.pk}/adjudicate", {"choice": "A"}, format="json").status_code
        == 403
    )
    done = api.post(f"/api/v1/tasks/{disputed.pk}/adjudicate", {"choice": "B"}, format="json")
    assert done.status_code == 201
    assert Adjudication.objects.get(task=disputed).choice == "B"
    assert not Adjudication.objects.filter(task=elsewhere).exists()

    client.force_login(user)
    assert client.get(f"/projects/{mine.pk}/review").status_code == 200
    assert client.get(f"/projects/{other.pk}/review").status_code == 403
    for page in ("/me/dashboard", "/"):  # the review link appears for that project only
        html = client.get(page).content.decode()
        assert f"/projects/{mine.pk}/review" in html and f"/projects/{other.pk}/review" not in html, page


def test_without_any_reviewer_role_the_review_routes_are_403_before_lookup():
    user = make_user(Role.ANNOTATOR)
    add_member(make_project(), user, Role.ANNOTATOR)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, ['annotate'])}")
    assert api.get("/api/v1/review/queue").status_code == 403
    assert api.post("/api/v1/tasks/999999/adjudicate", {"choice": "A"}, format="json").status_code == 403
