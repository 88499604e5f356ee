"""Policy API (token scope ``train``) and web pages: create, list, detail with warnings, samples and the
evaluation gate's verdict (RM opinion next to the humans' leaderboard), OpenRLHF export."""

from pathlib import Path

import pytest
from django.urls import reverse

from annotation.models import ComparisonTask, Role
from annotation.services.judgments import judgment_submit
from tests.factories import add_member, make_project, make_prompt, make_user, token_client
from training.models import JobStatus, RunKind, RunMetric, TrainingRun
from training.policy.battle import battle_project_create
from training.policy.detectors import detect_all

pytestmark = pytest.mark.django_db


def api(user, scopes=("train",)):
    return token_client(user, scopes)


@pytest.fixture
def engineer_project():
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    for i in range(5):
        make_prompt(project, f"Question {i}?")
    return engineer, project


def test_api_create_and_list_policy_runs(engineer_project, settings):
    engineer, project = engineer_project
    client = api(engineer)
    body = {"kind": "ppo", "base_model": "/models/sft", "project_id": project.pk,
            "config": {"algorithm": {"steps": 3}, "reward": {"type": "http", "url": "http://rm:8100"}}}  # fmt: skip
    resp = client.post(reverse("policy-run-list"), body, format="json")
    assert resp.status_code == 202, resp.content
    run = TrainingRun.objects.get(pk=resp.json()["id"])
    assert (
        run.kind == RunKind.PPO and run.status == JobStatus.QUEUED and run.config["algorithm"]["steps"] == 3
    )
    assert run.config["algorithm"]["batch_size"] == 16  # defaults filled in and stored
    assert run.output_dir == str(settings.ARTIFACT_DIR / "policies" / f"run-{run.pk}")
    listed = client.get(reverse("policy-run-list")).json()
    assert [r["id"] for r in listed["results"] if "results" in listed] or [r["id"] for r in listed]

    bad = client.post(
        reverse("policy-run-list"), {**body, "config": {"algorithm": {"stepz": 1}}}, format="json"
    )
    assert bad.status_code == 400 and "stepz" in bad.json()["error"]["message"]
    assert (
        api(engineer, scopes=("annotate",)).post(reverse("policy-run-list"), body, format="json").status_code
        == 403
    )
    outsider = make_user(Role.ENGINEER)
    assert api(outsider).get(reverse("policy-run-detail", args=[run.pk])).status_code == 404
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    assert api(annotator).get(reverse("policy-run-list")).status_code == 403


def test_api_openrlhf_export_writes_prompts_and_command(engineer_project, settings):
    engineer, project = engineer_project
    client = api(engineer)
    run = client.post(
        reverse("policy-run-list"),
        {
            "kind": "ppo",
            "base_model": "/models/sft",
            "project_id": project.pk,
            "config": {"battle": {"held_out": 1}},
        },
        format="json",
    ).json()
    resp = client.post(
        reverse("policy-run-openrlhf", args=[run["id"]]),
        {"reward_server_url": "http://rm:8100", "nodes": 2},
        format="json",
    )
    assert resp.status_code == 200, resp.content
    out = resp.json()
    assert out["prompts"] == 4 and len(Path(out["prompt_data"]).read_text().splitlines()) == 4
    assert (
        "--remote_rm_url" in out["args"]
        and "http://rm:8100/t/${PREFLAB_REWARD_TOKEN}/get_reward" in out["args"]
    )
    assert out["args"][out["args"].index("--actor_num_nodes") + 1] == "2"
    sft = client.post(
        reverse("policy-run-list"),
        {"kind": "sft", "base_model": "/m", "project_id": project.pk,
         "config": {"algorithm": {"source": "demonstrations", "demonstrations_path": out["prompt_data"]}}},
        format="json",
    ).json()  # fmt: skip
    assert client.post(reverse("policy-run-openrlhf", args=[sft["id"]]), {}, format="json").status_code == 400


def _finished_ppo_run(project, engineer, annotator):
    """A finished PPO run as the executor leaves it: metrics, samples, warnings and a battle project."""
    run = TrainingRun.objects.create(kind=RunKind.PPO, project=project, base_model="/m/sft", status=JobStatus.SUCCEEDED,
                                     step=12, total_steps=12, created_by=engineer)  # fmt: skip
    history = []
    for step in range(1, 13):
        values = {"reward_mean": 0.1 * step, "kl": 1.0, "entropy": 3.0, "response_length_mean": 10 + 5 * step,
                  "distinct_2": 0.8, "clip_fraction": 0.1, "approx_kl": 0.01, "value_loss": 0.5}  # fmt: skip
        RunMetric.objects.create(run=run, step=step, values=values)
        history.append({"step": step, **values})
    warnings = [w.as_dict() for w in detect_all(history, target_kl=6.0)]
    prompts = ["What is 2+2?", "Name a colour."]
    answers = {"sft": ["4", "Blue"], "policy": ["Four, because 2+2=4.", "Blue is a colour."]}
    scores = {"sft": [0.1, 0.2], "policy": [0.9, 0.8]}
    bproject, report = battle_project_create(name=f"battle {run.pk}", prompts=prompts, answers=answers,
                                             scores=scores, created_by=engineer, members_from=project,
                                             run_id=run.pk)  # fmt: skip
    for task in ComparisonTask.objects.filter(project=bproject):
        policy_side = "A" if task.candidate_a.model_name == "policy" else "B"
        judgment_submit(task=task, annotator=annotator, choice=policy_side, strength=2)
    run.summary = {
        "latest": history[-1], "warnings": warnings, "battle": report.as_dict(),
        "samples": [{"step": 12, "items": [{"prompt": "What is 2+2?", "response": "<b>Four</b>", "reward": 0.9}]}],
    }  # fmt: skip
    run.save()
    return run, bproject


def test_run_page_shows_warnings_samples_and_battle_verdict(engineer_project, client):
    engineer, project = engineer_project
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    run, bproject = _finished_ppo_run(project, engineer, annotator)
    assert any(w["code"] == "reward_hacking" for w in run.summary["warnings"])
    assert bproject.memberships.filter(user=annotator).exists()
    client.force_login(engineer)
    page = client.get(reverse("training:policy_detail", args=[run.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-code="reward_hacking"' in html and "length_after" in html
    assert "&lt;b&gt;Four&lt;/b&gt;" in html  # responses are escaped
    assert 'id="chart-reward"' in html and 'id="chart-kl"' in html and "<svg" in html
    assert "battle-leaderboard" in html and "policy" in html
    verdict = api(engineer).get(reverse("policy-run-detail", args=[run.pk])).json()["battle_verdict"]
    board = verdict["leaderboard"]["models"]
    assert board[0]["model"] == "policy" and verdict["judged_tasks"] == verdict["tasks"] == 2
    assert verdict["models"]["policy"]["rm_mean"] == pytest.approx(0.85)
    assert verdict["rm_pairwise"]["sft>policy"] == 0.0
    live = client.get(reverse("training:policy_live", args=[run.pk])).json()
    assert live["status"] == "succeeded" and "reward" in live["charts"] and live["warnings"]
    listing = client.get(reverse("training:policy_list")).content.decode()
    assert f'href="{reverse("training:policy_detail", args=[run.pk])}"' in listing


def test_create_page_and_permissions(engineer_project, client):
    engineer, project = engineer_project
    client.force_login(engineer)
    resp = client.post(reverse("training:policy_create"), {
        "kind": "grpo", "base_model": "/m", "project": project.pk, "seed": 1,
        "config": '{"algorithm": {"max_steps": 2}, "reward": {"type": "rule", "name": "vowels"}}',
    })  # fmt: skip
    run = TrainingRun.objects.get(kind=RunKind.GRPO)
    assert resp.status_code == 302 and resp.url == reverse("training:policy_detail", args=[run.pk])
    bad = client.post(reverse("training:policy_create"), {"kind": "ppo", "base_model": "/m", "config": "[1]"})
    assert bad.status_code == 302 and TrainingRun.objects.count() == 1
    annotator = make_user(Role.ANNOTATOR)
    client.force_login(annotator)
    assert client.get(reverse("training:policy_list")).status_code == 403
