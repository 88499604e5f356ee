"""`manage.py demo --fast` end to end on the test database: import, simulated annotators, quality flags,
snapshot, MiniLM reward model, promotion, the reward server as a real child process, and PPO over HTTP."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from annotation.models import AnnotatorFlag, ApiToken, FlagStatus, Judgment, JudgmentSource, Project
from training.models import (
    DatasetSnapshot,
    JobStatus,
    PolicyVersion,
    Promotion,
    RewardModel,
    RunKind,
    RunMetric,
    TrainingRun,
)

PAIRS, PPO_STEPS = 60, 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the reward server process reads committed rows
def test_fast_demo_runs_the_whole_loop_and_reports_where_to_look():
    out = io.StringIO()
    call_command("demo", "--fast", "--pairs", str(PAIRS), "--ppo-steps", str(PPO_STEPS), stdout=out)
    report = out.getvalue()

    project = Project.objects.get(name__startswith="Demo loop")
    tasks = project.tasks.count()
    assert 0 < tasks <= PAIRS
    # Every task got its k=2 human judgments from the four simulated annotators.
    judgments = Judgment.objects.filter(task__project=project, source=JudgmentSource.HUMAN)
    assert judgments.count() == tasks * project.overlap_k == tasks * 2
    by_user = set(judgments.values_list("annotator__username", flat=True))
    assert by_user == {"sim-careful", "sim-solid", "sim-hasty", "sim-spammer"}
    # The careless annotator (always "A", under a second) is flagged and so quarantined.
    flagged = set(
        AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN).values_list(
            "annotator__username", flat=True
        )
    )
    assert flagged == {"sim-spammer"}

    snapshot = DatasetSnapshot.objects.get(projects=project)
    assert snapshot.status == JobStatus.SUCCEEDED
    assert re.fullmatch(r"[0-9a-f]{64}", snapshot.content_hash)
    assert snapshot.counts["rows_total"] > 0 and (Path(snapshot.artifact_dir) / "card.json").is_file()

    reward_model = RewardModel.objects.get(project=project)
    assert reward_model.is_active and reward_model.snapshot_id == snapshot.pk
    assert {e.split for e in reward_model.evaluations.all()} >= {"test"}
    promotion = Promotion.objects.get(reward_model=reward_model)
    assert promotion.gate["candidate_id"] == reward_model.pk
    assert promotion.forced == (not promotion.gate["passed"])

    ppo = TrainingRun.objects.get(project=project, kind=RunKind.PPO)
    assert ppo.status == JobStatus.SUCCEEDED, ppo.status_reason
    assert RunMetric.objects.filter(run=ppo).count() == PPO_STEPS
    assert ppo.summary["reward"]["type"] == "http"
    server_url = ppo.summary["reward"]["url"]
    assert server_url.startswith("http://127.0.0.1:")
    assert math.isfinite(ppo.summary["reward_first"]) and math.isfinite(ppo.summary["reward_last"])
    assert math.isfinite(ppo.summary["kl_last"])
    assert Path(ppo.summary["model_dir"], "config.json").is_file()

    # The policy is registered and its promotion gate evaluated (not promoted: no human votes yet).
    version = PolicyVersion.objects.get(run=ppo)
    assert not version.is_active and version.gate["checks"]
    assert {c["check"] for c in version.gate["checks"]} >= {
        "capability",
        "battle",
        "reward_length",
        "spot_checks",
    }
    assert f"policy v{version.version} registered; promotion gate" in report

    # The server was stopped and its token revoked at the end.
    with pytest.raises(httpx.TransportError):
        httpx.get(server_url + "/health", timeout=2.0)
    token = ApiToken.objects.get(name__startswith="demo reward client", name__contains=project.name)
    assert token.revoked_at is not None and token.scopes == ["score"]

    assert f"project {project.pk} '{project.name}'" in report
    assert f"{tasks * 2} judgments" in report
    assert f"#{snapshot.pk} " in report and snapshot.content_hash[:16] in report
    assert f"RewardModel v{reward_model.version}" in report
    assert f"PPO         run {ppo.pk}: {PPO_STEPS} steps" in report
    assert "sim-spammer" in report and "FLAGGED" in report
    assert f"http://127.0.0.1:8000/policy/{ppo.pk}/" in report
    assert f"http://127.0.0.1:8000/projects/{project.pk}/quality/" in report
    assert f"http://127.0.0.1:8000/reward-models/{reward_model.pk}/" in report
