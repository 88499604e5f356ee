"""POST /api/v1/projects/{id}/import: uploads, dataset sources, errors, permissions and the size limit."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from annotation.models import ImportBatch, Judgment, Role
from tests.annotation.imports.conftest import PAIRS_ROWS, RESPONSES_ROWS, row_counts, write_hf_dataset
from tests.factories import add_member, make_token, make_user


def _jsonl(rows: list, name: str = "data.jsonl") -> io.BytesIO:
    buf = io.BytesIO("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode())
    buf.name = name
    return buf


@pytest.fixture
def engineer(project):
    user = make_user(Role.ENGINEER)
    add_member(project, user, Role.ENGINEER)
    return user


def _client(user=None, token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    elif user:
        client.force_authenticate(user)
    return client


def _url(project) -> str:
    return f"/api/v1/projects/{project.pk}/import"


def test_upload_imports_and_reports_counts(project, engineer):
    response = _client(token=make_token(engineer, ["train"])).post(
        _url(project), {"file": _jsonl(PAIRS_ROWS), "prior_judgments": "true"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["prompts_created"], body["candidates_created"], body["tasks_created"]) == (2, 5, 3)
    assert body["judgments_created"] == 3
    batch = ImportBatch.objects.get(pk=body["batch_id"])
    assert (batch.project_id, batch.created_by_id, batch.source, batch.shape) == (
        project.pk,
        engineer.pk,
        "data.jsonl",
        "pairs",
    )
    assert Judgment.objects.filter(task__project=project, source="prior").count() == 3


def test_json_body_with_saved_dataset_under_an_import_root(project, engineer, settings, tmp_path):
    settings.PREFLAB_IMPORT_ROOTS = [tmp_path / "imports"]
    path = write_hf_dataset(tmp_path / "imports" / "ds", RESPONSES_ROWS)
    response = _client(engineer).post(
        _url(project), {"source": str(path), "pairing": "adjacent"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["format"] == "hf"
    assert response.json()["tasks_created"] == 2 + 3


def test_local_path_outside_data_dirs_is_refused(project, engineer, tmp_path):
    outside = write_hf_dataset(tmp_path / "elsewhere", RESPONSES_ROWS)
    response = _client(engineer).post(_url(project), {"source": str(outside)}, format="json")
    assert response.status_code == 400
    assert "source" in response.json()["error"]["fields"]
    assert row_counts(project)["prompts"] == 0


def test_bad_file_gives_400_with_field_and_reason_and_writes_nothing(project, engineer):
    bad = _jsonl([PAIRS_ROWS[0], {"prompt": "p", "chosen": "", "rejected": "x"}])
    response = _client(engineer).post(_url(project), {"file": bad}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_import"
    assert error["message"] == "line 2: chosen: empty response"
    assert error["fields"] == {"chosen": ["line 2: chosen: empty response"]}
    assert row_counts(project) == {"prompts": 0, "candidates": 0, "tasks": 0, "judgments": 0, "batches": 0}


def test_invalid_options_and_missing_file_are_400(project, engineer):
    client = _client(engineer)
    response = client.post(_url(project), {"file": _jsonl(PAIRS_ROWS), "pairing": "nope"}, format="multipart")
    assert response.status_code == 400 and "pairing" in response.json()["error"]["fields"]
    response = client.post(_url(project), {}, format="json")
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    response = client.post(_url(project), {"file": _jsonl(PAIRS_ROWS, name="data.bin")}, format="multipart")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]


def test_upload_over_the_limit_is_413(project, engineer, settings):
    settings.PREFLAB_MAX_IMPORT_BYTES = 200
    big = _jsonl(PAIRS_ROWS * 5)
    response = _client(engineer).post(_url(project), {"file": big}, format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert row_counts(project)["prompts"] == 0


def test_non_member_gets_404(project):
    outsider = make_user(Role.ENGINEER)
    response = _client(outsider).post(_url(project), {"file": _jsonl(PAIRS_ROWS)}, format="multipart")
    assert response.status_code == 404
    assert row_counts(project)["prompts"] == 0


def test_annotator_role_and_token_without_scope_get_403(project, engineer):
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator, Role.ANNOTATOR)
    response = _client(annotator).post(_url(project), {"file": _jsonl(PAIRS_ROWS)}, format="multipart")
    assert response.status_code == 403
    token = make_token(engineer, ["annotate", "export"])
    response = _client(token=token).post(_url(project), {"file": _jsonl(PAIRS_ROWS)}, format="multipart")
    assert response.status_code == 403
    assert "train" in response.json()["error"]["message"]
    assert row_counts(project)["prompts"] == 0


def test_a_project_admin_member_imports_by_the_api_as_by_the_page(project):
    """One rule for imports, page and API alike: the project's engineers and admins (by membership too)."""
    lead = make_user(Role.ANNOTATOR)  # global annotator, admin of this one project
    add_member(project, lead, Role.ADMIN)
    response = _client(lead).post(_url(project), {"file": _jsonl(PAIRS_ROWS)}, format="multipart")
    assert response.status_code == 201, response.content
    assert row_counts(project)["prompts"] > 0


def test_anonymous_is_refused(project):
    response = APIClient().post(_url(project), {"file": _jsonl(PAIRS_ROWS)}, format="multipart")
    assert response.status_code in (401, 403)
