"""`manage.py promote_rm`: by id or project + version, through the gate; a refusal exits non-zero with the
gate's reasons and changes nothing; `--force --reason` is recorded; a forced promotion without a reason and
unknown models are clear errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from training.models import ModelEvaluation, Promotion, RewardModel

pytestmark = pytest.mark.django_db


def _rm(project, snapshot, version, accuracy):
    rm = RewardModel.objects.create(
        project=project, version=version, snapshot=snapshot, base_model="tiny", artifact_dir="/nowhere",
        max_length=64,
    )  # fmt: skip
    ModelEvaluation.objects.create(
        reward_model=rm, snapshot=snapshot, split="test", metrics={"accuracy": accuracy}
    )
    return rm


def _promote(*args: str) -> str:
    out = io.StringIO()
    call_command("promote_rm", *args, stdout=out)
    return out.getvalue()


def test_promote_by_project_and_version_then_by_id(project, tiny_snapshot):
    first = _rm(project, tiny_snapshot, 1, 0.70)
    second = _rm(project, tiny_snapshot, 2, 0.72)
    out = _promote("--project", project.name, "--rm-version", "1")
    assert f"reward model {first.pk} ({project.name} v1) is active" in out
    out = _promote(str(second.pk))
    assert "previous: " + str(first.pk) in out
    assert list(RewardModel.objects.filter(is_active=True)) == [second]
    assert [p.forced for p in Promotion.objects.order_by("pk")] == [False, False]


def test_a_refused_gate_is_an_error_and_force_with_reason_is_recorded(project, tiny_snapshot):
    weak = _rm(project, tiny_snapshot, 1, 0.40)
    with pytest.raises(
        CommandError, match=r"gate refused v1: accuracy 0.4 is below the minimum 0.55.*--force"
    ):
        _promote(str(weak.pk))
    assert not Promotion.objects.exists() and not RewardModel.objects.filter(is_active=True).exists()
    with pytest.raises(CommandError, match="--force needs --reason"):
        _promote(str(weak.pk), "--force")
    out = _promote(str(weak.pk), "--force", "--reason", "small test split, checked by hand")
    assert "forced override recorded" in out
    promotion = Promotion.objects.get()
    assert promotion.forced and promotion.reason == "small test split, checked by hand"
    assert promotion.gate["passed"] is False


def test_a_lower_minimum_passes_the_gate(project, tiny_snapshot):
    weak = _rm(project, tiny_snapshot, 1, 0.40)
    _promote(str(weak.pk), "--min-accuracy", "0.3")
    assert RewardModel.objects.get(is_active=True) == weak and not Promotion.objects.get().forced


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "No reward model with id 999999"),
        (["--project", "no-such", "--rm-version", "1"], "No project with id or name 'no-such'"),
        (["--rm-version", "1"], "or --project with --rm-version"),
        (["1", "--project", "x", "--rm-version", "1"], "not both"),
    ],
)
def test_unknown_models_are_clear_errors(project, args, message):
    with pytest.raises(CommandError, match=message):
        _promote(*args)


def test_a_project_without_that_version(project, tiny_snapshot):
    with pytest.raises(CommandError, match=f"'{project.name}' has no reward model version 3"):
        _promote("--project", str(project.pk), "--rm-version", "3")
