"""Snapshot API and pages: 202 + poll + download, cards, impossible specs, scopes, roles and visibility."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from rest_framework.test import APIClient

from annotation.models import Role
from config.celery import app as celery_app
from tests.factories import make_project, make_token, make_user
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus


@pytest.fixture
def eager_celery():
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


def client_for(user, scopes=("export",)) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, list(scopes))}")
    return client


def stream_bytes(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_create_returns_202_then_poll_card_and_download(
    engineer, judged_project, eager_celery, django_capture_on_commit_callbacks
):
    api = client_for(engineer)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(
            "/api/v1/snapshots/",
            {"name": "api", "spec": {"projects": [judged_project.pk], "margin": "strength"}},
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["job_id"] == f"snapshot-build-{body['id']}" and body["status"] == JobStatus.QUEUED
    assert len(callbacks) == 1  # the build is published only after the create commits
    # The eager task has run the build: polling shows the finished snapshot.
    status = api.get(body["status_url"]).json()
    assert status["status"] == JobStatus.SUCCEEDED, status
    assert status["counts"]["rows_total"] == 12 and len(status["content_hash"]) == 64
    card = api.get(f"/api/v1/snapshots/{body['id']}/card/").json()
    assert card["spec"]["margin"] == "strength" and card["lineage"]["judgment_ids_file"] == "judgment_ids.txt"
    assert card["lineage"]["training_runs"] == []
    listed = api.get("/api/v1/snapshots/").json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]

    trl = api.get(f"/api/v1/snapshots/{body['id']}/download/trl/?split=train")
    assert trl.status_code == 200 and "attachment" in trl["Content-Disposition"]
    rows = [json.loads(line) for line in stream_bytes(trl).decode().splitlines()]
    assert rows and all(set(r) == {"prompt", "chosen", "rejected", "margin"} for r in rows)
    parquet = api.get(f"/api/v1/snapshots/{body['id']}/download/parquet/?split=test")
    assert stream_bytes(parquet)[:4] == b"PAR1"
    votes = stream_bytes(api.get(f"/api/v1/snapshots/{body['id']}/download/votes/")).decode().splitlines()
    assert len(votes) == 36
    tar_bytes = stream_bytes(api.get(f"/api/v1/snapshots/{body['id']}/download/hf/"))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = tar.getnames()
    assert "hf/dataset_dict.json" in names and any(n.endswith(".arrow") for n in names)
    assert api.get(f"/api/v1/snapshots/{body['id']}/download/zip/").status_code == 400
    assert api.get(f"/api/v1/snapshots/{body['id']}/download/trl/?split=dev").status_code == 400


@pytest.mark.django_db
def test_impossible_spec_is_400_with_reason_and_creates_nothing(engineer, judged_project):
    api = client_for(engineer)
    bad_split = {"projects": [judged_project.pk], "split": {"train": 0.7, "validation": 0.2, "test": 0.2}}
    response = api.post("/api/v1/snapshots/", {"spec": bad_split})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "sum to 1" in error["fields"]["split"][0] and error["message"].startswith("split:")
    response = api.post("/api/v1/snapshots/", {"spec": {"projects": [424242]}})
    assert response.status_code == 400 and "424242" in response.json()["error"]["fields"]["projects"][0]
    empty = {"projects": [judged_project.pk], "date_from": "1999-01-01", "date_to": "1999-12-31"}
    response = api.post("/api/v1/snapshots/", {"spec": empty})
    assert response.status_code == 400 and "Empty result" in response.json()["error"]["message"]
    assert DatasetSnapshot.objects.count() == 0


@pytest.mark.django_db
def test_scope_role_and_project_visibility(engineer, annotators, judged_project):
    snap = snapshot_create(user=engineer, spec={"projects": [judged_project.pk]}, enqueue=False)
    snapshot_build(snapshot_id=snap.pk)
    # A token without the export scope, and an annotator, are refused.
    assert client_for(engineer, scopes=["annotate"]).get("/api/v1/snapshots/").status_code == 403
    assert client_for(annotators[0]).get("/api/v1/snapshots/").status_code == 403
    # An engineer outside the project neither sees its snapshot nor may snapshot it.
    outsider = make_user(Role.ENGINEER)
    make_project(members=[(outsider, Role.ENGINEER)])
    api = client_for(outsider)
    assert api.get("/api/v1/snapshots/").json()["results"] == []
    assert api.get(f"/api/v1/snapshots/{snap.pk}/").status_code == 404
    assert api.get(f"/api/v1/snapshots/{snap.pk}/download/trl/").status_code == 404
    response = api.post("/api/v1/snapshots/", {"spec": {"projects": [judged_project.pk]}})
    assert response.status_code == 400 and "not visible" in response.json()["error"]["message"]
    # An admin sees everything.
    admin = make_user(Role.ADMIN)
    assert [s["id"] for s in client_for(admin).get("/api/v1/snapshots/").json()["results"]] == [snap.pk]


@pytest.mark.django_db
def test_snapshot_pages_list_cards(client, engineer, annotators, judged_project):
    snap = snapshot_create(
        user=engineer, spec={"projects": [judged_project.pk]}, name="weekly", enqueue=False
    )
    snap = snapshot_build(snapshot_id=snap.pk)
    client.force_login(engineer)
    page = client.get("/snapshots/")
    assert page.status_code == 200 and b"weekly v1" in page.content
    assert snap.content_hash[:12].encode() in page.content
    detail = client.get(f"/snapshots/{snap.pk}/")
    assert detail.status_code == 200 and snap.content_hash.encode() in detail.content
    assert f"/api/v1/snapshots/{snap.pk}/download/trl/?split=train".encode() in detail.content
    client.force_login(annotators[0])
    assert client.get("/snapshots/").status_code == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("split", {"train": "nan", "validation": 0.1, "test": 0.1}),  # NaN passed every share check
        ("margin_by_strength", {"1": "inf", "2": 1.0, "3": 2.0}),
        ("default_margin", "-inf"),
        ("min_reliability", "nan"),
        ("projects", [2**64]),  # past PostgreSQL's bigint
        ("projects", [1.5]),
        ("seed", 2**70),
        ("seed", -1),
        ("date_to", "9999-12-31T23:00:00-05:00"),  # no UTC time exists for it
    ],
)
def test_spec_values_a_database_or_rng_cannot_take_are_400_not_500(engineer, judged_project, field, value):
    spec = {"projects": [judged_project.pk], field: value}
    response = client_for(engineer).post("/api/v1/snapshots/", {"spec": spec})
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert DatasetSnapshot.objects.count() == 0
