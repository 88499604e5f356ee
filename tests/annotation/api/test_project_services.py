"""Project services and selectors, called directly: what they write and what they refuse."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation.auth import token_lookup
from annotation.models import ApiToken, ComparisonTask, ProjectMembership
from annotation.selectors.projects import judgment_list_for_user, project_access_for_user
from annotation.services.judgments import judgment_submit
from annotation.services.projects import (
    api_token_create,
    api_token_revoke,
    membership_add,
    membership_remove,
    project_create,
    project_update,
    task_create,
)
from tests.factories import make_candidate, make_project, make_prompt, make_user


def test_project_create_makes_creator_an_engineer_and_validates():
    engineer = make_user("engineer")
    project = project_create(created_by=engineer, name="P", overlap_k=3, extra_criteria=["harmless"])
    assert ProjectMembership.objects.get(project=project, user=engineer).role == "engineer"
    assert project_access_for_user(engineer).can_manage(project.pk)
    with pytest.raises(ValidationError) as err:
        project_create(created_by=engineer, name="P")
    assert "name" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        project_update(project=project, created_by=None)
    assert err.value.message_dict == {"created_by": ["Not an editable project setting."]}
    with pytest.raises(ValidationError):
        project_update(project=project, gold_rate=1.5)
    project.refresh_from_db()
    assert project.gold_rate == 0.0


def test_membership_add_is_idempotent_and_changes_role():
    project, user = make_project(), make_user()
    membership, created = membership_add(project=project, user=user, role="annotator")
    assert created
    again, created = membership_add(project=project, user=user, role="reviewer")
    assert (again.pk, created, again.role) == (membership.pk, False, "reviewer")
    with pytest.raises(ValidationError):
        membership_add(project=project, user=user, role="overlord")
    assert membership_remove(project=project, user=user) is True
    assert membership_remove(project=project, user=user) is False
    assert not ProjectMembership.objects.filter(project=project).exists()


def test_task_create_randomises_sides_and_swaps_the_gold_answer():
    project = make_project()
    prompt = make_prompt(project)
    first, second = make_candidate(prompt, "first"), make_candidate(prompt, "second")
    rng = random.Random(0)
    sides = set()
    for _ in range(8):
        task = task_create(
            project=project, candidate_a=first, candidate_b=second, kind="gold", gold_choice="A", rng=rng
        )
        # The gold answer always points at `first`, whichever side it landed on.
        expected = "A" if task.candidate_a_id == first.pk else "B"
        assert task.gold_choice == expected
        sides.add(task.candidate_a_id)
    assert sides == {first.pk, second.pk}
    fixed = task_create(project=project, candidate_a=first, candidate_b=second, randomize_order=False)
    assert (fixed.candidate_a_id, fixed.candidate_b_id) == (first.pk, second.pk)
    other_prompt = make_prompt(project)
    with pytest.raises(ValidationError) as err:
        task_create(project=project, candidate_a=first, candidate_b=make_candidate(other_prompt))
    assert "candidate_b" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        task_create(project=project, candidate_a=first, candidate_b=second, kind="gold")
    assert "gold_choice" in err.value.message_dict
    with pytest.raises(ValidationError):
        task_create(project=make_project(), candidate_a=first, candidate_b=second)
    assert ComparisonTask.objects.count() == 9


def test_api_token_create_stores_only_a_hash_and_revoke_stops_it():
    user = make_user()
    token, raw = api_token_create(user=user, name="ci", scopes=["export", "annotate", "export"])
    assert token.scopes == ["annotate", "export"]
    assert ApiToken.objects.filter(key_hash=ApiToken.hash_key(raw)).count() == 1
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    assert token_lookup(raw) == token
    api_token_revoke(token=token)
    first_revoked = ApiToken.objects.get(pk=token.pk).revoked_at
    api_token_revoke(token=token)
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first_revoked
    assert token_lookup(raw) is None
    with pytest.raises(ValidationError) as err:
        api_token_create(
            user=user, name="", scopes=["root"], expires_at=timezone.now() - timedelta(seconds=1)
        )
    assert set(err.value.message_dict) == {"name", "scopes", "expires_at"}


def test_judgment_selector_own_versus_reviewed_projects():
    annotator, reviewer, stranger = make_user(), make_user("reviewer"), make_user()
    project = make_project(
        members=[(annotator, "annotator"), (reviewer, "reviewer"), (stranger, "annotator")]
    )
    prompt = make_prompt(project)
    task = task_create(
        project=project, candidate_a=make_candidate(prompt), candidate_b=make_candidate(prompt)
    )
    mine = judgment_submit(task=task, annotator=annotator, choice="A", strength=1).judgment
    theirs = judgment_submit(task=task, annotator=stranger, choice="B", strength=1).judgment
    assert list(judgment_list_for_user(user=annotator)) == [mine]
    assert set(judgment_list_for_user(user=reviewer)) == {mine, theirs}
    assert list(judgment_list_for_user(user=make_user("reviewer"))) == []
