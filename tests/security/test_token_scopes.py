"""Token scopes, route by route and method by method.

``test_role_matrix`` pins what each caller gets from a GET of every route and from a list of writes. This
file pins the scope dimension on its own, for every method of every API route (the writes included): the
table below names the scopes that pass each route's scope gate. A token of any other scope, or holding
every scope but those, is refused with 403 and a message naming the scope, before any lookup or write; a
token of a listed scope passes the gate. The caller is an admin, so no role rule can refuse and what is
left is the scope. Unsafe methods are sent to ids that do not exist with an empty body, so the calls that
pass the gate end in 400/404 and write nothing. The reward server (a separate ASGI app) is covered the same
way: every route wants ``score``, whether the token comes in the header or in the ``/t/<token>/`` path, and
a token in the path never reaches the access log.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from annotation.models import ApiToken, ComparisonTask, Project, Prompt, Role
from tests.factories import make_token, make_user
from tests.security.conftest import SCOPES, World
from tests.security.routes import _walk, route_ids

ANY = "annotate export train score"
READ = "annotate export train"

# API route name -> HTTP method -> the scopes that pass its scope gate (one is enough).
# fmt: off
SCOPE_TABLE: dict[str, dict[str, str]] = {
    "project-list": {"GET": READ, "POST": "train"},
    "project-detail": {"GET": READ, "PUT": "train", "PATCH": "train", "DELETE": "train"},
    "project-members": {"GET": READ, "POST": "train"},
    "project-remove-member": {"DELETE": "train"},
    "prompt-list": {"GET": READ, "POST": "train"},
    "prompt-detail": {"GET": READ},
    "candidate-list": {"GET": READ, "POST": "train"},
    "candidate-detail": {"GET": READ},
    "task-list": {"GET": READ, "POST": "train"},
    "task-detail": {"GET": READ},
    "judgment-list": {"GET": READ, "POST": "annotate"},
    "judgment-detail": {"GET": READ},
    "token-list": {"GET": ANY, "POST": ANY},  # any token, even one without scopes: its owner's tokens
    "token-detail": {"GET": ANY, "DELETE": ANY},
    "project-import": {"POST": "train"},
    "api-task-next": {"POST": "annotate"},
    "api-task-submit": {"POST": "annotate"},
    "api-task-skip": {"POST": "annotate"},
    "api-task-adjudicate": {"POST": "annotate"},
    "api-judgment-undo": {"POST": "annotate"},
    "api-prompt-rank": {"POST": "annotate"},
    "api-review-queue": {"GET": "annotate"},
    "api-my-dashboard": {"GET": "annotate"},
    "api-quality-project": {"GET": "export"},
    "api-quality-annotator": {"GET": "export"},
    "api-quality-reliability": {"GET": "export"},
    "api-quality-leaderboard": {"GET": "export"},
    "api-quality-flags": {"GET": "export"},
    "api-quality-flags-refresh": {"POST": "export"},
    "api-quality-recompute": {"POST": "export"},
    "api-quality-flag-clear": {"POST": "export"},
    "snapshot-list": {"GET": "export", "POST": "export"},
    "snapshot-detail": {"GET": "export"},
    "snapshot-card": {"GET": "export"},
    "snapshot-download": {"GET": "export"},
    "training-run-list": {"GET": "train", "POST": "train"},
    "training-run-detail": {"GET": "train"},
    "training-run-live": {"GET": "train"},
    "training-run-metrics": {"GET": "train"},
    "training-run-cancel": {"POST": "train"},
    "training-run-retry": {"POST": "train"},
    "reward-model-list": {"GET": "train"},
    "reward-model-detail": {"GET": "train"},
    "reward-model-evaluate": {"POST": "train"},
    "reward-model-promote": {"POST": "train"},
    "project-active-reward-model": {"GET": "train"},
    "project-retrain": {"POST": "train"},
    "project-task-scoring": {"GET": "train", "POST": "train"},
    "project-task-scoring-cancel": {"POST": "train"},
    "reward-model-live-agreement": {"GET": "train"},
    "policy-run-list": {"GET": "train", "POST": "train"},
    "policy-run-detail": {"GET": "train"},
    "policy-run-openrlhf": {"POST": "train"},
    "policy-battle-create": {"POST": "train"},
    "policy-run-capability": {"GET": "train", "POST": "train"},
    "reward-sweep-list": {"GET": "train", "POST": "train"},
    "reward-sweep-detail": {"GET": "train"},
    "reward-sweep-cancel": {"POST": "train"},
    "reward-sweep-resume": {"POST": "train"},
    "policy-run-register": {"POST": "train"},
    "policy-version-list": {"GET": "train"},
    "policy-version-detail": {"GET": "train"},
    "policy-version-gate": {"POST": "train"},
    "policy-version-promote": {"POST": "train"},
    "policy-version-promotions": {"GET": "train"},
    "project-active-policy": {"GET": "train"},
    "api-spot-check-next": {"GET": "annotate"},
    "api-spot-check-verdicts": {"GET": "annotate", "POST": "annotate"},
    "snapshot-lineage": {"GET": "export"},
    "snapshot-lineage-card": {"GET": "export"},
    "reward-model-lineage": {"GET": "train"},
    "reward-model-lineage-card": {"GET": "train"},
    "policy-run-lineage": {"GET": "train"},
    "policy-run-lineage-card": {"GET": "train"},
}
# fmt: on
MISSING = 999_999  # an id no row has: a write that passes the scope gate ends in 404/400, not a change


def _api_routes() -> dict[str, tuple[tuple[str, ...], list[str]]]:
    """API route name -> (URL parameter names, HTTP methods it answers), from the URL resolver."""
    found = {}
    for name, params, callback in _walk(get_resolver().url_patterns):
        if "format" in params or name.startswith("admin:"):
            continue
        path = reverse(name, kwargs={p: (MISSING if p != "fmt" else "trl") for p in params})
        if not path.startswith("/api/v1/"):
            continue
        actions = getattr(callback, "actions", None)  # DRF viewsets: method -> action of this route
        if actions:
            methods = sorted(m.upper() for m in actions if m != "head")  # HEAD is GET without a body
        else:
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            methods = [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]
        found[name] = (params, methods)
    return found


def test_table_lists_every_api_route_and_method():
    """A new API route or method must be added to the table, so its scope is decided, not defaulted."""
    live = {(name, m) for name, (_, methods) in _api_routes().items() for m in methods}
    table = {(name, m) for name, methods in SCOPE_TABLE.items() for m in methods}
    assert live == table, {"not in the table": sorted(live - table), "gone": sorted(table - live)}


def _is_scope_refusal(response) -> bool:
    """403 with the one scope gate's code (``TokenScopes``: every API view) and a message naming the scope."""
    if response.status_code != 403:
        return False
    error = response.json()["error"]
    message = error["message"]
    named = "token lacks the" in message or "token needs one of the scopes" in message
    return named and error["code"] == "missing_scope"


def test_every_api_route_and_method_checks_the_token_scope(world: World):
    admin = world.users["admin"]
    ids = route_ids(world)
    # Tokens are per user: the admin's token routes show the admin's own tokens.
    own = make_token(admin, ["score"], name="own")
    ids["token_pk"] = ApiToken.objects.get(key_hash=ApiToken.hash_key(own)).pk
    tokens: dict[tuple[str, ...], str] = {}

    def client_with(scopes: tuple[str, ...]):
        if scopes not in tokens:
            tokens[scopes] = make_token(admin, list(scopes), name="+".join(scopes) or "none")
        return Client(HTTP_AUTHORIZATION=f"Bearer {tokens[scopes]}")  # the token alone, no session

    before = (Project.objects.count(), Prompt.objects.count(), ComparisonTask.objects.count())
    problems, checked = [], 0
    for name, (params, _methods) in _api_routes().items():
        for method, needed in SCOPE_TABLE.get(name, {}).items():
            passing = set(needed.split())
            if method == "GET":  # real objects: a passing token reads them
                kwargs = {p: _real_id(ids, name, p) for p in params}
            else:  # missing objects and an empty body: a passing token changes nothing
                kwargs = {p: (MISSING if p != "fmt" else "trl") for p in params}
            path = reverse(name, kwargs=kwargs)
            callers = [(s,) for s in SCOPES] + [()]
            if passing != set(SCOPES):
                callers.append(tuple(s for s in SCOPES if s not in passing))  # everything but the need
            for scopes in callers:
                client = client_with(scopes)
                if method == "GET":
                    response = client.get(path)
                else:
                    response = getattr(client, method.lower())(path, {}, content_type="application/json")
                checked += 1
                allowed = passing == set(SCOPES) or bool(passing & set(scopes))  # ANY: even none
                got = response.status_code
                if got >= 500:
                    problems.append(f"{method} {path} with {scopes}: server error {got}")
                elif not allowed and not _is_scope_refusal(response):
                    problems.append(f"{method} {path} with {scopes}: {got}, expected a 403 naming the scope")
                elif allowed and method == "GET" and got != 200:
                    problems.append(f"{method} {path} with {scopes}: {got}, expected 200")
                elif allowed and method != "GET" and got not in (400, 404):
                    problems.append(f"{method} {path} with {scopes}: {got}, expected to pass the gate")
    assert checked > 300
    assert not problems, "\n".join(problems)
    assert (Project.objects.count(), Prompt.objects.count(), ComparisonTask.objects.count()) == before


def _real_id(ids: dict, route_name: str, param: str):
    if param == "pk":
        basename = route_name.split("-")[0]
        return ids.get(f"{basename}_pk", ids["project_pk"])
    if param == "run_id" and "policy" in route_name:
        return ids["policy_run_id"]
    return ids[param]


# --- the reward server --------------------------------------------------------------------------------------

REWARD_ROUTES = [
    ("POST", "/v1/reward/score", {"items": [{"prompt": "Hi", "response": " there"}]}),
    ("POST", "/get_reward", {"query": ["Hi there"], "prompts": ["Hi"], "labels": [""]}),
    ("POST", "/classify", {"input": ["Hi there"]}),
    ("POST", "/pooling", {"input": "Hi there", "task": "classify"}),
    ("POST", "/score", {"text_1": "Hi", "text_2": [" there"]}),
    ("GET", "/v1/models", None),
    ("POST", "/v1/admin/reload", None),
]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_reward_server_wants_the_score_scope_on_every_route(tiny_reward_model_dir, tmp_path):
    import httpx

    from rewardsvc.server import ServerConfig
    from tests.rewardsvc.conftest import serve, write_rm_dir

    engineer = make_user(Role.ENGINEER)
    tokens = {scope: make_token(engineer, [scope], name=scope) for scope in SCOPES}
    others = make_token(engineer, [s for s in SCOPES if s != "score"], name="all-but-score")
    model_dir = write_rm_dir(tiny_reward_model_dir, tmp_path / "rm")
    config = ServerConfig(model_dir=str(model_dir), poll_seconds=0, sample_rate=0)
    access = logging.getLogger("uvicorn.access")
    capture = _Capture()
    with serve(config) as srv:
        old_level = access.level
        access.setLevel(logging.INFO)  # the fixture runs uvicorn at "warning"; the access log is INFO
        access.addHandler(capture)
        try:
            problems = []
            for method, route, body in REWARD_ROUTES:
                for label, token in [*tokens.items(), ("all-but-score", others)]:
                    for where in ("header", "path"):
                        if where == "header":
                            url, headers = srv.url + route, {"Authorization": f"Bearer {token}"}
                        else:
                            url, headers = f"{srv.url}/t/{token}{route}", {}
                        response = httpx.request(method, url, json=body, headers=headers, timeout=30)
                        expected = 200 if label == "score" else 403
                        if response.status_code != expected:
                            problems.append(
                                f"{method} {route} ({where}) with {label}: {response.status_code}"
                            )
                        elif (
                            expected == 403
                            and "lacks the 'score' scope" not in response.json()["error"]["message"]
                        ):
                            problems.append(f"{method} {route} ({where}) with {label}: {response.text}")
                unknown = httpx.request(method, f"{srv.url}/t/pl_not_a_token{route}", json=body, timeout=30)
                if unknown.status_code != 401:
                    problems.append(f"{method} {route} with an unknown token: {unknown.status_code}")
            assert not problems, "\n".join(problems)
        finally:
            access.removeHandler(capture)
            access.setLevel(old_level)
    path_lines = [line for line in capture.lines if "/t/" in line]
    assert path_lines, "no access log lines were captured"
    assert all("/t/***/" in line for line in path_lines), path_lines[:3]
    for token in [*tokens.values(), others]:
        assert not any(token in line for line in capture.lines), "a token reached the access log"
