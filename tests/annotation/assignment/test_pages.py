"""Annotate / review / dashboard pages through Django's test client (forms work without JavaScript)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Judgment, Role, TaskLease, TaskSkip, TaskStatus
from annotation.ui.markdown import prompt_turns, render_markdown
from tests.factories import add_member, make_project, make_task, make_user

pytestmark = pytest.mark.django_db


def test_markdown_shows_html_as_text():
    html = render_markdown(
        "**hi** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))"
    )
    assert "<strong>hi</strong>" in html
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html
    code = render_markdown("```python\nif a < b:\n    pass\n```")
    assert "<pre>" in code and "<code>" in code and '<span class="o">&lt;</span>' in code
    assert '<span class="k">if</span>' in code  # highlighted server-side (Pygments)


def test_prompt_turns_from_hh_text():
    turns = prompt_turns("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: why?", None)
    assert [t["role"] for t in turns] == ["human", "assistant", "human"]


def test_annotate_page_hides_model_names_and_escapes(client, project, annotator):
    task = make_task(
        project, a="<b>bold?</b> A text", b="B text", model_a="gpt-secret", model_b="llama-secret"
    )
    client.force_login(annotator)
    page = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert "A text" in page and "B text" in page
    assert "gpt-secret" not in page and "llama-secret" not in page
    assert "<b>bold?</b>" not in page and "&lt;b&gt;bold?&lt;/b&gt;" in page
    url = reverse("annotation:annotate-submit", args=[project.pk, task.pk])
    res = client.post(url, {"choice": "A", "strength": "2", "idempotency_key": "k1", "time_spent_ms": "900"})
    assert res.status_code == 302
    judgment = Judgment.objects.get(task=task, annotator=annotator)
    assert (judgment.choice, judgment.strength, judgment.time_spent_ms) == ("A", 2, 900)


def test_form_errors_rerender_same_task(client, project, annotator):
    task = make_task(project)
    client.force_login(annotator)
    url = reverse("annotation:annotate-submit", args=[project.pk, task.pk])
    res = client.post(url, {"choice": "A", "idempotency_key": "k2"})
    assert res.status_code == 400 and "how much better" in res.content.decode()
    assert not Judgment.objects.exists()


def test_skip_and_undo_pages(client, project, annotator):
    t1, t2 = make_task(project), make_task(project)
    client.force_login(annotator)
    client.get(reverse("annotation:annotate", args=[project.pk]))
    client.post(reverse("annotation:annotate-skip", args=[project.pk, t1.pk]), {"reason": "broken"})
    assert TaskSkip.objects.filter(task=t1, reason="broken").exists()
    client.post(
        reverse("annotation:annotate-submit", args=[project.pk, t2.pk]),
        {"choice": "tie", "idempotency_key": "k3"},
    )
    assert Judgment.objects.filter(task=t2).exists()
    client.post(reverse("annotation:annotate-undo", args=[project.pk]))
    assert not Judgment.objects.filter(task=t2).exists()
    page = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert f"/tasks/{t2.pk}/submit" in page


def test_review_page_requires_reviewer_and_adjudicates(client, project, annotator):
    task = make_task(project)
    from annotation.services.judgments import judgment_submit

    judgment_submit(task=task, annotator=annotator, choice="A", strength=1, rationale="A is shorter")
    judgment_submit(task=task, annotator=make_user(), choice="B", strength=1, rationale="B is right")
    client.force_login(annotator)
    assert client.get(reverse("annotation:review", args=[project.pk])).status_code == 403
    reviewer = make_user(Role.REVIEWER)
    add_member(project, reviewer, Role.REVIEWER)
    client.force_login(reviewer)
    page = client.get(reverse("annotation:review", args=[project.pk])).content.decode()
    assert "A is shorter" in page and "B is right" in page
    client.post(reverse("annotation:review-adjudicate", args=[project.pk, task.pk]), {"choice": "B"})
    task.refresh_from_db()
    assert task.status == TaskStatus.ADJUDICATED


def test_dashboard_page(client, annotator):
    project = make_project()
    add_member(project, annotator)
    client.force_login(annotator)
    page = client.get(reverse("annotation:dashboard")).content.decode()
    assert "agreement with consensus" in page and project.name in page


def test_prefetch_leases_the_task_after_the_held_ones(client, project, annotator):
    t1, t2 = make_task(project, a="<b>first</b> A"), make_task(project)
    client.force_login(annotator)
    page = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert f"/tasks/{t1.pk}/submit" in page
    url = reverse("annotation:annotate-next", args=[project.pk])
    # Without exclude the lease held for the page comes back (resume); with it, the next task does.
    assert client.post(url).json()["task"]["id"] == t1.pk
    body = client.post(url, {"exclude": f"{t1.pk}"}).json()
    assert body["task"]["id"] == t2.pk
    assert f'data-task="{t2.pk}"' in body["task"]["html"]
    assert set(TaskLease.objects.filter(annotator=annotator).values_list("task_id", flat=True)) == {
        t1.pk,
        t2.pk,
    }
    assert client.post(url, {"exclude": f"{t1.pk},{t2.pk}"}).json()["task"] is None
    # A named task only with a live lease on it (the pair undo gives back).
    again = client.post(url, {"task": str(t1.pk)}).json()["task"]
    assert again["id"] == t1.pk and "&lt;b&gt;first&lt;/b&gt;" in again["html"]
    TaskLease.objects.filter(task=t1).delete()
    assert client.post(url, {"task": str(t1.pk)}).status_code == 404
    assert client.get(url).status_code == 405


def test_exclude_list_is_capped(client, project, annotator):
    tasks = [make_task(project) for _ in range(3)]
    client.force_login(annotator)
    junk = ",".join(["999999999"] * 60 + [str(t.pk) for t in tasks])  # past the cap: ignored
    body = client.post(reverse("annotation:annotate-next", args=[project.pk]), {"exclude": junk}).json()
    assert body["task"]["id"] == tasks[0].pk
