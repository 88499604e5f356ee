"""A lead sets up and runs a project from the browser, in headless Chromium: create and edit a project
(guidelines with the server's Markdown preview), upload a file (preview, dry run, import; a bad file writes
nothing), invite by link and accept, filter the task browser and act in bulk, create a snapshot with its
live count and press "Train reward model". Every step checks the rows in the database."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from annotation.models import (
    Choice,
    ComparisonTask,
    ImportJob,
    Judgment,
    Project,
    ProjectMembership,
    Prompt,
    Role,
    TaskKind,
    TaskStatus,
)
from config.celery import app as celery_app
from tests.e2e.conftest import login
from tests.factories import add_member, make_project, make_task, make_user
from training.models import DatasetSnapshot, JobStatus, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True, scope="module")
def _urls_loaded():
    """Import the URL map (and the training stack behind it) before the first page load, so the first
    request of the live server does not spend the browser's timeout importing torch on a busy machine."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - loading is the point


@pytest.fixture
def eager_celery():
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


def _pairs(n: int) -> str:
    return "".join(
        json.dumps(
            {"prompt": f"Question {i}: what is {i} + {i}?", "chosen": f"{2 * i}", "rejected": f"{2 * i + 1}"}
        )
        + "\n"
        for i in range(n)
    )


def test_set_up_a_project_from_nothing(page, screenshot_dir):
    engineer = make_user(Role.ENGINEER)
    login(page, engineer.username)
    page.click("#new-project")
    page.fill("#id_name", "Helpfulness v1")
    page.fill("#id_guidelines", "## How to judge\n\nPrefer **correct** answers. <script>alert(1)</script>")
    page.click("#preview-button")
    expect(page.locator("#guidelines-preview strong")).to_have_text("correct")
    expect(page.locator("#guidelines-preview")).to_contain_text("<script>alert(1)</script>")  # shown as text
    page.fill("#id_overlap_k", "3")
    page.fill("#id_daily_target", "40")
    page.fill("#id_extra_criteria", "helpful\nharmless")
    page.screenshot(path=str(screenshot_dir / "project-new.png"), full_page=True)
    page.click("#project-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/projects/\d+/import$"))
    project = Project.objects.get(name="Helpfulness v1")
    assert project.overlap_k == 3 and project.daily_target == 40
    assert project.extra_criteria == ["helpful", "harmless"] and "**correct**" in project.guidelines
    assert ProjectMembership.objects.get(project=project, user=engineer).role == Role.ENGINEER

    page.click("nav.lead-tabs >> text=Settings")
    page.fill("#id_guidelines", "Prefer *short* answers.")
    expect(page.locator("#guidelines-preview em")).to_have_text("short")  # live preview while typing
    page.click("#project-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Settings saved.")
    project.refresh_from_db()
    assert project.guidelines == "Prefer *short* answers."


def test_upload_with_preview_dry_run_and_import_and_a_bad_file_writes_nothing(
    page, screenshot_dir, eager_celery, tmp_path
):
    engineer = make_user(Role.ENGINEER)
    project = make_project(name="Import me", members=[(engineer, Role.ENGINEER)])
    good = tmp_path / "pairs.jsonl"
    good.write_text(_pairs(8))
    login(page, engineer.username)
    page.goto(f"/projects/{project.pk}/import")
    page.set_input_files("#id_file", str(good))
    page.check("#id_prior_judgments")
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#detected-shape")).to_contain_text("pairs")
    expect(page.locator("#column-mapping")).to_contain_text("candidate, preferred")
    expect(page.locator("#preview-rows tbody tr")).to_have_count(5)
    expect(page.locator("#preview-rows tbody tr").first.locator("td").nth(1)).to_have_text(
        "Question 0: what is 0 + 0?"
    )
    expect(page.locator("#import-button")).to_be_disabled()  # only after a dry run passed
    page.click("#dry-run-button")
    expect(page.locator("#dry-run-counts")).to_contain_text(
        "8 prompts, 16 candidates, 8 tasks, 8 prior judgments"
    )
    assert Prompt.objects.filter(project=project).count() == 0
    page.screenshot(path=str(screenshot_dir / "import-preview.png"), full_page=True)
    page.click("#import-button")
    expect(page.locator("#import-report")).to_contain_text("8 prompts")
    expect(page.locator("#import-progress")).to_have_class(re.compile("done"))
    assert ComparisonTask.objects.filter(project=project).count() == 8
    assert Judgment.objects.filter(task__project=project, source="prior").count() == 8

    bad = tmp_path / "bad.jsonl"
    bad.write_text(_pairs(6).replace("Question 0", "Other 0") + '{"prompt": "seven", "chosen": "x"}\n')
    page.goto(f"/projects/{project.pk}/import")
    page.set_input_files("#id_file", str(bad))
    page.click("#upload-form button[type=submit]")
    page.click("#dry-run-button")
    expect(page.locator("#import-error")).to_contain_text("line 7: rejected: missing required field")
    expect(page.locator("#import-error")).to_contain_text("Nothing was written")
    expect(page.locator("#import-button")).to_be_disabled()
    assert ImportJob.objects.filter(project=project).latest("pk").status == "failed"
    assert Prompt.objects.filter(project=project).count() == 8  # unchanged


def test_invite_by_link_and_accept_as_a_new_user(page, browser, live_server, screenshot_dir):
    engineer = make_user(Role.ENGINEER)
    project = make_project(name="Invited", members=[(engineer, Role.ENGINEER)])
    make_task(project)
    login(page, engineer.username)
    page.goto(f"/projects/{project.pk}/members")
    page.select_option("#invite-role", "annotator")
    page.fill("#invite-days", "3")
    page.click("#invite-form button[type=submit]")
    link = page.locator("#invite-link").input_value()
    assert "/invite/inv_" in link
    page.screenshot(path=str(screenshot_dir / "members.png"), full_page=True)

    guest = browser.new_context(base_url=live_server.url)
    newcomer = guest.new_page()
    newcomer.goto(link)
    expect(newcomer.locator("h1")).to_contain_text("Join Invited")
    newcomer.fill("#id_username", "new-annotator")
    newcomer.fill("#id_password", "a-long-password-1")
    newcomer.fill("#id_password2", "a-long-password-1")
    newcomer.click("#signup button[type=submit]")
    expect(newcomer.locator("table.list")).to_contain_text("Invited")
    newcomer.click("text=Annotate")
    expect(newcomer).to_have_url(re.compile(rf"/projects/{project.pk}/annotate$"))
    membership = ProjectMembership.objects.get(project=project, user__username="new-annotator")
    assert membership.role == Role.ANNOTATOR
    # The link was single use.
    newcomer.goto(link)
    expect(newcomer.locator("#invite-error")).to_contain_text("already been used")
    guest.close()

    # The lead sees the new member and changes the role.
    page.goto(f"/projects/{project.pk}/members")
    row = page.locator('tr[data-username="new-annotator"]')
    row.locator("select[name=role]").select_option("reviewer")
    row.locator("button:has-text('Change')").click()
    expect(page.locator(".messages")).to_contain_text("new-annotator is now reviewer")
    membership.refresh_from_db()
    assert membership.role == Role.REVIEWER


def test_task_browser_filters_and_a_bulk_action(page, screenshot_dir):
    engineer = make_user(Role.ENGINEER)
    annotators = [make_user(Role.ANNOTATOR) for _ in range(2)]
    project = make_project(name="Browse", members=[(engineer, Role.ENGINEER)], overlap_k=2)
    for person in annotators:
        add_member(project, person)
    tasks = [make_task(project, a=f"alpha answer {i}", b=f"beta answer {i}") for i in range(8)]
    split = tasks[2]
    Judgment.objects.create(task=split, annotator=annotators[0], choice=Choice.A)
    Judgment.objects.create(task=split, annotator=annotators[1], choice=Choice.B)
    ComparisonTask.objects.filter(pk=split.pk).update(status=TaskStatus.NEEDS_REVIEW, judgment_count=2)
    needle = make_task(project, a="the needle in the hay", b="just hay")

    login(page, engineer.username)
    page.goto(f"/projects/{project.pk}/tasks")
    expect(page.locator("#task-table tbody tr")).to_have_count(9)
    page.fill("#id_q", "needle")
    page.click("#task-filters button[type=submit]")
    expect(page.locator("#task-table tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-task="{needle.pk}"]')).to_be_visible()
    page.goto(f"/projects/{project.pk}/tasks")
    page.check("#id_disagreement")
    page.click("#task-filters button[type=submit]")
    expect(page.locator("#task-table tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-task="{split.pk}"]')).to_contain_text(f"{annotators[1].username}: B")

    page.goto(f"/projects/{project.pk}/tasks?status=open")
    expect(page.locator("#task-table tbody tr")).to_have_count(8)
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("8 selected")
    page.select_option("#bulk-action", "gold")
    page.select_option("#gold-choice", "A")
    page.screenshot(path=str(screenshot_dir / "tasks.png"), full_page=True)
    page.click("#bulk-apply")
    expect(page.locator(".messages")).to_contain_text("8 task(s) marked gold with answer A")
    assert ComparisonTask.objects.filter(project=project, kind=TaskKind.GOLD, gold_choice="A").count() == 8
    assert ComparisonTask.objects.get(pk=split.pk).kind == TaskKind.STANDARD
    page.goto(f"/projects/{project.pk}/tasks?gold=yes")
    expect(page.locator("#task-table tbody tr")).to_have_count(8)


def test_create_snapshot_with_live_count_then_train(page, screenshot_dir):
    engineer = make_user(Role.ENGINEER)
    annotator = make_user(Role.ANNOTATOR)
    project = make_project(name="Ship it", members=[(engineer, Role.ENGINEER), (annotator, Role.ANNOTATOR)])
    for choice in (Choice.A, Choice.B, Choice.A):
        Judgment.objects.create(task=make_task(project), annotator=annotator, choice=choice)
    login(page, engineer.username)
    page.goto("/snapshots/")
    page.click("#create-snapshot summary")
    page.fill("#id_name", "ship-it-v1")
    page.check(f'#snapshot-form input[name=projects][value="{project.pk}"]')
    expect(page.locator("#snapshot-count")).to_have_text("3 judgments will go in")
    page.fill("#id_date_from", "2999-01-01")
    expect(page.locator("#snapshot-count")).to_have_text("0 judgments will go in")
    page.fill("#id_date_from", "")
    expect(page.locator("#snapshot-count")).to_have_text("3 judgments will go in")
    page.screenshot(path=str(screenshot_dir / "snapshot-create.png"), full_page=True)
    page.click("#snapshot-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("ship-it-v1 v1")
    snapshot = DatasetSnapshot.objects.get(name="ship-it-v1")
    assert snapshot.spec["projects"] == [project.pk]
    assert snapshot.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED)

    # Built by a worker in production; here the row is marked ready so the Train form shows.
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.SUCCEEDED, artifact_dir="/nonexistent"
    )
    page.reload()
    page.click("#train-button")
    expect(page).to_have_url(re.compile(r"/runs/\d+/?$"))
    run = TrainingRun.objects.get(snapshot=snapshot)
    assert run.status == JobStatus.QUEUED and run.base_model == "minilm"
