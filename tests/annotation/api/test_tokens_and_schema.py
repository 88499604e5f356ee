"""API tokens (create shows the key once, list hides it, revoke stops it), the create_token command and
the OpenAPI schema."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command
from drf_spectacular.validation import validate_schema

from annotation.models import ApiToken

API = "/api/v1"


def test_token_lifecycle_through_the_api(client_for, world):
    session = client_for(world.engineer)
    created = session.post(
        f"{API}/tokens/", {"name": "laptop", "scopes": ["annotate", "train"]}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith("pl_") and body["key_prefix"] == key[:8]
    stored = ApiToken.objects.get(pk=body["id"])
    assert stored.key_hash == ApiToken.hash_key(key) and key not in (stored.key_hash, stored.key_prefix)
    assert stored.scopes == ["annotate", "train"]
    listed = session.get(f"{API}/tokens/").json()["results"]
    assert [t["id"] for t in listed] == [body["id"]]
    assert "key" not in listed[0]
    # The key works, and the token sees only its owner's tokens.
    with_token = client_for(token=key)
    assert with_token.get(f"{API}/projects/{world.project.pk}/").status_code == 200
    assert client_for(world.annotator).get(f"{API}/tokens/{body['id']}/").status_code == 404
    # Revoke, then the key is refused; the listing shows it revoked and `active` filters it out.
    assert session.delete(f"{API}/tokens/{body['id']}/").status_code == 204
    assert with_token.get(f"{API}/projects/").status_code == 401
    assert session.get(f"{API}/tokens/{body['id']}/").json()["revoked_at"]
    assert session.get(f"{API}/tokens/", {"active": "true"}).json()["results"] == []


def test_token_create_rejects_unknown_or_missing_scopes(client_for, world):
    session = client_for(world.engineer)
    response = session.post(f"{API}/tokens/", {"name": "x", "scopes": ["root"]}, format="json")
    assert response.status_code == 400
    assert "scopes" in response.json()["error"]["fields"]
    response = session.post(f"{API}/tokens/", {"name": "x", "scopes": []}, format="json")
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_create_token_command_prints_a_working_key(client_for, world):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", world.annotator.username, "cli", "annotate,export", stdout=out, stderr=err)
    key = out.getvalue().strip()
    token = ApiToken.objects.get(key_hash=ApiToken.hash_key(key))
    assert (token.user, token.name, token.scopes) == (world.annotator, "cli", ["annotate", "export"])
    assert client_for(token=key).get(f"{API}/tasks/").status_code == 200
    call_command(
        "create_token", world.annotator.username, "x", "--scopes", "train", "--expires-days", "1", stdout=out
    )
    assert ApiToken.objects.get(name="x").expires_at is not None
    with pytest.raises(CommandError, match="scopes"):
        call_command("create_token", world.annotator.username, "bad", "root", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="No user"):
        call_command("create_token", "nobody", "bad", "annotate", stdout=out, stderr=err)


def test_schema_is_valid_openapi_with_core_paths(client_for, world):
    response = client_for().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/projects/",
        "/api/v1/projects/{id}/",
        "/api/v1/projects/{id}/members/",
        "/api/v1/projects/{id}/members/{user_id}/",
        "/api/v1/prompts/",
        "/api/v1/candidates/",
        "/api/v1/tasks/",
        "/api/v1/tasks/{id}/",
        "/api/v1/judgments/",
        "/api/v1/tokens/",
        "/api/v1/tokens/{id}/",
    ):
        assert path in paths, path
    submit = paths["/api/v1/judgments/"]["post"]
    assert {"200", "201"} <= set(submit["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in submit["parameters"])
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"
    assert client_for().get("/api/docs/").status_code == 200
