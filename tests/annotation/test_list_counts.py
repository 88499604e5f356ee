"""Counts on list pages are bounded: past the cap the home page says "N+" instead of counting everything."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Role
from annotation.selectors import projects as project_selectors
from tests.factories import make_project, make_tasks, make_user

pytestmark = pytest.mark.django_db


def test_home_page_task_counts_stop_at_the_cap(monkeypatch):
    user = make_user(Role.ANNOTATOR)
    project = make_project(members=[(user, Role.ANNOTATOR)])
    make_tasks(project, 3)
    c = Client()
    c.force_login(user)
    assert "<td>3</td><td>3</td>" in c.get("/").content.decode()
    monkeypatch.setattr(project_selectors, "TASK_COUNT_CAP", 2)
    assert "<td>2+</td><td>2+</td>" in c.get("/").content.decode()


def test_annotator_filter_select_escapes_and_keeps_the_choice():
    from annotation.ui.setup_forms import TaskFilterForm

    form = TaskFilterForm(
        {"annotator": "2"}, annotators=[{"pk": 1, "username": "<b>x"}, {"pk": 2, "username": "bo"}]
    )
    assert form.is_valid() and form.cleaned_data["annotator"] == 2
    html = str(form["annotator"])
    assert (
        '<option value="1">&lt;b&gt;x</option>' in html and '<option value="2" selected>bo</option>' in html
    )
