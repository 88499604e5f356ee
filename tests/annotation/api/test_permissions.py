"""Permission matrix of the core API: who may read and change what, by role, membership and token scope."""

from __future__ import annotations

import pytest

from annotation.models import ApiToken, Judgment, Project
from tests.factories import make_user

API = "/api/v1"


def test_anonymous_gets_401_with_error_body(client_for):
    for path in ("projects/", "tasks/", "judgments/", "tokens/"):
        response = client_for().get(f"{API}/{path}")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Bearer"


def test_annotator_cannot_see_another_project(client_for, world):
    client = client_for(world.annotator)
    assert client.get(f"{API}/projects/{world.other_project.pk}/").status_code == 404
    assert client.get(f"{API}/projects/{world.other_project.pk}/members/").status_code == 404
    other_task = world.other_project.tasks.first()
    assert client.get(f"{API}/tasks/{other_task.pk}/").status_code == 404
    listed = client.get(f"{API}/projects/").json()["results"]
    assert [p["id"] for p in listed] == [world.project.pk]
    # Filtering by the other project yields nothing rather than leaking its tasks.
    tasks = client.get(f"{API}/tasks/", {"project": world.other_project.pk}).json()["results"]
    assert tasks == []
    # Changing it is also a 404, not a 403: its existence is not revealed.
    response = client.patch(f"{API}/projects/{world.other_project.pk}/", {"description": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_annotator_lists_own_project_tasks_blind_but_cannot_create_projects(client_for, world):
    client = client_for(world.annotator)
    response = client.get(f"{API}/tasks/", {"project": world.project.pk})
    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(t["id"] for t in results) == sorted(t.pk for t in world.tasks)
    task = results[0]
    assert task["candidate_a"]["text"] and "model_name" not in task["candidate_a"]
    assert "kind" not in task and "gold_choice" not in task
    # Filtering by a hidden field searches nothing for an annotator.
    gold = client.get(f"{API}/tasks/", {"kind": "standard"}).json()["results"]
    assert gold == []
    response = client.post(f"{API}/projects/", {"name": "mine"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert not Project.objects.filter(name="mine").exists()
    # Nor change the project they are a member of, nor add content to it.
    assert client.patch(f"{API}/projects/{world.project.pk}/", {"description": "x"}).status_code == 403
    prompt = {"project": world.project.pk, "text": "new prompt"}
    assert client.post(f"{API}/prompts/", prompt).status_code == 403
    # Nor list the members.
    assert client.get(f"{API}/projects/{world.project.pk}/members/").status_code == 403


@pytest.mark.parametrize("who", ["reviewer", "engineer", "admin"])
def test_reviewers_engineers_admins_see_model_names_and_kinds(client_for, world, who):
    client = client_for(getattr(world, who))
    task = client.get(f"{API}/tasks/{world.tasks[0].pk}/").json()
    assert task["candidate_a"]["model_name"] in {"model-a", "model-b"}
    assert task["kind"] == "standard"
    standard = client.get(f"{API}/tasks/", {"kind": "standard", "project": world.project.pk}).json()
    assert len(standard["results"]) == 3


def test_reviewer_reads_but_cannot_manage(client_for, world):
    client = client_for(world.reviewer)
    members = client.get(f"{API}/projects/{world.project.pk}/members/").json()["results"]
    assert {m["username"] for m in members} == {
        u.username for u in (world.annotator, world.annotator2, world.reviewer, world.engineer)
    }
    assert client.patch(f"{API}/projects/{world.project.pk}/", {"description": "x"}).status_code == 403
    assert client.post(f"{API}/projects/", {"name": "reviewer-made"}).status_code == 403
    response = client.post(
        f"{API}/projects/{world.project.pk}/members/", {"username": world.outsider.username}
    )
    assert response.status_code == 403


def test_engineer_manages_own_project_only(client_for, world):
    client = client_for(world.engineer)
    response = client.patch(f"{API}/projects/{world.project.pk}/", {"description": "new", "overlap_k": 3})
    assert response.status_code == 200
    world.project.refresh_from_db()
    assert (world.project.description, world.project.overlap_k) == ("new", 3)
    assert client.delete(f"{API}/projects/{world.other_project.pk}/").status_code == 404
    assert Project.objects.filter(pk=world.other_project.pk).exists()
    # Members: add, change role, remove.
    url = f"{API}/projects/{world.project.pk}/members/"
    assert client.post(url, {"username": world.outsider.username}).status_code == 201
    assert client.post(url, {"user_id": world.outsider.pk, "role": "reviewer"}).status_code == 200
    assert world.project.memberships.get(user=world.outsider).role == "reviewer"
    assert client.post(url, {"user_id": world.outsider.pk, "role": "admin"}).status_code == 403
    assert client.delete(f"{url}{world.outsider.pk}/").status_code == 204
    assert not world.project.memberships.filter(user=world.outsider).exists()
    assert client.delete(f"{url}{world.outsider.pk}/").status_code == 404


def test_admin_sees_and_changes_every_project(client_for, world):
    client = client_for(world.admin)
    ids = {p["id"] for p in client.get(f"{API}/projects/").json()["results"]}
    assert {world.project.pk, world.other_project.pk} <= ids
    assert client.delete(f"{API}/projects/{world.other_project.pk}/").status_code == 204
    assert not Project.objects.filter(pk=world.other_project.pk).exists()


def test_judgments_annotators_see_own_reviewers_see_all(client_for, world):
    task = world.tasks[0]
    for user in (world.annotator, world.annotator2):
        response = client_for(user).post(f"{API}/judgments/", {"task": task.pk, "choice": "A", "strength": 2})
        assert response.status_code == 201, response.json()
    mine = client_for(world.annotator).get(f"{API}/judgments/").json()["results"]
    assert [j["annotator"] for j in mine] == [world.annotator.pk]
    # Asking for someone else's judgments by filter still shows only one's own (none).
    theirs = client_for(world.annotator).get(f"{API}/judgments/", {"annotator": world.annotator2.pk})
    assert theirs.json()["results"] == []
    other_id = Judgment.objects.get(annotator=world.annotator2).pk
    assert client_for(world.annotator).get(f"{API}/judgments/{other_id}/").status_code == 404
    everyone = client_for(world.reviewer).get(f"{API}/judgments/", {"project": world.project.pk})
    assert {j["annotator"] for j in everyone.json()["results"]} == {world.annotator.pk, world.annotator2.pk}
    # The outsider cannot judge a task of a project they are not in.
    response = client_for(world.outsider).post(
        f"{API}/judgments/", {"task": task.pk, "choice": "A", "strength": 1}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["task"] == ["No such task in your projects."]
    assert Judgment.objects.filter(task=task).count() == 2


def test_token_scopes_are_enforced_with_named_scope(client_for, world, token_for):
    export_only = client_for(token=token_for(world.engineer, "export"))
    assert export_only.get(f"{API}/tasks/").status_code == 200
    response = export_only.post(
        f"{API}/judgments/", {"task": world.tasks[0].pk, "choice": "A", "strength": 1}
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert "'annotate'" in error["message"]
    response = export_only.patch(f"{API}/projects/{world.project.pk}/", {"description": "x"})
    assert response.status_code == 403 and "'train'" in response.json()["error"]["message"]
    score_only = client_for(token=token_for(world.engineer, "score"))
    response = score_only.get(f"{API}/projects/")
    assert response.status_code == 403
    assert "'annotate', 'export', 'train'" in response.json()["error"]["message"]
    # The right scope works, and the role still applies on top of it.
    annotate = client_for(token=token_for(world.annotator, "annotate"))
    assert (
        annotate.post(
            f"{API}/judgments/", {"task": world.tasks[0].pk, "choice": "B", "strength": 1}
        ).status_code
        == 201
    )
    train = client_for(token=token_for(world.annotator, "train"))
    assert train.patch(f"{API}/projects/{world.project.pk}/", {"description": "x"}).status_code == 403
    engineer_train = client_for(token=token_for(world.engineer, "train"))
    assert (
        engineer_train.patch(f"{API}/projects/{world.project.pk}/", {"description": "y"}).status_code == 200
    )


def test_revoked_expired_and_unknown_tokens_get_401(client_for, world, token_for):
    raw = token_for(world.annotator, "annotate")
    client = client_for(token=raw)
    assert client.get(f"{API}/tasks/").status_code == 200
    token = ApiToken.objects.get(key_hash=ApiToken.hash_key(raw))
    assert client_for(world.annotator).delete(f"{API}/tokens/{token.pk}/").status_code == 204
    response = client.get(f"{API}/tasks/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert client_for(token="pl_not-a-real-token").get(f"{API}/tasks/").status_code == 401


def test_token_cannot_mint_a_stronger_token_or_touch_others(client_for, world, token_for):
    client = client_for(token=token_for(world.engineer, "export"))
    response = client.post(
        f"{API}/tokens/", {"name": "escalate", "scopes": ["export", "train"]}, format="json"
    )
    assert response.status_code == 403
    assert "train" in response.json()["error"]["message"]
    ok = client.post(f"{API}/tokens/", {"name": "ci", "scopes": ["export"]}, format="json")
    assert ok.status_code == 201
    someone_elses = ApiToken.objects.get(key_hash=ApiToken.hash_key(token_for(make_user(), "annotate")))
    assert client.delete(f"{API}/tokens/{someone_elses.pk}/").status_code == 404
    someone_elses.refresh_from_db()
    assert someone_elses.revoked_at is None
