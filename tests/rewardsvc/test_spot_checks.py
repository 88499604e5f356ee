"""Spot checks: the page scores pasted candidates with the active RM; scored samples become spot-check
comparison tasks in an annotation project."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import ComparisonTask, Role, TaskKind
from rewardsvc.models import ScoredSample
from rewardsvc.scoring import RewardScorer
from rewardsvc.services import scored_samples_record, scored_samples_to_project
from tests.factories import make_candidate, make_project, make_prompt, make_user

pytestmark = pytest.mark.django_db


def test_scored_samples_become_spot_check_tasks(make_rm, tiny_reward_model_dir):
    project = make_project()
    target = make_project(name="spot-checks")
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True)
    rows = [
        {"prompt": "Tell me a joke.", "response": "No.", "reward": -1.0},
        {"prompt": "Tell me a joke.", "response": "Why did the chicken cross the road?", "reward": 2.0},
        {"prompt": "Tell me a joke.", "response": "Knock knock.", "reward": 0.5},
        {"prompt": "Capital of France?", "response": "Paris.", "reward": 1.0},  # single: no comparison
    ]
    assert scored_samples_record(rows=rows, reward_model_id=rm.pk) == 4
    samples = list(ScoredSample.objects.all())
    report = scored_samples_to_project(samples=samples, project=target, seed=0)
    assert (report.tasks_created, report.prompts_used, report.samples_sent, report.skipped_single) == (
        2,
        1,
        3,
        1,
    )
    tasks = list(ComparisonTask.objects.filter(project=target).select_related("candidate_a", "candidate_b"))
    assert len(tasks) == 2 and all(t.kind == TaskKind.SPOT_CHECK for t in tasks)
    pairs = {frozenset((t.candidate_a.text, t.candidate_b.text)) for t in tasks}
    # neighbours in reward order: (-1.0, 0.5) and (0.5, 2.0)
    assert pairs == {
        frozenset({"No.", "Knock knock."}),
        frozenset({"Knock knock.", "Why did the chicken cross the road?"}),
    }
    for t in tasks:
        meta = t.metadata["spot_check"]
        assert meta["reward_model_id"] == rm.pk
        better = "A" if meta["reward_a"] > meta["reward_b"] else "B"
        assert meta["rm_prefers"] == better
    assert ScoredSample.objects.filter(sent_to_project_id=target.pk).count() == 3
    # sending again does not repeat the pairs
    again = scored_samples_to_project(samples=samples, project=target)
    assert again.tasks_created == 0 and ComparisonTask.objects.filter(project=target).count() == 2


def test_spot_check_page_scores_candidates_and_sends_them(client, make_rm, tiny_reward_model_dir):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    target = make_project(name="human-checks", members=[(engineer, Role.ENGINEER)])
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True, mean=0.0, std=1.0)
    client.force_login(engineer)
    url = reverse("rewardsvc:spot_check")
    page = client.get(url)
    assert page.status_code == 200 and f"v{rm.version}" in page.content.decode()
    candidates = ["Paris is the capital.", "I do not know.", "London."]
    resp = client.post(
        url,
        {
            "reward_model": rm.pk,
            "prompt": "What is the capital of France?",
            "candidates": "\n---\n".join(candidates),
        },
    )
    assert resp.status_code == 200
    results = resp.context["results"]
    scorer = RewardScorer.load(rm.artifact_dir)
    expected = {
        c: scorer.forward([scorer.encode("What is the capital of France?", c)])[0] for c in candidates
    }
    assert [r["text"] for r in results] == sorted(candidates, key=expected.get, reverse=True)
    for r in results:
        assert r["reward"] == pytest.approx(expected[r["text"]], abs=1e-5)
    assert ScoredSample.objects.filter(source="spot_check", reward_model=rm).count() == 3
    sent = client.post(
        reverse("rewardsvc:spot_check_send"), {"reward_model": rm.pk, "project": target.pk, "limit": 50}
    )
    assert sent.status_code == 302
    assert ComparisonTask.objects.filter(project=target, kind=TaskKind.SPOT_CHECK).count() == 2


def test_spot_check_page_picks_a_project_prompt_and_needs_a_role(client, make_rm, tiny_reward_model_dir):
    engineer, annotator = make_user(Role.ENGINEER), make_user(Role.ANNOTATOR)
    project = make_project(members=[(engineer, Role.ENGINEER), (annotator, Role.ANNOTATOR)])
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True)
    prompt = make_prompt(project, "Tell me a joke.")
    make_candidate(prompt, "No.")
    make_candidate(prompt, "Knock knock.")
    client.force_login(annotator)
    assert client.get(reverse("rewardsvc:spot_check")).status_code == 403
    client.force_login(engineer)
    resp = client.post(reverse("rewardsvc:spot_check"), {"reward_model": rm.pk, "prompt_id": prompt.pk})
    assert resp.status_code == 200 and {r["text"] for r in resp.context["results"]} == {"No.", "Knock knock."}


def test_spot_check_score_service_ranks_and_records_and_the_form_refuses_bad_candidate_lists(
    client, make_rm, tiny_reward_model_dir
):
    from rewardsvc.services import spot_check_score

    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True, mean=0.0, std=1.0)
    rows = spot_check_score(reward_model=rm, prompt="Hi", candidates=["Hello!", "Go away.", "Hey there"])
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert [r["reward"] for r in rows] == sorted((r["reward"] for r in rows), reverse=True)
    assert all(r["normalized"] == pytest.approx(r["reward"]) for r in rows)  # mean 0, std 1
    assert ScoredSample.objects.filter(source="spot_check", reward_model=rm).count() == 3

    client.force_login(engineer)
    url = reverse("rewardsvc:spot_check")
    too_many = "\n---\n".join(f"answer {i}" for i in range(17))
    page = client.post(url, {"reward_model": rm.pk, "prompt": "Hi", "candidates": too_many})
    assert page.status_code == 200 and "At most 16 candidates." in page.content.decode()
    empty = client.post(url, {"reward_model": rm.pk, "prompt": "Hi", "candidates": "\n---\n"})
    assert "Give at least one candidate" in empty.content.decode()
    assert ScoredSample.objects.filter(source="spot_check", reward_model=rm).count() == 3  # nothing scored
