"""Spot-check verdicts from the rollout to the count: a policy run's rollouts become spot-check tasks, a
reviewer gives each sample a verdict (keyboard page and API), and the counts per run are what training reads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Candidate, ComparisonTask, Role, SpotCheckVerdict
from annotation.selectors.spot_checks import spot_check_verdict_counts
from rewardsvc.models import ScoredSample
from rewardsvc.receivers import record_policy_rollouts
from rewardsvc.services import scored_samples_to_project
from tests.factories import add_member, make_project, make_task, make_user, token_client
from training.models import JobStatus, RunKind, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def rollout_project():
    """A policy run whose rollouts were sent to a spot-check project (two prompts, 3 + 2 samples)."""
    reviewer = make_user(Role.REVIEWER)
    project = make_project(name="spot checks", members=[(reviewer, Role.REVIEWER)])
    run = TrainingRun.objects.create(kind=RunKind.PPO, base_model="/m", status=JobStatus.SUCCEEDED)
    rows = [
        {"prompt": "Say hi.", "response": "Hi!", "reward": 0.1, "step": 1, "run_id": run.pk},
        {"prompt": "Say hi.", "response": "Hi! " * 30, "reward": 2.0, "step": 5, "run_id": run.pk},
        {"prompt": "Say hi.", "response": "", "reward": 1.5, "step": 5, "run_id": run.pk},
        {"prompt": "2+2?", "response": "4", "reward": 0.2, "step": 1, "run_id": run.pk},
        {
            "prompt": "2+2?",
            "response": "4, of course, as everyone knows.",
            "reward": 0.9,
            "step": 5,
            "run_id": run.pk,
        },
    ]
    record_policy_rollouts(TrainingRun, run=run, rows=rows)
    report = scored_samples_to_project(samples=list(ScoredSample.objects.all()), project=project, seed=0)
    assert report.tasks_created == 3
    return reviewer, project, run


def test_rollout_samples_carry_their_run_and_verdicts_count_per_run(rollout_project):
    reviewer, project, run = rollout_project
    samples = Candidate.objects.filter(prompt__project=project)
    assert samples.count() == 5 and all(c.generation_params["run_id"] == run.pk for c in samples)
    api = token_client(reviewer, ("annotate",))
    url = reverse("api-spot-check-verdicts", args=[project.pk])
    seen = []
    verdicts = ["fine", "reward_hacking", "empty_template", "fine", "length_inflation"]
    after = 0
    for verdict in verdicts:
        nxt = api.get(reverse("api-spot-check-next", args=[project.pk]), {"after": after}).json()
        sample = nxt["sample"]
        assert sample["run_id"] == run.pk and sample["reward"] is not None and nxt["left"] == 5 - len(seen)
        resp = api.post(
            url, {"candidate": sample["candidate"], "verdict": verdict, "note": "checked"}, format="json"
        )
        assert resp.status_code == 201, resp.content
        seen.append(sample["candidate"])
        after = sample["candidate"]
    assert len(set(seen)) == 5
    assert api.get(reverse("api-spot-check-next", args=[project.pk])).json() == {"sample": None, "left": 0}
    counts = spot_check_verdict_counts(run_id=run.pk)
    assert counts == {
        "fine": 2,
        "reward_hacking": 1,
        "length_inflation": 1,
        "empty_template": 1,
        "unsafe": 0,
        "hallucination": 0,
    }
    # Answering again changes the verdict (200), it does not add one.
    again = api.post(url, {"candidate": seen[1], "verdict": "unsafe"}, format="json")
    assert again.status_code == 200 and SpotCheckVerdict.objects.count() == 5
    assert spot_check_verdict_counts(run_id=run.pk)["unsafe"] == 1
    listed = api.get(url, {"run_id": run.pk}).json()["results"]
    assert len(listed) == 5 and {v["reviewer_username"] for v in listed} == {reviewer.username}
    # The policy run's API shows the counts.
    engineer = make_user(Role.ENGINEER)
    detail = token_client(engineer, ("train",)).get(reverse("policy-run-detail", args=[run.pk])).json()
    assert detail["spot_check_verdicts"]["unsafe"] == 1 and detail["policy_version"] is None


def test_verdict_refusals_and_permissions(rollout_project):
    reviewer, project, run = rollout_project
    api = token_client(reviewer, ("annotate",))
    url = reverse("api-spot-check-verdicts", args=[project.pk])
    sample = Candidate.objects.filter(prompt__project=project).first()
    bad = api.post(url, {"candidate": sample.pk, "verdict": "meh"}, format="json")
    assert bad.status_code == 400 and "verdict" in bad.json()["error"]["fields"]
    standard = make_task(project)  # not a spot-check task: its candidates are no samples
    wrong = api.post(url, {"candidate": standard.candidate_a_id, "verdict": "fine"}, format="json")
    assert wrong.status_code == 400 and "candidate" in wrong.json()["error"]["fields"]
    too_long = api.post(url, {"candidate": sample.pk, "verdict": "fine", "note": "x" * 2001}, format="json")
    assert too_long.status_code == 400 and "note" in too_long.json()["error"]["fields"]
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    assert (
        token_client(annotator, ("annotate",))
        .post(url, {"candidate": sample.pk, "verdict": "fine"}, format="json")
        .status_code
        == 403
    )
    outsider = make_user(Role.REVIEWER)
    assert token_client(outsider, ("annotate",)).get(url).status_code == 404
    assert not SpotCheckVerdict.objects.exists()


def test_verdict_page_is_keyboard_driven_and_records_verdicts(rollout_project, client):
    reviewer, project, run = rollout_project
    client.force_login(reviewer)
    url = reverse("annotation:spot-check-verdicts", args=[project.pk])
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="verdict-form"' in html
    assert 'data-key="1"' in html and "Reward hacking" in html and "<kbd>6</kbd> Hallucination" in html
    candidate = page.context["sample"].pk
    resp = client.post(reverse("annotation:spot-check-verdict-submit", args=[project.pk]),
                       {"candidate": candidate, "verdict": "hallucination"})  # fmt: skip
    assert resp.status_code == 302 and resp.url.endswith(f"?after={candidate}")
    verdict = SpotCheckVerdict.objects.get()
    assert (verdict.candidate_id, verdict.verdict, verdict.run_id, verdict.reviewer) == (
        candidate,
        "hallucination",
        run.pk,
        reviewer,
    )
    assert ComparisonTask.objects.filter(pk=verdict.task_id, kind="spot_check").exists()
    nxt = client.get(resp.url)
    assert nxt.context["sample"].pk != candidate and nxt.context["left"] == 4
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    client.force_login(annotator)
    assert client.get(url).status_code == 403
