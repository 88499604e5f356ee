"""The annotator and reviewer pages in headless Chromium: keys only, mouse only, skip, undo, gold feedback,
adjudication, HTML in model output shown as text, and no console errors on any page (see conftest)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Judgment, Role, TaskKind, TaskSkip, TaskStatus
from annotation.services.judgments import judgment_submit
from tests.e2e.conftest import login
from tests.factories import add_member, make_project, make_prompt, make_task, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUIDELINES = "## How to judge\n\n- Prefer **correct** answers.\n- Then the more *helpful* one."
ANSWER_A = "Use a list comprehension:\n\n```python\nsquares = [x * x for x in range(10)]\n```\n\nIt is short and fast."
ANSWER_B = "Use a for loop:\n\n```python\nsquares = []\nfor x in range(10):\n    squares.append(x * x)\n```"


def _project(annotator, **fields):
    fields.setdefault("guidelines", GUIDELINES)
    project = make_project(**fields)
    add_member(project, annotator)
    return project


def _chat_task(project, **fields):
    prompt = make_prompt(
        project,
        "How do I build a list of squares in Python?",
        messages=[
            {"role": "user", "content": "I am learning Python."},
            {"role": "assistant", "content": "Great! What would you like to know?"},
            {"role": "user", "content": "How do I build a list of **squares**?"},
        ],
    )
    return make_task(project, prompt=prompt, a=ANSWER_A, b=ANSWER_B, **fields)


def test_login_and_rank_with_keys_only(page, screenshot_dir):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator)
    task = _chat_task(project, model_a="secret-model-one", model_b="secret-model-two")
    make_task(project)
    login(page, annotator.username, keyboard=True)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#cand-a")).to_contain_text("list comprehension")
    expect(page.locator("#prompt")).to_contain_text("I am learning Python.")
    expect(page.locator("#prompt strong")).to_have_text("squares")  # Markdown rendered in turns
    assert "secret-model" not in page.content()
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "shortcuts.png"))
    page.keyboard.press("Escape")
    page.keyboard.press("d")  # word diff on
    expect(page.locator("#cand-b .diff mark.ins").first).to_be_visible()
    page.keyboard.press("d")
    page.keyboard.press("1")
    page.keyboard.press("w")
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    expect(page.locator("#done-today")).to_have_text("1")  # counted once the server stored it
    judgment = Judgment.objects.get(task=task, annotator=annotator)
    assert (judgment.choice, judgment.strength) == ("A", 2)
    assert judgment.time_spent_ms >= 300


def test_rank_with_mouse_and_criteria(page):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator, rationale_required=True, extra_criteria=["helpful", "harmless"])
    task = _chat_task(project)
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    page.click("#guidelines-btn")
    expect(page.locator("#guidelines")).to_contain_text("Prefer correct answers")
    page.get_by_label("B is better").check()
    page.get_by_label("Much better").check()
    page.locator("fieldset.criterion").nth(0).get_by_label("B").check()
    page.click("#submit-btn")  # rationale missing: the browser's required check stops the submit
    expect(page.locator("textarea[name=rationale]:invalid")).to_have_count(1)
    assert not Judgment.objects.filter(task=task).exists()
    page.fill("textarea[name=rationale]", "The loop is easier for a beginner.")
    page.click("#submit-btn")
    expect(page.locator("#done-today")).to_have_text("1")
    judgment = Judgment.objects.get(task=task, annotator=annotator)
    assert (judgment.choice, judgment.strength) == ("B", 3)
    assert judgment.rationale == "The loop is easier for a beginner."
    assert judgment.criteria == {"helpful": "B"}
    expect(page.locator("#queue-empty")).to_be_visible()


def test_skip_with_reason_and_undo(page):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator, undo_grace_seconds=60)
    t1 = _chat_task(project)
    t2 = make_task(project, a="second A", b="second B")
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(t1.pk))
    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    page.keyboard.type("I cannot judge code")
    page.keyboard.press("Enter")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(t2.pk))
    expect(page.locator("#send-status")).to_have_attribute("data-waiting", "0")
    assert TaskSkip.objects.get(task=t1, annotator=annotator).reason == "I cannot judge code"
    page.keyboard.press("3")  # tie: no strength needed
    page.keyboard.press("Enter")
    expect(page.locator("#queue-empty")).to_be_visible()
    expect(page.locator("#done-today")).to_have_text("1")
    assert Judgment.objects.filter(task=t2, annotator=annotator).exists()
    page.keyboard.press("u")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(t2.pk))
    expect(page.locator("input[name=choice][value=tie]")).to_be_checked()  # the tie comes back with the pair
    expect(page.locator("#done-today")).to_have_text("0")
    assert not Judgment.objects.filter(task=t2).exists()


def test_gold_feedback_after_answer(page):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator, gold_rate=1.0, gold_feedback=True)
    gold = make_task(
        project,
        a="Paris is the capital of Germany.",
        b="Berlin is the capital of Germany.",
        kind=TaskKind.GOLD,
        gold_choice="B",
        gold_explanation="Only **B** is factually correct.",
    )
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(gold.pk))
    assert "gold" not in page.locator("main").inner_text().lower()  # unannounced
    page.keyboard.press("1")
    page.keyboard.press("q")
    page.keyboard.press("Enter")
    feedback = page.locator("#gold-feedback")
    expect(feedback).to_contain_text("expected answer is B")
    expect(feedback.locator("strong")).to_have_text("B")
    assert Judgment.objects.get(task=gold).choice == "A"


def test_html_in_model_response_is_text(page):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator)
    hostile = (
        "<script>window.__pwned = 1</script><b>not bold</b>\n\n"
        '<img src=x onerror="window.__pwned = 2">\n\n[click](javascript:window.__pwned=3)'
    )
    make_task(project, a=hostile, b="<style>body{display:none}</style>plain B")
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    body_a = page.locator("#cand-a .md")
    expect(body_a).to_contain_text("<script>window.__pwned = 1</script><b>not bold</b>")
    expect(body_a).to_contain_text('<img src=x onerror="window.__pwned = 2">')
    assert body_a.locator("script, b, img").count() == 0
    assert page.locator("#cand-a a").get_attribute("href") is None
    page.locator("#cand-a a").click()
    assert page.evaluate("window.__pwned") is None
    expect(page.locator("#cand-b .md")).to_contain_text("<style>body{display:none}</style>plain B")
    expect(page.locator("main")).to_be_visible()


def test_reviewer_adjudication(page, screenshot_dir):
    annotator, other = make_user(Role.ANNOTATOR), make_user(Role.ANNOTATOR)
    project = _project(annotator, overlap_k=2)
    add_member(project, other)
    task = _chat_task(project)
    judgment_submit(
        task=task, annotator=annotator, choice="A", strength=2, rationale="Shorter and idiomatic."
    )
    judgment_submit(task=task, annotator=other, choice="B", strength=1, rationale="Clearer for beginners.")
    reviewer = make_user(Role.REVIEWER)
    add_member(project, reviewer, Role.REVIEWER)
    login(page, reviewer.username)
    page.goto(f"/projects/{project.pk}/review")
    expect(page.locator("#judgments")).to_contain_text("Shorter and idiomatic.")
    expect(page.locator("#judgments")).to_contain_text("Clearer for beginners.")
    expect(page.locator("#queue-size")).to_have_text("1")
    page.screenshot(path=str(screenshot_dir / "review.png"), full_page=True)
    page.locator("#adjudication-form").get_by_label("A is better").check()
    page.locator("#adjudication-form").get_by_label("Clearly better").check()
    page.fill("#adjudication-form textarea", "Idiomatic Python wins.")
    page.click("#adjudicate-btn")
    expect(page.locator("#review-empty")).to_be_visible()
    task.refresh_from_db()
    assert task.status == TaskStatus.ADJUDICATED
    assert task.adjudication.choice == "A" and task.adjudication.note == "Idiomatic Python wins."


def test_dashboard_and_narrow_layout(page, screenshot_dir):
    annotator = make_user(Role.ANNOTATOR)
    project = _project(annotator, overlap_k=2, ask_strength=False)
    other = make_user()
    for i in range(3):
        task = make_task(project, a=f"a{i}", b=f"b{i}")
        judgment_submit(task=task, annotator=annotator, choice="A")
        judgment_submit(task=task, annotator=other, choice="A" if i else "B")
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="A")
    judgment_submit(task=gold, annotator=annotator, choice="A")
    login(page, annotator.username)
    page.goto("/me/dashboard")
    expect(page.locator("#stat-total")).to_have_text("4")
    expect(page.locator("#stat-agreement")).to_have_text("67%")
    expect(page.locator("#stat-gold")).to_have_text("100%")
    page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)
    _chat_task(project)
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"/projects/{project.pk}/annotate")
    a_box, b_box = page.locator("#cand-a").bounding_box(), page.locator("#cand-b").bounding_box()
    assert b_box["y"] >= a_box["y"] + a_box["height"]  # stacked on narrow screens
