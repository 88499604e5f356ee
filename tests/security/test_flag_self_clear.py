"""No one clears a flag about themselves (it would lift the quarantine on their own votes): API and page
answer 403 with the reason, whatever the person's role."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from annotation.models import AnnotatorFlag, FlagStatus, Role, TokenScope
from tests.factories import add_member, make_project, make_token, make_user


def _self_flagged_reviewer():
    reviewer, other = make_user(Role.REVIEWER), make_user(Role.REVIEWER)
    project = make_project(members=[(reviewer, Role.REVIEWER), (other, Role.REVIEWER)])
    flag = AnnotatorFlag.objects.create(project=project, annotator=reviewer, reason="manual")
    return project, reviewer, other, flag


def test_a_flagged_reviewer_cannot_clear_their_own_flag_through_the_api(client, db):
    project, reviewer, other, flag = _self_flagged_reviewer()
    for auth in ("session", "token"):
        api = Client()
        if auth == "session":
            api.force_login(reviewer)
        else:
            api.defaults["HTTP_AUTHORIZATION"] = f"Bearer {make_token(reviewer, [TokenScope.EXPORT])}"
        resp = api.post(f"/api/v1/quality/flags/{flag.pk}/clear", {}, content_type="application/json")
        assert resp.status_code == 403, (auth, resp.content)
        assert "about themselves" in resp.json()["error"]["message"]
        flag.refresh_from_db()
        assert flag.status == FlagStatus.OPEN
    # Another reviewer of the project can.
    client.force_login(other)
    assert (
        client.post(f"/api/v1/quality/flags/{flag.pk}/clear", {}, content_type="application/json").status_code
        == 200
    )
    flag.refresh_from_db()
    assert flag.status == FlagStatus.CLEARED and flag.cleared_by == other


def test_a_flagged_admin_cannot_clear_their_own_flag_on_the_page(client, db):
    project, _, _, _ = _self_flagged_reviewer()
    admin = make_user(Role.ADMIN)
    add_member(project, admin, Role.ADMIN)
    flag = AnnotatorFlag.objects.create(project=project, annotator=admin, reason="manual")
    client.force_login(admin)
    url = reverse("annotation:quality-flag-clear", args=[project.pk, flag.pk])
    resp = client.post(url, {"note": "fine"})
    assert resp.status_code == 403
    assert "about themselves" in resp.content.decode()
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN
