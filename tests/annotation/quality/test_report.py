"""The stored quality report: equal to a fresh computation, equal to the dense reference on random projects,
read (never computed) by pages of large projects with its age, recomputed on a reviewer's request."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import ComparisonTask, Judgment, ProjectQualityReport, Role, TaskKind
from annotation.quality.agreement import NOMINAL_CODES, agreement_summary, ordinal_value
from annotation.selectors.quality import (
    annotator_reliability,
    annotator_table,
    model_leaderboard,
    project_agreement,
)
from annotation.services.quality_report import quality_report_compute, stale_project_ids
from annotation.tasks import quality_compute_stale_reports
from tests.annotation.quality.synthetic import _build_tasks, judge
from tests.factories import add_member, make_project, make_token, make_user

pytestmark = pytest.mark.django_db


def _client(user, **kwargs) -> Client:
    c = Client(**kwargs)
    c.force_login(user)
    return c


@pytest.fixture
def no_inline(settings):
    """Behave as a large project does: pages only read the stored report."""
    settings.PREFLAB_QUALITY_INLINE_MAX_JUDGMENTS = 0


def _random_project(seed: int, n_tasks: int = 40, n_people: int = 6):
    """Tasks in two import batches and none, annotators who judge a random subset with random strengths,
    a few gold tasks and one swapped repeat (left out of agreement)."""
    rng = random.Random(seed)
    project = make_project(quality_settings={"bootstrap_samples": 60})
    tasks, _ = _build_tasks(project, n_tasks - 5, 5, rng, tag=f"r{seed}")
    for k, t in enumerate(tasks):
        if k % 3:
            t.metadata = {"import_batch": 1 + k % 2}
            t.save(update_fields=["metadata"])
    repeat = ComparisonTask.objects.get(pk=tasks[0].pk)
    repeat.pk = None
    repeat.kind, repeat.repeat_of_id, repeat.metadata = TaskKind.REPEAT, tasks[1].pk, {}
    repeat.save()
    people = [make_user(Role.ANNOTATOR, username=f"r{seed}-{k}") for k in range(n_people)]
    for person in people:
        add_member(project, person)
        mine = [t for t in [*tasks, repeat] if rng.random() < 0.6]
        judge(person, mine, lambda t: rng.choice(["A", "B", "tie", "both_bad", "A"]), rng=rng)
    return project


def _dense_reference(project, n_boot: int) -> dict:
    """Today's reference: the (tasks x raters) matrices built from the rows, summarised by the dense API."""
    rows = list(
        Judgment.objects.filter(task__project=project)
        .exclude(task__kind=TaskKind.REPEAT)
        .values_list("task_id", "annotator_id", "choice", "strength")
    )
    tasks = sorted({r[0] for r in rows})
    raters = sorted({r[1] for r in rows})
    nominal = np.full((len(tasks), len(raters)), np.nan)
    ordinal = np.full((len(tasks), len(raters)), np.nan)
    for t, a, c, s in rows:
        nominal[tasks.index(t), raters.index(a)] = NOMINAL_CODES[c]
        ordinal[tasks.index(t), raters.index(a)] = ordinal_value(c, s)
    return agreement_summary(nominal, ordinal, rater_ids=raters, n_boot=n_boot)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sparse_count_rows_equal_the_dense_matrices_on_random_projects(seed):
    project = _random_project(seed)
    fresh = project_agreement(project, n_boot=60)
    reference = _dense_reference(project, n_boot=60)
    for name in ("raw_agreement", "fleiss_kappa", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal"):
        for key in ("value", "low", "high", "n"):
            assert fresh["project"][name][key] == pytest.approx(reference[name][key], abs=1e-9), (name, key)
    assert len(fresh["project"]["cohen_kappa_pairs"]) > 5
    assert _same(fresh["project"]["cohen_kappa_pairs"], reference["cohen_kappa_pairs"])
    assert (
        fresh["n_tasks"]
        == Judgment.objects.filter(task__project=project)
        .exclude(task__kind=TaskKind.REPEAT)
        .values("task_id")
        .distinct()
        .count()
    )
    assert [b["batch"] for b in fresh["batches"]] == [None, 1, 2]


def test_stored_report_equals_a_fresh_computation(synthetic_project):
    project = synthetic_project.project
    report = quality_report_compute(project=project)
    stored = ProjectQualityReport.objects.get(project=project)
    assert stored.pk == report.pk and stored.computed_at is not None
    assert stored.judgment_count == Judgment.objects.filter(task__project=project).count() == 560
    assert stored.last_judgment_id == Judgment.objects.filter(task__project=project).order_by("-id")[0].pk
    payload = stored.payload
    assert _same(payload["agreement"], project_agreement(project))
    assert _same(payload["annotator_table"], annotator_table(project))
    assert payload["reliability"] == {str(k): v for k, v in annotator_reliability(project=project).items()}
    assert _same(payload["leaderboard"], model_leaderboard(project))
    assert _same(
        payload["leaderboard_with_quarantined"], model_leaderboard(project, include_quarantined=True)
    )


def _same(a, b) -> bool:
    """Equal as JSON would store them (floats to 1e-9, tuples as lists, NaN as None)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == {str(k) for k in b} and all(_same(a[str(k)], v) for k, v in b.items())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, float) and not np.isfinite(b):
        return a is None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b


def test_large_project_page_reads_only_and_says_how_fresh(synthetic_project, no_inline):
    sp = synthetic_project
    url = reverse("annotation:quality-project", args=[sp.project.pk])
    c = _client(sp.reviewer)
    first = c.get(url)
    assert first.status_code == 200 and b'id="report-missing"' in first.content
    assert not ProjectQualityReport.objects.filter(project=sp.project, computed_at__isnull=False).exists()
    quality_report_compute(project=sp.project)
    page = c.get(url).content.decode()
    assert '<b id="report-judgments">560</b>' in page and '<b id="report-new-since">0</b>' in page
    assert 'id="agreement-project"' in page, page[page.index("<main") :][:1500]
    assert "0\xa0minutes ago" in page
    # New judgments show as "new since" until the job runs again; the page does not recompute.
    extra = make_user(Role.ANNOTATOR)
    add_member(sp.project, extra)
    judge(extra, sp.tasks[:3], lambda t: "A")
    page = c.get(url).content.decode()
    assert '<b id="report-judgments">560</b>' in page and '<b id="report-new-since">3</b>' in page
    api = _client(sp.reviewer).get(reverse("api-quality-project", args=[sp.project.pk])).json()
    assert api["report"]["judgment_count"] == 560 and api["report"]["new_judgments_since"] == 3
    board = c.get(reverse("annotation:quality-leaderboard", args=[sp.project.pk])).content.decode()
    assert '<b id="report-new-since">3</b>' in board


def test_recompute_button_queues_the_job_for_reviewers_only(
    synthetic_project, no_inline, django_capture_on_commit_callbacks
):
    from config.celery import app

    sp = synthetic_project
    url = reverse("annotation:quality-recompute", args=[sp.project.pk])
    annotator = sp.users["good1"]
    assert _client(annotator).post(url).status_code == 403
    assert _client(sp.reviewer).get(url).status_code == 405
    assert _client(sp.reviewer, enforce_csrf_checks=True).post(url).status_code == 403  # no CSRF token
    assert not ProjectQualityReport.objects.filter(project=sp.project).exists()

    # Queued, not run: the page says a recompute is on its way, and a second press queues nothing.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        resp = _client(sp.reviewer).post(url, {"next": "https://evil.example/"})
    assert resp.status_code == 302 and resp["Location"] == reverse(
        "annotation:quality-project", args=[sp.project.pk]
    )
    assert len(queued) == 1
    report = ProjectQualityReport.objects.get(project=sp.project)
    assert report.requested_by == sp.reviewer and report.computed_at is None
    page = _client(sp.reviewer).get(reverse("annotation:quality-project", args=[sp.project.pk]))
    assert b'id="recompute-pending"' in page.content
    with django_capture_on_commit_callbacks(execute=False) as again:
        _client(sp.reviewer).post(url)
    assert again == []

    # Run by a worker (eagerly here): the report is computed and the request answered.
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        queued[0]()
    finally:
        app.conf.task_always_eager = previous
    report.refresh_from_db()
    assert report.computed_at is not None and report.requested_at is None and report.judgment_count == 560
    assert sp.project.flags.filter(annotator=sp.users["too_fast"]).exists()  # the flag rules ran too


def test_recompute_api_needs_a_reviewer(synthetic_project, no_inline, django_capture_on_commit_callbacks):
    sp = synthetic_project
    url = reverse("api-quality-recompute", args=[sp.project.pk])
    annotator = {"HTTP_AUTHORIZATION": f"Bearer {make_token(sp.users['good1'], ['export'])}"}
    assert Client().post(url, **annotator).status_code == 403
    reviewer = {"HTTP_AUTHORIZATION": f"Bearer {make_token(sp.reviewer, ['export'])}"}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        resp = Client().post(url, **reviewer)
    assert resp.status_code == 202 and resp.json() == {"project": sp.project.pk, "queued": True}
    assert len(queued) == 1


def test_periodic_job_recomputes_only_stale_reports(synthetic_project):
    from config.celery import app

    sp = synthetic_project
    idle = make_project()
    assert stale_project_ids() == [sp.project.pk]  # the idle project has no judgments
    assert quality_compute_stale_reports() == [sp.project.pk]
    assert stale_project_ids() == []
    extra = make_user(Role.ANNOTATOR)
    judge(extra, sp.tasks[:1], lambda t: "B", start=timezone.now())
    assert stale_project_ids() == [sp.project.pk] and idle.pk not in stale_project_ids()
    entry = app.conf.beat_schedule["annotation.quality.compute_stale_reports"]
    assert entry["task"] == quality_compute_stale_reports.name and entry["schedule"] > 0


def test_agreement_on_too_few_tasks_shows_the_count_not_an_interval(no_inline):
    reviewer = make_user(Role.REVIEWER)
    project = make_project(members=[(reviewer, Role.REVIEWER)])
    tasks, _ = _build_tasks(project, 5, 0, random.Random(1), tag="few")
    a, b = make_user(Role.ANNOTATOR), make_user(Role.ANNOTATOR)
    judge(a, tasks, lambda t: "A")
    judge(b, tasks, lambda t: "B")  # total disagreement on 5 tasks: kappa = -1 with a [-1, -1] "interval"
    quality_report_compute(project=project)
    page = _client(reviewer).get(reverse("annotation:quality-project", args=[project.pk])).content.decode()
    row = page[
        page.index('id="agreement-project"') : page.index("</tr>", page.index('id="agreement-project"'))
    ]
    assert '<td class="pairable">5</td>' in row
    assert row.count("5 tasks with 2+ votes, too few") == 4
    assert "-1.000" not in row and "[" not in row
