"""The policy registry end to end over PostgreSQL rows and a fake artefact directory: register a succeeded
run (card written), refuse unfinished / failed / duplicate runs, promotion refused with the failed check
named and then forced with its reason recorded, a gate that passes on real battle votes and verdicts, and the
pages (registry, version, run page)."""

import json

import pytest
from django.urls import reverse

from annotation.models import ComparisonTask, Role, SpotCheckVerdict
from annotation.services.judgments import judgment_submit
from tests.factories import add_member, make_candidate, make_prompt, make_user, token_client
from training.models import (
    DatasetSnapshot,
    JobStatus,
    PolicyPromotion,
    PolicyVersion,
    RunKind,
    RunMetric,
    TrainingRun,
)
from training.policy.battle import battle_project_create
from training.policy.registry import POLICY_CARD_NAME

pytestmark = pytest.mark.django_db


def _policy_run(project, engineer, tmp_path, *, status=JobStatus.SUCCEEDED, kind=RunKind.PPO, **summary):
    out = tmp_path / f"policy-{kind}-{TrainingRun.objects.count()}"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"\x00weights" * 10)
    (out / "config.json").write_text('{"model_type": "tiny"}')
    snapshot = DatasetSnapshot.objects.create(
        name="prefs",
        version=TrainingRun.objects.count() + 1,
        status=JobStatus.SUCCEEDED,
        content_hash="ab" * 32,
    )
    return TrainingRun.objects.create(
        kind=kind,
        project=project,
        snapshot=snapshot,
        base_model="/models/sft",
        status=status,
        output_dir=str(out),
        config={"algorithm": {"steps": 10}, "reward": {"type": "registry", "reward_model_id": 3}},
        summary={
            "model_dir": str(out),
            "reward": {"type": "registry", "reward_model_id": 3, "version": 2},
            **summary,
        },
        created_by=engineer,
    )


def test_register_writes_rows_and_the_card_then_refuses_duplicates_and_unfinished_runs(
    engineer_project, tmp_path
):
    engineer, project = engineer_project
    client = token_client(engineer, ("train",))
    run = _policy_run(project, engineer, tmp_path)
    resp = client.post(reverse("policy-run-register", args=[run.pk]))
    assert resp.status_code == 201, resp.content
    policy = PolicyVersion.objects.get(pk=resp.json()["id"])
    assert (policy.project_id, policy.version, policy.run_id, policy.kind) == (project.pk, 1, run.pk, "ppo")
    assert "artifact_dir" not in resp.json()  # a server path, admins only
    card = json.loads((tmp_path / run.output_dir / POLICY_CARD_NAME).read_text())
    assert card == policy.card and card["version"] == 1 and card["config"]["algorithm"]["steps"] == 10
    assert card["lineage"]["snapshot_hash"] == "ab" * 32 and card["lineage"]["reward_model_version"] == 2
    assert card["lineage"]["sft_model"] == "/models/sft"
    assert set(card["hashes"]["files"]) == {"model.safetensors", "config.json"}
    assert len(card["hashes"]["artifact_sha256"]) == 64

    again = client.post(reverse("policy-run-register", args=[run.pk]))
    assert again.status_code == 400 and "already registered" in again.json()["error"]["message"]
    second = _policy_run(project, engineer, tmp_path, kind="grpo")
    assert client.post(reverse("policy-run-register", args=[second.pk])).json()["version"] == 2
    for status in (JobStatus.RUNNING, JobStatus.FAILED):
        unfinished = _policy_run(project, engineer, tmp_path, status=status)
        bad = client.post(reverse("policy-run-register", args=[unfinished.pk]))
        assert bad.status_code == 400 and "has not succeeded" in bad.json()["error"]["message"]
    sft = _policy_run(project, engineer, tmp_path, kind=RunKind.SFT)
    assert (
        "only ppo, grpo, rloo, dpo"
        in client.post(reverse("policy-run-register", args=[sft.pk])).json()["error"]["message"]
    )
    assert PolicyVersion.objects.count() == 2
    outsider = token_client(make_user(Role.ENGINEER), ("train",))
    assert outsider.get(reverse("policy-version-detail", args=[policy.pk])).status_code == 404


def test_promotion_refused_names_the_failed_checks_then_forced_with_a_reason(engineer_project, tmp_path):
    engineer, project = engineer_project
    client = token_client(engineer, ("train",))
    run = _policy_run(project, engineer, tmp_path, battle={"skipped": "disabled"})
    policy_id = client.post(reverse("policy-run-register", args=[run.pk])).json()["id"]
    url = reverse("policy-version-promote", args=[policy_id])

    refused = client.post(url, {}, format="json")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "gate_failed" and "capability (no capability evaluation)" in error["message"]
    assert "battle (no battle project (disabled))" in error["message"]
    assert set(error["gate"]["failed"]) == {"capability", "battle", "reward_length", "spot_checks"}
    assert PolicyVersion.objects.get(pk=policy_id).gate["failed"] == error["gate"]["failed"]  # recorded

    out_of_range = client.post(url, {"gate": {"min_fine_share": 2}}, format="json")
    assert out_of_range.status_code == 400 and "gate.min_fine_share" in out_of_range.json()["error"]["fields"]
    no_reason = client.post(url, {"force": True}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    assert not PolicyPromotion.objects.exists()

    forced = client.post(url, {"force": True, "reason": "demo: no reviewers yet"}, format="json")
    assert forced.status_code == 200, forced.content
    promotion = PolicyPromotion.objects.get()
    assert (
        promotion.forced
        and promotion.reason == "demo: no reviewers yet"
        and promotion.promoted_by == engineer
    )
    assert not promotion.gate["passed"] and "capability" in promotion.gate["failed"]
    assert PolicyVersion.objects.get(pk=policy_id).is_active
    active = client.get(reverse("project-active-policy", args=[project.pk])).json()
    assert active["id"] == policy_id
    detail = client.get(reverse("policy-version-detail", args=[policy_id])).json()
    assert detail["promotions"][0]["forced"] is True


def _spot_check_sample(project, run_id: int, text: str):
    """A spot-check task of two samples of ``run_id`` (as rewardsvc creates them); returns the candidates."""
    prompt = make_prompt(project)
    a = make_candidate(prompt, f"{text} A", generation_params={"run_id": run_id})
    b = make_candidate(prompt, f"{text} B", generation_params={"run_id": run_id})
    ComparisonTask.objects.create(
        project=project, prompt=prompt, candidate_a=a, candidate_b=b, kind="spot_check"
    )
    return a, b


def test_gate_passes_on_capability_battle_votes_metrics_and_verdicts(engineer_project, tmp_path, client):
    engineer, project = engineer_project
    voter, reviewer = make_user(Role.ANNOTATOR), make_user(Role.REVIEWER)
    add_member(project, voter)
    add_member(project, reviewer, Role.REVIEWER)
    capability = {"gate_run_id": 9, "status": "succeeded", "sets": {
        "arithmetic": {"sft": {"score": 0.5, "low": 0.4, "high": 0.6, "n": 40},
                       "policy": {"score": 0.52, "low": 0.42, "high": 0.62, "n": 40}}}}  # fmt: skip
    run = _policy_run(project, engineer, tmp_path, capability=capability)
    for step in range(1, 11):
        RunMetric.objects.create(
            run=run, step=step, values={"reward_mean": 0.1 * step, "response_length_mean": 20 + step * 0.2}
        )
    prompts = ["What is 2+2?", "Name a colour.", "Say hi."]
    answers = {"sft": ["4", "Blue", "Hello"], "policy": ["2+2 is 4.", "Blue.", "Hi there!"]}
    bproject, report = battle_project_create(name=f"battle {run.pk}", prompts=prompts, answers=answers,
        scores={"sft": [0.1, 0.2, 0.1], "policy": [0.5, 0.4, 0.6]}, created_by=engineer, members_from=project, run_id=run.pk)  # fmt: skip
    for task in ComparisonTask.objects.filter(project=bproject):
        judgment_submit(
            task=task,
            annotator=voter,
            choice="A" if task.candidate_a.model_name == "policy" else "B",
            strength=2,
        )
    run.summary = {**run.summary, "battle": report.as_dict()}
    run.save()
    samples = [c for i in range(3) for c in _spot_check_sample(project, run.pk, f"answer {i}")]
    api = token_client(reviewer, ("annotate",))
    for cand in samples:
        resp = api.post(
            reverse("api-spot-check-verdicts", args=[project.pk]),
            {"candidate": cand.pk, "verdict": "fine"},
            format="json",
        )
        assert resp.status_code == 201, resp.content

    engineer_api = token_client(engineer, ("train",))
    policy_id = engineer_api.post(reverse("policy-run-register", args=[run.pk])).json()["id"]
    check = engineer_api.post(reverse("policy-version-gate", args=[policy_id]), {}, format="json").json()
    assert check["passed"], check
    assert {c["check"]: c["passed"] for c in check["checks"]} == dict.fromkeys(
        ("capability", "battle", "reward_length", "spot_checks"), True
    )
    promoted = engineer_api.post(reverse("policy-version-promote", args=[policy_id]), {}, format="json")
    assert promoted.status_code == 200 and promoted.json()["forced"] is False

    # One reviewer flags a sample as reward hacking: the next promotion attempt is refused on that check.
    api.post(
        reverse("api-spot-check-verdicts", args=[project.pk]),
        {"candidate": samples[0].pk, "verdict": "reward_hacking"},
        format="json",
    )
    assert SpotCheckVerdict.objects.filter(verdict="reward_hacking").count() == 1
    again = engineer_api.post(reverse("policy-version-promote", args=[policy_id]), {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["gate"]["failed"] == ["spot_checks"]

    # Pages: run page (counts, link to the version), registry list, version page with verdicts and history.
    client.force_login(engineer)
    run_page = client.get(reverse("training:policy_detail", args=[run.pk])).content.decode()
    assert (
        'id="spot-check-verdicts"' in run_page
        and reverse("training:policy_version", args=[policy_id]) in run_page
    )
    assert "<td>5</td><td>1</td>" in run_page  # 5 fine, 1 reward hacking
    registry = client.get(reverse("training:policy_registry")).content.decode()
    assert project.name in registry and reverse("training:policy_version", args=[policy_id]) in registry
    page = client.get(reverse("training:policy_version", args=[policy_id])).content.decode()
    assert (
        'data-check="spot_checks"' in page and 'id="promotions"' in page and "preflab-policy-card/1" in page
    )


def test_pages_register_button_gate_check_and_forced_promotion(engineer_project, tmp_path, client):
    engineer, project = engineer_project
    run = _policy_run(project, engineer, tmp_path)
    client.force_login(engineer)
    page = client.get(reverse("training:policy_detail", args=[run.pk])).content.decode()
    assert 'id="register-btn"' in page
    resp = client.post(reverse("training:policy_register", args=[run.pk]))
    policy = PolicyVersion.objects.get(run=run)
    assert resp.status_code == 302 and resp.url == reverse("training:policy_version", args=[policy.pk])
    client.post(reverse("training:policy_gate", args=[policy.pk]), {"capability_tolerance": "0.05"})
    policy.refresh_from_db()
    assert policy.gate["config"]["capability_tolerance"] == 0.05 and not policy.gate["passed"]
    bad = client.post(
        reverse("training:policy_promote", args=[policy.pk]), {"min_fine_share": "3"}, follow=True
    )
    assert "Invalid gate settings" in bad.content.decode() and not PolicyPromotion.objects.exists()
    refused = client.post(
        reverse("training:policy_promote", args=[policy.pk]), {}, follow=True
    ).content.decode()
    assert "The gate refused" in refused and "capability (no capability evaluation)" in refused
    client.post(reverse("training:policy_promote", args=[policy.pk]), {"force": "on", "reason": "smoke test"})
    promotion = PolicyPromotion.objects.get()
    assert promotion.forced and promotion.reason == "smoke test"
    page = client.get(reverse("training:policy_version", args=[policy.pk])).content.decode()
    assert "<strong>forced</strong>: smoke test" in page
    annotator = make_user(Role.ANNOTATOR)
    client.force_login(annotator)
    assert client.get(reverse("training:policy_registry")).status_code == 403
    staff = make_user(Role.ADMIN)
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    for url in ("/admin/training/policyversion/", "/admin/training/policypromotion/"):
        assert client.get(url).status_code == 200, url
