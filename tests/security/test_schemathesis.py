"""Property-based API fuzzing with schemathesis: every operation of the OpenAPI schema, fed generated
requests (valid by the schema, path ids pinned to real objects so the views get past their lookups) as an
admin with a token of every scope, answers without a server error (5xx).

The schema is loaded from the in-process WSGI app (``config.wsgi.application``) at ``/api/schema/`` and
the requests go through the same app, so the middleware, auth and error handler are the production ones.
The test keeps pytest-django's per-test transaction: Django's ``close_old_connections`` signal handlers
are detached while fuzzing (as Django's own test client does), so the app shares the test's connection and
on-commit job publishing never fires (nothing reaches a broker).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings

from config.wsgi import application
from tests.factories import make_token
from tests.security.conftest import SCOPES, World

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
MAX_EXAMPLES = 10

# Left out, with the reason. Nothing else is.
EXCLUDED = {
    # Scores a whole snapshot split with a transformers model inside the request (long-running by design;
    # covered with a real tiny model by tests/training), and the fuzz world's model has no weights.
    "POST /api/v1/reward-models/{model_id}/evaluate/": "long-running: scores a split with a model",
}

# Real server errors found by this test in others' code (see docs/security.md, "Findings").
KNOWN_SERVER_ERRORS: dict[str, str] = {}

# Router routes name their object "id"; which object depends on the collection in the path.
_ID_BY_COLLECTION = {
    "projects": "project_id",
    "prompts": "prompt_id",
    "candidates": "candidate_id",
    "tasks": "task_id",
    "judgments": "judgment_id",
    "tokens": "token_id",
}


def _path_ids(world: World, spare_token_id: int) -> dict[str, object]:
    ids = dict(world.ids())
    ids.update(
        candidate_id=world.task.candidate_a_id,
        token_id=spare_token_id,
        policy_run_id=world.policy_run.pk,
    )
    return ids


def _pinned(operation, ids: dict[str, object]) -> dict[str, object]:
    path = operation.path
    pinned = {}
    for param in operation.path_parameters:
        name = param.name
        if name == "id":
            collection = path.removeprefix("/api/v1/").split("/")[0]
            pinned[name] = ids[_ID_BY_COLLECTION[collection]]
        elif name == "run_id" and path.startswith("/api/v1/policy-runs/"):
            pinned[name] = ids["policy_run_id"]
        elif name in ids and name != "fmt":
            pinned[name] = ids[name]
    return pinned


def _params():
    for label in sorted(OPERATIONS):
        marks = []
        if label in EXCLUDED:
            marks.append(pytest.mark.skip(reason=EXCLUDED[label]))
        if label in KNOWN_SERVER_ERRORS:
            marks.append(pytest.mark.xfail(reason=KNOWN_SERVER_ERRORS[label], strict=True))
        yield pytest.param(label, marks=marks, id=label)


@pytest.fixture
def detached_connection_closing():
    """Keep the test's DB connection open across WSGI requests (as django.test.Client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_schema_lists_the_api():
    assert len(OPERATIONS) >= 40
    assert all(label.split(" ")[1].startswith("/api/v1/") for label in OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("label", list(_params()))
def test_operation_never_answers_a_server_error(world: World, detached_connection_closing, label: str):
    operation = OPERATIONS[label]
    admin = world.users["admin"]
    headers = {"Authorization": f"Bearer {make_token(admin, list(SCOPES), name='fuzz')}"}
    spare = make_token(admin, list(SCOPES), name="fuzz-spare")  # a token the fuzzer may revoke
    from annotation.models import ApiToken

    spare_id = ApiToken.objects.get(key_hash=ApiToken.hash_key(spare)).pk
    pinned = _pinned(operation, _path_ids(world, spare_id))
    failures: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(path_parameters=pinned or None))
    def fuzz(case):
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(
                f"{response.status_code} for {case.method} {case.formatted_path} "
                f"query={case.query!r} body={getattr(case, 'body', None)!r:.300}"
            )

    fuzz()
    assert not failures, "\n".join(failures[:5])
