"""API round trips on PostgreSQL: build a project through the API, judge, list with filters, page with
cursors; idempotent retries; error bodies."""

from __future__ import annotations

from urllib.parse import urlsplit

from annotation.models import ComparisonTask, Judgment, ProjectMembership
from tests.factories import add_member, make_tasks, make_user

API = "/api/v1"


def _ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def test_create_project_prompt_candidates_task_judgment_and_list(client_for, world, token_for):
    engineer = client_for(token=token_for(world.engineer, "train", "annotate"))
    project = _ok(
        engineer.post(
            f"{API}/projects/", {"name": "Helpfulness", "overlap_k": 2, "extra_criteria": ["harmless"]}
        ),
        201,
    )
    assert project["my_role"] == "engineer"
    assert ProjectMembership.objects.get(project_id=project["id"], user=world.engineer).role == "engineer"
    prompt = _ok(
        engineer.post(f"{API}/prompts/", {"project": project["id"], "text": "How do I bake bread?"}), 201
    )
    answers = ["Knead, proof, bake at 230C.", "Buy some."]
    cands = [
        _ok(engineer.post(f"{API}/candidates/", {"prompt": prompt["id"], "text": t, "model_name": m}), 201)
        for t, m in zip(answers, ["good-lm", "lazy-lm"], strict=True)
    ]
    task = _ok(
        engineer.post(
            f"{API}/tasks/",
            {"project": project["id"], "candidate_a": cands[0]["id"], "candidate_b": cands[1]["id"]},
        ),
        201,
    )
    assert {task["candidate_a"]["id"], task["candidate_b"]["id"]} == {c["id"] for c in cands}
    assert task["prompt"]["text"] == "How do I bake bread?"
    assert ComparisonTask.objects.get(pk=task["id"]).prompt_id == prompt["id"]

    # An annotator added through the API judges the task with their own token.
    _ok(
        engineer.post(f"{API}/projects/{project['id']}/members/", {"username": world.annotator.username}), 201
    )
    annotator = client_for(token=token_for(world.annotator, "annotate"))
    seen = _ok(annotator.get(f"{API}/tasks/", {"project": project["id"]}))["results"]
    assert [t["id"] for t in seen] == [task["id"]]
    judgment = _ok(
        annotator.post(
            f"{API}/judgments/",
            {
                "task": task["id"],
                "choice": "A",
                "strength": 3,
                "criteria": {"harmless": "tie"},
                "time_spent_ms": 4200,
            },
        ),
        201,
    )
    stored = Judgment.objects.get(pk=judgment["id"])
    assert (stored.annotator, stored.choice, stored.strength, stored.criteria) == (
        world.annotator,
        "A",
        3,
        {"harmless": "tie"},
    )
    assert judgment["gold_feedback"] is None
    _ok(engineer.post(f"{API}/judgments/", {"task": task["id"], "choice": "B", "strength": 1}), 201)

    # Filters on the engineer's view: by project, task, annotator, choice and created_at range.
    listed = _ok(engineer.get(f"{API}/judgments/", {"project": project["id"]}))["results"]
    assert len(listed) == 2
    by_annotator = _ok(
        engineer.get(f"{API}/judgments/", {"annotator": world.annotator.pk, "task": task["id"]})
    )
    assert [j["id"] for j in by_annotator["results"]] == [judgment["id"]]
    assert [j["choice"] for j in _ok(engineer.get(f"{API}/judgments/", {"choice": "B"}))["results"]] == ["B"]
    window = {"created_after": judgment["created_at"], "project": project["id"]}
    assert len(_ok(engineer.get(f"{API}/judgments/", window))["results"]) == 2
    before = {"created_before": judgment["created_at"], "project": project["id"]}
    assert _ok(engineer.get(f"{API}/judgments/", before))["results"] == []
    assert ComparisonTask.objects.get(pk=task["id"]).status == "needs_review"


def test_cursor_pagination_walks_every_task_once(client_for, world):
    make_tasks(world.project, 7, seed=3)  # 10 tasks in all
    client = client_for(world.annotator)
    seen: list[int] = []
    page = _ok(client.get(f"{API}/tasks/", {"project": world.project.pk, "page_size": 4}))
    assert page["previous"] is None
    pages = 1
    while True:
        seen += [t["id"] for t in page["results"]]
        if not page["next"]:
            break
        assert "cursor=" in page["next"]
        next_url = urlsplit(page["next"])
        page = _ok(client.get(f"{next_url.path}?{next_url.query}"))
        pages += 1
    assert pages == 3
    assert seen == sorted(seen, reverse=True)
    assert sorted(seen) == sorted(world.project.tasks.values_list("pk", flat=True))


def test_double_judgment_rejected_but_idempotent_retry_returns_first(client_for, world):
    client = client_for(world.annotator)
    task = world.tasks[0]
    body = {"task": task.pk, "choice": "A", "strength": 2}
    first = _ok(client.post(f"{API}/judgments/", body, HTTP_IDEMPOTENCY_KEY="submit-1"), 201)
    retry = _ok(client.post(f"{API}/judgments/", body, HTTP_IDEMPOTENCY_KEY="submit-1"), 200)
    assert retry["id"] == first["id"]
    # The key may also come in the body.
    retry_body = _ok(client.post(f"{API}/judgments/", {**body, "idempotency_key": "submit-1"}), 200)
    assert retry_body["id"] == first["id"]
    # A second, different answer for the same task is refused with a reason on the task field.
    response = client.post(f"{API}/judgments/", {**body, "choice": "B"}, HTTP_IDEMPOTENCY_KEY="submit-2")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"]["task"] == ["You already judged this task."]
    assert list(Judgment.objects.filter(task=task).values_list("choice", flat=True)) == ["A"]
    task.refresh_from_db()
    assert task.judgment_count == 1


def test_validation_errors_name_field_and_reason(client_for, world):
    client = client_for(world.annotator)
    response = client.post(f"{API}/judgments/", {"task": world.tasks[0].pk, "choice": "C", "strength": 9})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"choice", "strength"}
    assert "not a valid choice" in error["fields"]["choice"][0]
    assert error["message"].startswith("choice: ")
    # Service-level rules come back the same way (this project asks for a strength).
    response = client.post(f"{API}/judgments/", {"task": world.tasks[0].pk, "choice": "A"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "strength": ["This project asks how much better (1, 2 or 3)."]
    }
    assert not Judgment.objects.exists()

    engineer = client_for(world.engineer)
    response = engineer.post(f"{API}/projects/", {"name": world.project.name, "gold_rate": 2})
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "already exists" in fields["name"][0]
    assert "less than or equal to 1" in fields["gold_rate"][0]
    # Content that breaks a task invariant: two candidates of different prompts.
    a, b = world.tasks[0].candidate_a, world.tasks[1].candidate_b
    response = engineer.post(
        f"{API}/tasks/", {"project": world.project.pk, "candidate_a": a.pk, "candidate_b": b.pk}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["candidate_b"] == [
        "Both candidates must answer the same prompt."
    ]
    # A duplicate prompt is refused with its reason.
    engineer.post(f"{API}/prompts/", {"project": world.project.pk, "text": "Same text"})
    response = engineer.post(f"{API}/prompts/", {"project": world.project.pk, "text": "Same text"})
    assert response.status_code == 400
    assert "already exists" in response.json()["error"]["fields"]["text"][0]


def test_gold_task_hides_answer_from_annotator_and_gives_feedback(client_for, world):
    engineer = client_for(world.engineer)
    source = world.tasks[0]
    gold = _ok(
        engineer.post(
            f"{API}/tasks/",
            {
                "project": world.project.pk,
                "candidate_a": source.candidate_a_id,
                "candidate_b": source.candidate_b_id,
                "kind": "gold",
                "gold_choice": "A",
                "gold_explanation": "A is right.",
                "randomize_order": False,
            },
        ),
        201,
    )
    assert gold["kind"] == "gold" and gold["gold_choice"] == "A"
    annotator = client_for(world.annotator)
    shown = _ok(annotator.get(f"{API}/tasks/{gold['id']}/"))
    assert "gold_choice" not in shown and "gold_explanation" not in shown and "kind" not in shown
    result = _ok(annotator.post(f"{API}/judgments/", {"task": gold["id"], "choice": "B", "strength": 1}), 201)
    assert result["gold_feedback"]["correct"] is False
    assert result["gold_feedback"]["gold_choice"] == "A"


def test_member_of_project_only_as_annotator_with_global_reviewer_role_reviews(client_for, world):
    """A user's role in a project is the higher of their global and membership roles."""
    reviewer = make_user("reviewer")
    add_member(world.project, reviewer, "annotator")
    client = client_for(reviewer)
    task = _ok(client.get(f"{API}/tasks/{world.tasks[0].pk}/"))
    assert "model_name" in task["candidate_a"]
    assert _ok(client.get(f"{API}/projects/{world.project.pk}/"))["my_role"] == "reviewer"


def test_lists_use_a_fixed_number_of_queries(client_for, world, django_assert_max_num_queries):
    """No per-row queries: a page of 30 tasks or judgments costs the same few queries as a page of 3."""
    tasks = make_tasks(world.project, 27, seed=5) + world.tasks
    for task in tasks:
        Judgment.objects.create(task=task, annotator=world.annotator, choice="A", strength=1)
    client = client_for(world.reviewer)
    for path in ("tasks/", "judgments/", "candidates/", "prompts/", "projects/"):
        with django_assert_max_num_queries(8):
            response = client.get(f"{API}/{path}", {"page_size": 50})
        assert response.status_code == 200
        assert len(response.json()["results"]) >= 1
    assert len(client.get(f"{API}/judgments/", {"page_size": 50}).json()["results"]) == 30


def test_datetime_filters_take_any_iso_offset_and_refuse_garbage(client_for, world):
    """PostgreSQL refuses offsets beyond +-15:59 though ISO allows them; filters normalise to UTC first."""
    client = client_for(world.annotator)
    for path in ("tasks", "judgments"):
        ok = client.get(
            f"{API}/{path}/", {"project": world.project.pk, "created_after": "2000-01-01T00:00:00-18:15"}
        )
        assert ok.status_code == 200, ok.content
        future = client.get(f"{API}/{path}/", {"created_after": "2632-09-15T08:58:58+16:18"})
        assert future.status_code == 200 and future.json()["results"] == []
        bad = client.get(f"{API}/{path}/", {"created_after": "yesterday"})
        assert bad.status_code == 400 and "created_after" in bad.content.decode()
    tasks = client.get(
        f"{API}/tasks/", {"project": world.project.pk, "created_after": "2000-01-01T00:00:00-18:15"}
    )
    assert len(tasks.json()["results"]) == 3
