"""`manage.py create_project`: the new id alone on stdout (a script keeps it), settings as in the web form, the
creator an engineer member, and a clear error (nothing written) for a taken name or a bad setting."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import PairingStrategy, Project, Role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _create(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_project", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_only_the_new_id_and_applies_the_settings(tmp_path):
    owner = make_user(Role.ENGINEER, username="eng")
    guidelines = tmp_path / "guide.md"
    guidelines.write_text("# Pick the harmless answer")
    out, err = _create(
        "harmless", "--owner", "eng", "--pairing", "random_k", "--overlap-k", "3",
        "--set", "pairs_per_prompt=2", "--set", "allow_tie=false", "--set", 'extra_criteria=["helpful"]',
        "--guidelines-file", str(guidelines), "--description", "hh-rlhf harmless",
    )  # fmt: skip
    project = Project.objects.get(name="harmless")
    assert out.strip() == str(project.pk) and f"(id {project.pk})" in err
    assert project.pairing_strategy == PairingStrategy.RANDOM_K and project.overlap_k == 3
    assert (
        project.pairs_per_prompt == 2 and project.allow_tie is False and project.extra_criteria == ["helpful"]
    )
    assert project.guidelines == "# Pick the harmless answer" and project.description == "hh-rlhf harmless"
    assert list(project.memberships.values_list("user", "role")) == [(owner.pk, Role.ENGINEER)]


def test_without_owner_the_project_has_no_members():
    out, _ = _create("bare")
    assert Project.objects.get(pk=int(out)).memberships.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["taken"], "name: Project with this Name already exists"),
        (["new", "--set", "overlap_k=0"], "overlap_k"),
        (["new", "--set", "gold_rate=2"], "gold_rate"),
        (["new", "--set", "colour=blue"], "--set colour: not a project setting"),
        (["new", "--set", "overlap_k"], "--set takes FIELD=VALUE"),
        (["new", "--owner", "nobody"], "--owner: no user named 'nobody'"),
        (["new", "--guidelines-file", "/no/such/file.md"], "--guidelines-file"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(args, message):
    _create("taken")
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        _create(*args)
    assert list(Project.objects.values_list("name", flat=True)) == ["taken"]
