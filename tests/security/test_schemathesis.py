"""Property-based API fuzzing with schemathesis: every operation of the OpenAPI schema, fed generated
requests (path ids pinned to real objects so the views get past their lookups) as an admin with a token of
every scope, answers as the schema says:

- never a server error (5xx);
- only documented statuses, with the documented content type and a body that matches the schema (the one
  error envelope for every error, see docs/api.md "Errors");
- requests valid by the schema are not refused with a 400, except for a field whose validity depends on
  what exists (``STATE_RULES``); requests that break the schema are refused (4xx), never accepted.

The schema is loaded from the in-process WSGI app (``config.wsgi.application``) at ``/api/schema/`` and
the requests go through the same app, so the middleware, auth and error handler are the production ones.
The test keeps pytest-django's per-test transaction: Django's ``close_old_connections`` signal handlers
are detached while fuzzing (as Django's own test client does), so the app shares the test's connection and
on-commit job publishing never fires (nothing reaches a broker).
"""

from __future__ import annotations

import dataclasses
import json
import re

import jsonschema
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.factories import make_token
from tests.security.conftest import SCOPES, World
from training.datasets.spec import SnapshotSpec

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
# Examples per operation and mode: enough to reach every parameter's edge cases (the explicit examples and
# the strategy's boundaries come first), few enough for a couple of minutes on a loaded 2-core machine.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 6}

# Left out, with the reason. Nothing else is.
EXCLUDED = {
    # Scores a whole snapshot split with a transformers model inside the request (long-running by design;
    # covered with a real tiny model by tests/training), and the fuzz world's model has no weights.
    "POST /api/v1/reward-models/{model_id}/evaluate/": "long-running: scores a split with a model",
}

# Real server errors found by this test in others' code (see docs/security.md, "Findings").
KNOWN_SERVER_ERRORS: dict[str, str] = {}

# Body fields whose validity depends on the database or on another field, which a schema cannot say: a
# schema-valid value may name no object, or break a rule of the current state. A 400 for a request valid
# by the schema passes only when every field its error names is listed here for the operation; any other
# 400 (a type, range or format the schema did not state) fails the test.
STATE_RULES: dict[str, set[str]] = {
    "POST /api/v1/candidates/": {"prompt"},  # a prompt of your projects
    # two distinct candidates of one prompt of this project; a gold task's known answer
    "POST /api/v1/tasks/": {"candidate_a", "candidate_b", "gold_choice"},
    # an open task; strength if the project asks for it; criteria the project defines
    "POST /api/v1/judgments/": {"task", "strength", "criteria"},
    "POST /api/v1/tasks/{task_id}/submit": {"task", "strength", "criteria"},
    "POST /api/v1/tasks/{task_id}/adjudicate": {"task"},  # not yet adjudicated
    "POST /api/v1/prompts/{prompt_id}/rank": {"order"},  # distinct candidates of this prompt
    "POST /api/v1/projects/": {"name"},  # unique
    "PUT /api/v1/projects/{id}/": {"name"},
    "PATCH /api/v1/projects/{id}/": {"name"},
    "POST /api/v1/projects/{id}/members/": {"user_id", "username"},  # exactly one, of an existing user
    "POST /api/v1/projects/{project_id}/import": {"file", "source"},  # exactly one, that can be read
    "POST /api/v1/quality/flags/{flag_id}/clear": {"status"},  # an open flag
    # visible projects; the spec's value rules (mode names, a split summing to 1, dates): SnapshotSpec.validate
    "POST /api/v1/snapshots/": {f.name for f in dataclasses.fields(SnapshotSpec)},
    # what the kind needs; config keys are those of the kind's config dataclass (typed, unknown keys refused:
    # training.configs), which depend on ``kind`` and so are not in the schema: "config." covers them
    "POST /api/v1/policy-runs/": {"project", "snapshot", "reward_model", "kind", "config", "config."},
    "POST /api/v1/runs/": {"snapshot", "config", "config."},
    # succeeded policy runs you can see, of one SFT model, within the cap; config as PolicyBattleSpec (typed)
    "POST /api/v1/policy-battles/": {"run_ids", "config", "config."},
    # a ready snapshot with validation pairs; the sweep config's ranges and parameters (SweepConfig)
    "POST /api/v1/reward-sweeps/": {"snapshot", "config", "config."},
    # PPO runs only; a URL Django's URLValidator accepts (the schema's ``uri`` format is looser)
    "POST /api/v1/policy-runs/{run_id}/openrlhf/": {"kind", "reward_server_url"},
    # a succeeded PPO/GRPO/RLOO/DPO run with a saved model; gate keys are GateConfig's (typed, unknown keys
    # and sets refused, ranges: training.policy.capability.config), not in the schema: "gate." covers them
    "POST /api/v1/policy-runs/{run_id}/capability/": {"policy_run", "gate", "gate."},
    "POST /api/v1/tokens/": {"expires_at", "scopes"},  # in the future; within the calling token's scopes
    # a succeeded policy run with its model directory, not yet registered
    "POST /api/v1/policy-runs/{run_id}/register/": {"run"},
    # gate keys are PolicyGateConfig's fields with their ranges (typed, unknown keys refused); a forced
    # promotion needs a reason
    "POST /api/v1/policy-versions/{policy_id}/gate/": {"gate", "gate."},
    "POST /api/v1/policy-versions/{policy_id}/promote/": {"gate", "gate.", "reason"},
    "POST /api/v1/reward-models/{model_id}/promote/": {"reason"},  # a forced promotion needs a reason
    "POST /api/v1/projects/{project_id}/spot-checks/verdicts": {"candidate"},  # a sample of this project
}
# Error codes that report on the content of an uploaded file, which the schema sees as opaque bytes.
CONTENT_ERRORS: dict[str, str] = {"POST /api/v1/projects/{project_id}/import": "invalid_import"}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# DRF reads JSON scalars leniently, by design and as docs/api.md says: a scalar of another type is
# converted when it can be (5 for a text field is "5", "5" for a number is 5, false for a number is 0.0). A
# schema-breaking request accepted only through such a conversion is not a finding; any other accepted
# violation is (a range, an enum, a missing field, null, an object or list where a scalar belongs). Not
# findings either: the Authorization header a mutation names (the test's real token replaces it), and a
# mutation that did not break its field (e.g. aimed at one ``oneOf`` branch, still matching the other).
_VIOLATION = re.compile(r"\b(query|body)\b.*violates `(\w+)` at /properties/([^/\s]+)")
_REPLACED_HEADER = re.compile(r"header: violates .* at /properties/Authorization")
_SCALAR = (str, int, float, bool)


def _declared(case, location: str, name: str) -> dict | None:
    """The schema the API document gives the body property or query parameter ``name``."""
    operation = SCHEMA.raw_schema["paths"][case.operation.path][case.method.lower()]
    if location == "query":
        params = operation.get("parameters", [])
        return next((p["schema"] for p in params if p["in"] == "query" and p["name"] == name), None)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    component = SCHEMA.raw_schema["components"]["schemas"].get(body.get("$ref", "").rsplit("/", 1)[-1], {})
    return component.get("properties", {}).get(name)


def _still_valid(value, schema: dict | None) -> bool:
    if schema is None or "$ref" in json.dumps(schema):
        return False
    if value is None:
        return bool(schema.get("nullable"))
    return jsonschema.Draft4Validator(schema).is_valid(value)


def _is_not_a_finding(line: str, case) -> bool:
    if _REPLACED_HEADER.search(line):
        return True
    match = _VIOLATION.search(line)
    if match is None:
        return False
    location, keyword, name = match.groups()
    sent = case.body if location == "body" else case.query
    if not isinstance(sent, dict) or name not in sent:
        return False
    value = sent[name]
    if _still_valid(value, _declared(case, location, name)):
        return True
    return keyword in {"type", "oneOf"} and isinstance(value, _SCALAR)


def _state_rule_covers(label: str, field: str) -> bool:
    """``field`` is one of the operation's ``STATE_RULES`` names, or under one ending in a dot."""
    rules = STATE_RULES.get(label, set())
    return field in rules or any(rule.endswith(".") and field.startswith(rule) for rule in rules)


def schema_valid_request_accepted(ctx, response, case):
    """schemathesis's ``positive_data_acceptance``, except a 400 that names only ``STATE_RULES`` fields."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code != 400:
            raise
        error = _error(response)
        fields = set(error.get("fields") or {})
        if fields and all(_state_rule_covers(case.operation.label, name) for name in fields):
            return None
        if error.get("code") and error.get("code") == CONTENT_ERRORS.get(case.operation.label):
            return None
        raise


def schema_invalid_request_refused(ctx, response, case):
    """schemathesis's ``negative_data_rejection``, except a violation DRF coerces into a valid value."""
    if any(isinstance(value, dict | list) for value in (case.query or {}).values()):
        # An object in the query is exploded into other names, a list into repeats the server reads one of:
        # what reaches the server is not the violation the mutation describes.
        return None
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData as failure:
        violations = failure.message.partition("Invalid component:")[2].strip().splitlines()
        if violations and all(_is_not_a_finding(v, case) for v in violations):
            return None
        raise


def _error(response) -> dict:
    try:
        return json.loads(response.content).get("error") or {}
    except (ValueError, AttributeError):
        return {}


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
        scoring_job_id=999_999,  # no scoring job in the world: the cancel route answers its JSON 404
        sweep_id=999_999,  # no reward-model sweep in the world: its routes answer their JSON 404
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
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            marks = []
            if label in EXCLUDED:
                marks.append(pytest.mark.skip(reason=EXCLUDED[label]))
            if label in KNOWN_SERVER_ERRORS:
                marks.append(pytest.mark.xfail(reason=KNOWN_SERVER_ERRORS[label], strict=True))
            yield pytest.param(label, mode, marks=marks, id=f"{label} {mode.value}")


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
@pytest.mark.parametrize(("label", "mode"), list(_params()))
def test_operation_answers_as_documented(
    world: World, detached_connection_closing, label: str, mode: GenerationMode
):
    operation = OPERATIONS[label]
    admin = world.users["admin"]
    headers = {"Authorization": f"Bearer {make_token(admin, list(SCOPES), name='fuzz')}"}
    spare = make_token(admin, list(SCOPES), name="fuzz-spare")  # a token the fuzzer may revoke
    from annotation.models import ApiToken

    spare_id = ApiToken.objects.get(key_hash=ApiToken.hash_key(spare)).pk
    pinned = _pinned(operation, _path_ids(world, spare_id))
    checks = [*CHECKS, schema_valid_request_accepted, schema_invalid_request_refused]
    failures: dict[tuple[str, int], str] = {}

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure is a finding, never a flake
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=pinned or None))
    def fuzz(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                failures.setdefault(
                    (failure.title, response.status_code),
                    f"{failure.title} ({response.status_code}): {failure.message.strip()[:400]}\n"
                    f"    for {case.method} {case.formatted_path} query={case.query!r:.200} "
                    f"body={getattr(case, 'body', None)!r:.1500}\n    answer {response.text[:300]}",
                )

    fuzz()
    assert not failures, "\n".join(failures.values())


def _raw_operations():
    for path, item in SCHEMA.raw_schema["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method, path, operation


def test_every_operation_documents_its_errors_with_the_one_envelope():
    error = SCHEMA.raw_schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    for method, path, operation in _raw_operations():
        responses = operation["responses"]
        expected = {"401", "403", "429"} | (
            {"400", "404", "409"} if method in {"post", "put", "patch"} else set()
        )
        assert expected <= set(responses), f"{method} {path}: {sorted(responses)}"
        for status in expected:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_id_and_page_size_parameters_are_integers_and_read_strictly(world: World):
    prompts = SCHEMA.raw_schema["paths"]["/api/v1/prompts/"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in prompts}
    assert by_name["project"]["type"] == "integer"
    assert (by_name["page_size"]["minimum"], by_name["page_size"]["maximum"]) == (1, 1000)
    client = world.client_for("admin", "export")
    for query, field in [
        ({"project": "1.5"}, "project"),  # matched nothing before (a decimal filter)
        ({"project": "1.5e300"}, "project"),
        ({"page_size": "null"}, "page_size"),  # silently the default page before
        ({"page_size": "5000"}, "page_size"),  # silently capped at 1000 before
        ({"page_size": "0"}, "page_size"),
    ]:
        response = client.get("/api/v1/prompts/", query)
        assert response.status_code == 400, (query, response.content)
        assert field in response.json()["error"]["fields"], (query, response.json())
    response = client.get("/api/v1/tokens/", {"active": "maybe"})  # every token was listed before
    assert response.status_code == 400 and "active" in response.json()["error"]["fields"]
    ok = client.get(
        "/api/v1/prompts/", {"project": str(world.project.pk), "page_size": "", "created_after": ""}
    )
    assert ok.status_code == 200 and len(ok.json()["results"]) == 1
