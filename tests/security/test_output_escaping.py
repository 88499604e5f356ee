"""Model output and annotator text are never rendered as HTML.

The security world is built with every free-text field an HTML payload: prompt, candidate responses,
model names, rationales, scored samples (reward spot checks), training and policy run logs and status
reasons, and a policy run's live sample generations. Each page that shows task content or model output to
annotators, reviewers or engineers must show the payload as text (escaped) and never as markup.
"""

from __future__ import annotations

import html
import re

import pytest

from tests.security.conftest import XSS, World

# Tags the payload would create if rendered raw (the Markdown renderer must turn them into text).
RAW = re.compile(r"<script>alert\(1\)</script>|<img[^>]*onerror", re.IGNORECASE)
ESCAPED = html.escape("<script>alert(1)</script>", quote=False)  # &lt;script&gt;alert(1)&lt;/script&gt;

# (page URL name, kwargs from the world, who looks, must the payload be visible there as text?)
PAGES = [
    ("annotation:annotate", ("project_id",), "annotator", True),
    ("annotation:review", ("project_id",), "reviewer", True),
    ("annotation:dashboard", (), "annotator", False),
    ("annotation:quality-project", ("project_id",), "reviewer", False),  # numbers and charts only
    ("annotation:quality-annotator", ("project_id", "annotator_id"), "reviewer", False),
    ("annotation:quality-leaderboard", ("project_id",), "reviewer", True),
    ("rewardsvc:spot_check", (), "engineer", True),
    ("training:run_list", (), "engineer", False),
    ("training:run_detail", ("run_id",), "engineer", True),
    ("training:reward_model_detail", ("model_id",), "engineer", False),
    ("training:snapshot_list", (), "engineer", False),
    ("training:snapshot_detail", ("snapshot_id",), "engineer", False),
    ("training:policy_detail", ("policy_run_id",), "engineer", True),
    ("home", (), "engineer", False),
]


def _url(world: World, name: str, params: tuple[str, ...]) -> str:
    from django.urls import reverse

    ids = world.ids()
    kwargs = {("run_id" if p == "policy_run_id" else p): ids[p] for p in params}
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize(("name", "params", "role", "shows_text"), PAGES, ids=[p[0] for p in PAGES])
def test_payload_is_escaped_on_page(xss_world: World, name, params, role, shows_text):
    client = xss_world.client_for(role)
    response = client.get(_url(xss_world, name, params))
    assert response.status_code == 200, response.status_code
    body = response.content.decode()
    match = RAW.search(body)
    assert match is None, (
        f"raw HTML from data on {name}: ...{body[max(0, match.start() - 80) : match.end() + 40]}"
    )
    if shows_text:
        assert ESCAPED in body, f"{name} does not show the text at all (so the test proves nothing there)"


def test_spot_check_prefilled_candidates_are_escaped(xss_world: World):
    """Picking a stored prompt fills the form fields with its text and candidates (textarea content)."""
    client = xss_world.client_for("engineer")
    response = client.get(
        "/reward/spot-check/",
        {"reward_model": xss_world.reward_model.pk, "prompt_id": xss_world.task.prompt_id},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert RAW.search(body) is None
    assert ESCAPED in body


def test_review_queue_json_is_json(xss_world: World):
    """The API hands model output back as JSON strings (never an HTML content type)."""
    client = xss_world.client_for("reviewer")
    response = client.get("/api/v1/review/queue")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert XSS in {j["rationale"] for t in response.json()["results"] for j in t["judgments"]}


def test_live_json_endpoints_are_json(xss_world: World):
    client = xss_world.client_for("engineer")
    for name in ("training:run_live", "training:policy_live"):
        from django.urls import reverse

        run_id = xss_world.run.pk if name == "training:run_live" else xss_world.policy_run.pk
        response = client.get(reverse(name, kwargs={"run_id": run_id}))
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
