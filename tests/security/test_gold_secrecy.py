"""Gold secrecy: where a project gives no gold feedback, the dashboard (API and page) reports no gold
numbers, which would say which tasks were gold and whether the answer was right."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Choice, Judgment, Role, TaskKind, TokenScope
from tests.factories import make_project, make_task, make_token, make_user


@pytest.mark.parametrize("feedback", [False, True])
def test_dashboard_reports_gold_only_where_the_project_gives_gold_feedback(client, db, feedback):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project(gold_feedback=feedback, members=[(annotator, Role.ANNOTATOR)])
    for choice in (Choice.A, Choice.B, Choice.A):  # gold answer A: two right, one wrong
        task = make_task(project, kind=TaskKind.GOLD, gold_choice=Choice.A)
        Judgment.objects.create(task=task, annotator=annotator, choice=choice)
    Judgment.objects.create(task=make_task(project), annotator=annotator, choice=Choice.B)

    api = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(annotator, [TokenScope.ANNOTATE])}")
    stats = api.get("/api/v1/me/dashboard").json()
    assert stats["counts"]["total"] == 4
    client.force_login(annotator)
    page = client.get(reverse("annotation:dashboard")).content.decode()
    if feedback:
        assert stats["gold"] == {"answered": 3, "correct": 2, "accuracy": 0.6667}
        assert "(2 of 3 check items)" in page
    else:
        assert stats["gold"] == {"answered": 0, "correct": 0, "accuracy": None}
        assert "(0 of 0 check items)" in page and "2 of 3" not in page
