"""The reward server, run for real (uvicorn on a loopback port): route contracts with exact JSON, equal
scores across routes and with a direct forward, batching across requests, auth and limits, sampling."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import httpx
import pytest

from annotation.models import ApiToken, Role
from rewardsvc.batching import BatchingConfig
from rewardsvc.models import ScoredSample
from rewardsvc.scoring import RewardScorer
from rewardsvc.server import ServerConfig
from tests.factories import add_member, make_project, make_token, make_user
from training.rm_encoding import SequenceLayout, score_sequences

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

PROMPT = "\n\nHuman: What is the capital of France?\n\nAssistant:"
RESPONSES = [" Paris is the capital of France.", " I do not know.", " Paris."]


def direct_rewards(artifact_dir, prompt: str, responses: list[str]) -> list[float]:
    """The encoding and a one-at-a-time forward on the saved model, no server: the reference."""
    scorer = RewardScorer.load(artifact_dir)
    layout = SequenceLayout(scorer.tokenizer)
    seqs = [layout.assemble(layout.ids(prompt), layout.ids(r)) for r in responses]
    return score_sequences(scorer.model, seqs, pad_token_id=scorer.pad_id, batch_size=1)


@pytest.fixture
def served(make_rm, tiny_reward_model_dir):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True, mean=0.25, std=2.0)
    token = make_token(engineer, ["score"])
    return project, rm, token, engineer


def test_routes_contracts_and_equal_scores(served, reward_server):
    project, rm, token, _ = served
    expected = direct_rewards(rm.artifact_dir, PROMPT, RESPONSES)
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=1.0, sample_flush_seconds=0.1)
    with reward_server(config) as srv:
        auth = {"Authorization": f"Bearer {token}"}
        # native
        body = {"items": [{"prompt": PROMPT, "response": r} for r in RESPONSES], "normalize": False}
        native = httpx.post(srv.url + "/v1/reward/score", json=body, headers=auth).json()
        assert set(native) == {"model", "model_version", "rewards", "normalized", "truncated"}
        assert native["model"] == f"rm-p{project.pk}-v1" and native["model_version"] == 1
        assert native["normalized"] is False and native["truncated"] == [False, False, False]
        assert native["rewards"] == pytest.approx(expected, abs=1e-5)
        # normalised with the stored mean/std, raw ones alongside; pinning the served version works
        body.update(normalize=True, model=1)
        norm = httpx.post(srv.url + "/v1/reward/score", json=body, headers=auth).json()
        assert norm["rewards"] == pytest.approx([(r - 0.25) / 2.0 for r in native["rewards"]], abs=1e-6)
        assert (
            norm["raw_rewards"] == pytest.approx(native["rewards"], abs=1e-6) and norm["normalized"] is True
        )
        # OpenRLHF: exactly its payload, only a Content-Type header, token in the URL path
        payload = {"query": [PROMPT + r for r in RESPONSES], "prompts": [PROMPT] * 3, "labels": ["", "", ""]}
        peer = httpx.post(
            f"{srv.url}/t/{token}/get_reward", json=payload, headers={"Content-Type": "application/json"}
        )
        assert peer.status_code == 200
        got = peer.json()
        assert set(got) == {"rewards", "scores", "extra_logs"} and got["extra_logs"] == {
            "truncated": [0.0, 0.0, 0.0]
        }
        assert got["rewards"] == got["scores"] == pytest.approx(native["rewards"], abs=1e-6)
        # vLLM /classify: raw logits without activation, sigmoid with it
        text = PROMPT + RESPONSES[0]
        raw = httpx.post(
            srv.url + "/classify",
            json={"model": f"rm-p{project.pk}-v1", "input": [text], "use_activation": False},
            headers=auth,
        ).json()
        n_tokens = len(SequenceLayout(RewardScorer.load(rm.artifact_dir).tokenizer).ids(text)) + 1
        assert raw["object"] == "list" and raw["model"] == f"rm-p{project.pk}-v1"
        assert set(raw) == {"id", "object", "created", "model", "data", "usage"}
        assert raw["data"] == [  # same text, another batch shape: equal up to float32 rounding
            {
                "index": 0,
                "label": "LABEL_0",
                "probs": [pytest.approx(native["rewards"][0], abs=1e-5)],
                "num_classes": 1,
            }
        ]
        assert raw["usage"]["prompt_tokens"] == n_tokens
        act = httpx.post(srv.url + "/classify", json={"input": text}, headers=auth).json()
        assert act["data"][0]["probs"][0] == pytest.approx(1 / (1 + math.exp(-native["rewards"][0])))
        pool = httpx.post(
            srv.url + "/pooling",
            json={"input": text, "task": "classify", "use_activation": False},
            headers=auth,
        )
        assert pool.json()["data"] == [
            {"index": 0, "object": "pooling", "data": [pytest.approx(native["rewards"][0], abs=1e-6)]}
        ]
        assert (
            httpx.post(srv.url + "/pooling", json={"input": text, "task": "embed"}, headers=auth).status_code
            == 400
        )
        # messages prompt -> chat template of the RM tokenizer
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        chat = httpx.post(
            srv.url + "/v1/reward/score",
            json={"items": [{"prompt": msgs, "response": "Paris."}]},
            headers=auth,
        )
        scorer = RewardScorer.load(rm.artifact_dir)
        assert chat.json()["rewards"] == pytest.approx(
            [scorer.forward([scorer.encode(msgs, "Paris.")])[0]], abs=1e-5
        )
        # another version than the served one is refused clearly
        wrong = httpx.post(
            srv.url + "/v1/reward/score", json={"model": 7, "items": body["items"]}, headers=auth
        )
        assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_loaded"
        # health, models, metrics
        assert httpx.get(srv.url + "/health").json() == {
            "status": "ok",
            "model": f"rm-p{project.pk}-v1",
            "model_version": 1,
        }
        models = httpx.get(srv.url + "/v1/models", headers=auth).json()
        assert [m["id"] for m in models["data"]] == [f"rm-p{project.pk}-v1"] and models["data"][0]["serving"]
        metrics = httpx.get(srv.url + "/metrics").text
        for name in (
            "preflab_rm_requests_total",
            "preflab_rm_batch_items_bucket",
            "preflab_rm_request_seconds_bucket",
            "preflab_rm_queue_depth",
        ):
            assert name in metrics
        # sampled traffic is written off the hot path
        for _ in range(100):
            if ScoredSample.objects.filter(reward_model=rm).count() >= 3:
                break
            asyncio.run(asyncio.sleep(0.05))
    samples = ScoredSample.objects.filter(reward_model=rm, source="traffic")
    assert samples.count() >= 3
    assert {s.response for s in samples} >= set(RESPONSES)


def test_concurrent_single_item_requests_are_batched(served, reward_server):
    project, rm, token, _ = served
    config = ServerConfig(
        project_id=project.pk,
        poll_seconds=0,
        sample_rate=0,
        batching=BatchingConfig(window_ms=100, forward_overhead_tokens=10_000),
    )
    texts = [PROMPT + f" Answer number {i}." for i in range(16)]

    async def fire(url):
        async with httpx.AsyncClient() as client:
            rs = await asyncio.gather(
                *(
                    client.post(
                        f"{url}/t/{token}/get_reward",
                        json={"query": [t], "prompts": [PROMPT], "labels": [""]},
                    )
                    for t in texts
                )
            )
        return [r.json()["rewards"][0] for r in rs]

    with reward_server(config) as srv:
        rewards = asyncio.run(fire(srv.url))
        stats = srv.service.models.current.batcher.stats
        assert stats.items == 16
        assert stats.forwards < 16 and stats.max_items_in_forward > 1
    scorer = RewardScorer.load(rm.artifact_dir)
    alone = [scorer.forward([scorer.encode(PROMPT, t[len(PROMPT) :])])[0] for t in texts]
    assert rewards == pytest.approx(alone, abs=1e-5)


def test_auth_scopes_limits_and_rate_limits(served, reward_server):
    project, rm, token, engineer = served
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    no_scope = make_token(engineer, ["annotate"])
    limited = make_token(annotator, ["score"], name="limited")
    ApiToken.objects.filter(name="limited").update(rate_limit_per_minute=3)
    config = ServerConfig(
        project_id=project.pk,
        poll_seconds=0,
        sample_rate=0,
        max_items_per_request=4,
        max_chars_per_item=100,
        max_body_bytes=10_000,
    )
    item = {"prompt": "Hi", "response": " there"}
    with reward_server(config) as srv:
        url = srv.url + "/v1/reward/score"
        r = httpx.post(url, json={"items": [item]})
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
        r = httpx.post(url, json={"items": [item]}, headers={"Authorization": "Bearer pl_nope"})
        assert r.status_code == 401 and r.json() == {
            "error": {"code": "authentication_failed", "message": "Invalid, revoked or expired token."}
        }
        r = httpx.post(url, json={"items": [item]}, headers={"Authorization": f"Bearer {no_scope}"})
        assert r.status_code == 403 and r.json()["error"]["message"] == "This token lacks the 'score' scope."
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(url, json={"items": [item] * 5}, headers=auth)
        assert r.status_code == 413 and r.json() == {
            "error": {"code": "too_many_items", "message": "5 items in one request; the limit is 4."}
        }
        r = httpx.post(url, json={"items": [{"prompt": "x", "response": "y" * 101}]}, headers=auth)
        assert r.status_code == 413 and r.json()["error"]["code"] == "item_too_large"
        r = httpx.post(url, content=b"x" * 10_001, headers=auth)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = httpx.post(url, content=b"{not json", headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "parse_error"
        r = httpx.post(url, json={"items": [{"prompt": 3, "response": None}]}, headers=auth)
        assert r.status_code == 400 and "items[0].response" in r.json()["error"]["fields"]
        # a message without a string role is refused as input (it used to crash the encoder: a 500)
        bad_role = {"prompt": [{"role": None, "content": "hi"}], "response": "x"}
        r = httpx.post(url, json={"items": [bad_role]}, headers=auth)
        assert r.status_code == 400 and "items[0].prompt" in r.json()["error"]["fields"]
        r = httpx.post(url, json={"items": [item]}, headers=auth)
        assert r.status_code == 200
        # per-token rate limit (3 scored items per minute): the 4th item is refused with Retry-After
        lim = {"Authorization": f"Bearer {limited}"}
        assert httpx.post(url, json={"items": [item] * 3}, headers=lim).status_code == 200
        r = httpx.post(url, json={"items": [item]}, headers=lim)
        assert (
            r.status_code == 429
            and r.json()["error"]["code"] == "throttled"
            and int(r.headers["retry-after"]) >= 1
        )
        # the admin reload route needs an engineer/admin token
        assert httpx.post(srv.url + "/v1/admin/reload", headers=lim).status_code == 403
        reload = httpx.post(srv.url + "/v1/admin/reload", headers=auth).json()
        assert reload == {"swapped": False, "model": f"rm-p{project.pk}-v1", "model_version": 1}
        # no trusted network by default: a header-less request from loopback is refused
        assert httpx.post(srv.url + "/get_reward", json={"query": ["Hi there"]}).status_code == 401


def test_revocation_deactivation_and_new_limits_reach_a_running_server_within_the_check_time(
    served, reward_server
):
    """Token lookups are cached for 30 s, but every ``token_check_seconds`` the server checks its cached
    tokens against the database: a revoked token, a deactivated user's token and a lowered limit take
    effect within that, not after the cache time."""
    from django.utils import timezone

    from annotation.services.projects import api_token_revoke

    project, _, _, _ = served
    revoked_user, inactive_user, limited_user = (make_user(Role.ANNOTATOR) for _ in range(3))
    for user in (revoked_user, inactive_user, limited_user):
        add_member(project, user)
    to_revoke = make_token(revoked_user, ["score"], name="to-revoke")
    to_deactivate = make_token(inactive_user, ["score"], name="to-deactivate")
    to_limit = make_token(limited_user, ["score"], name="to-limit")
    config = ServerConfig(
        project_id=project.pk, poll_seconds=0, sample_rate=0, token_cache_seconds=30, token_check_seconds=0.2
    )
    item = {"prompt": "Hi", "response": " there"}

    def score(raw: str) -> int:
        return httpx.post(
            url, json={"items": [item] * 2}, headers={"Authorization": f"Bearer {raw}"}
        ).status_code

    def eventually(raw: str, status: int) -> None:
        deadline = time.monotonic() + 10
        while score(raw) != status:
            assert time.monotonic() < deadline, f"still not {status} after 10 s"
            time.sleep(0.1)

    with reward_server(config) as srv:
        url = srv.url + "/v1/reward/score"
        assert [score(t) for t in (to_revoke, to_deactivate, to_limit)] == [200, 200, 200]  # all cached now
        api_token_revoke(token=ApiToken.objects.get(name="to-revoke"))
        type(inactive_user).objects.filter(pk=inactive_user.pk).update(is_active=False)
        ApiToken.objects.filter(name="to-limit").update(rate_limit_per_minute=1)
        started = time.monotonic()
        eventually(to_revoke, 401)
        eventually(to_deactivate, 401)
        eventually(to_limit, 429)  # 2 items over a limit of 1 per minute
        assert time.monotonic() - started < 10  # far under the 30 s cache time
        # an expired token goes the same way
        expiring_user = make_user(Role.ANNOTATOR)
        add_member(project, expiring_user)
        expiring = make_token(expiring_user, ["score"], name="expiring")
        assert score(expiring) == 200
        ApiToken.objects.filter(name="expiring").update(expires_at=timezone.now())
        eventually(expiring, 401)


def test_token_infos_by_id_keeps_only_live_tokens_and_resolves_staff():
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from rewardsvc.selectors import token_info, token_infos_by_id

    engineer, annotator, gone = make_user(Role.ENGINEER), make_user(Role.ANNOTATOR), make_user(Role.ANNOTATOR)
    raw_engineer = make_token(engineer, ["score", "train"], name="e")
    raw_annotator = make_token(annotator, ["score"], name="a")
    make_token(gone, ["score"], name="g")
    ids = dict(ApiToken.objects.values_list("name", "pk"))
    ApiToken.objects.filter(name="g").update(expires_at=timezone.now())
    live = token_infos_by_id([ids["e"], ids["a"], ids["g"], 10**9], chunk=1)
    assert set(live) == {ids["e"], ids["a"]}
    # the same answer as the per-request lookup
    assert live[ids["e"]] == token_info(raw_engineer) and live[ids["e"]].is_staff
    assert live[ids["a"]] == token_info(raw_annotator) and not live[ids["a"]].is_staff
    annotator.groups.add(Group.objects.get(name=Role.ENGINEER))
    assert token_infos_by_id([ids["a"]])[ids["a"]].is_staff


@pytest.mark.redis
def test_replicas_on_one_redis_share_each_tokens_rate_limit(served, reward_server, redis_url):
    """Two server processes' worth of state (two apps, two ports) with ``PREFLAB_CACHE_URL`` on one Redis:
    items scored through one replica count against the token's limit on the other."""
    project, _, _, _ = served
    limited_user = make_user(Role.ANNOTATOR)
    add_member(project, limited_user)
    limited = make_token(limited_user, ["score"], name="shared-limit")
    ApiToken.objects.filter(name="shared-limit").update(rate_limit_per_minute=3)
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0, rate_limit_url=redis_url)
    item = {"prompt": "Hi", "response": " there"}
    lim = {"Authorization": f"Bearer {limited}"}
    with reward_server(config) as first, reward_server(config) as second:
        first.service._buckets.clear()
        try:
            assert httpx.post(
                first.url + "/v1/reward/score", json={"items": [item] * 2}, headers=lim
            ).is_success
            assert httpx.post(second.url + "/v1/reward/score", json={"items": [item]}, headers=lim).is_success
            r = httpx.post(second.url + "/v1/reward/score", json={"items": [item]}, headers=lim)
            assert r.status_code == 429 and r.json()["error"]["code"] == "throttled"
            assert 1 <= int(r.headers["retry-after"]) <= 20  # one item's worth at 3 per minute
            r = httpx.post(first.url + "/get_reward", json={"query": ["Hi there"]}, headers=lim)
            assert r.status_code == 429  # every route charges the same bucket
        finally:
            first.service._buckets.clear()


def test_an_unreachable_rate_limit_store_falls_back_to_per_process_limits(served, reward_server):
    """Redis down (nothing listens on port 1): requests still succeed and the limit still holds, counted in
    this process, with a warning; the store is not retried on every request."""
    project, _, _, _ = served
    limited_user = make_user(Role.ANNOTATOR)
    add_member(project, limited_user)
    limited = make_token(limited_user, ["score"], name="fallback-limit")
    ApiToken.objects.filter(name="fallback-limit").update(rate_limit_per_minute=2)
    config = ServerConfig(
        project_id=project.pk, poll_seconds=0, sample_rate=0, rate_limit_url="redis://127.0.0.1:1/0"
    )
    item = {"prompt": "Hi", "response": " there"}
    lim = {"Authorization": f"Bearer {limited}"}
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("preflab.ratelimit").addHandler(handler)
    try:
        with reward_server(config) as srv:
            url = srv.url + "/v1/reward/score"
            codes = [httpx.post(url, json={"items": [item]}, headers=lim).status_code for _ in range(3)]
    finally:
        logging.getLogger("preflab.ratelimit").removeHandler(handler)
    assert codes == [200, 200, 429]
    warnings = [r for r in records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # one failure, then local counting until the retry time


def test_trusted_network_setting_lets_headerless_clients_in(served, reward_server):
    project, rm, _, _ = served
    config = ServerConfig(
        project_id=project.pk, poll_seconds=0, sample_rate=0, trusted_networks=["127.0.0.0/8"]
    )
    with reward_server(config) as srv:
        r = httpx.post(
            srv.url + "/get_reward", json={"query": ["Hi there"], "prompts": ["Hi"], "labels": [""]}
        )
        assert r.status_code == 200 and len(r.json()["rewards"]) == 1


def test_scoring_needs_membership_of_the_served_project_and_reload_an_engineer_there(served, reward_server):
    """``serve_rewards --project N``: a member of another project (even an engineer there) may neither score
    with project N's model nor reload it; members score; reload needs an engineer or admin of project N
    (global engineer role or an engineer/admin membership), or an admin."""
    project, _, engineer_token, _ = served
    other = make_project()
    elsewhere = make_user(Role.ENGINEER)
    add_member(other, elsewhere, Role.ENGINEER)
    annotator, membership_engineer, admin = (
        make_user(Role.ANNOTATOR),
        make_user(Role.ANNOTATOR),
        make_user(Role.ADMIN),
    )
    add_member(project, annotator)
    add_member(project, membership_engineer, Role.ENGINEER)
    tokens = {
        "elsewhere": make_token(elsewhere, ["score"]),
        "annotator": make_token(annotator, ["score"]),
        "membership_engineer": make_token(membership_engineer, ["score"]),
        "admin": make_token(admin, ["score"]),
        "engineer": engineer_token,
    }
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0)
    calls = {
        "/v1/reward/score": {"items": [{"prompt": "Hi", "response": " there"}]},
        "/get_reward": {"query": ["Hi there"], "prompts": ["Hi"]},
        "/classify": {"input": ["Hi there"]},
    }
    with reward_server(config) as srv:

        def status(who: str, path: str, body=None, method="post") -> int:
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            return httpx.request(method, srv.url + path, json=body, headers=headers).status_code

        for path, body in calls.items():
            r = httpx.post(
                srv.url + path, json=body, headers={"Authorization": f"Bearer {tokens['elsewhere']}"}
            )
            assert r.status_code == 403, path
            assert "membership" in r.json()["error"]["message"]
            assert [status(w, path, body) for w in ("annotator", "membership_engineer", "admin")] == [200] * 3
        assert status("elsewhere", "/v1/models", method="get") == 403
        reloads = {who: status(who, "/v1/admin/reload") for who in tokens}
        assert reloads == {
            "elsewhere": 403,
            "annotator": 403,
            "membership_engineer": 200,
            "admin": 200,
            "engineer": 200,
        }


def test_a_minted_token_shares_its_roots_scoring_budget(served, reward_server):
    project, _, _, _ = served
    user = make_user(Role.ANNOTATOR)
    add_member(project, user)
    root_raw = make_token(user, ["score"], name="root")
    child_raw = make_token(user, ["score"], name="child")
    root = ApiToken.objects.get(name="root")
    root.rate_limit_per_minute = 3
    root.save(update_fields=["rate_limit_per_minute"])
    ApiToken.objects.filter(name="child").update(budget_root=root, rate_limit_per_minute=3)
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0)
    item = {"prompt": "Hi", "response": " there"}
    with reward_server(config) as srv:
        url = srv.url + "/v1/reward/score"

        def score(raw: str, n: int) -> int:
            return httpx.post(
                url, json={"items": [item] * n}, headers={"Authorization": f"Bearer {raw}"}
            ).status_code

        assert score(child_raw, 2) == 200
        assert score(root_raw, 1) == 200
        assert score(child_raw, 1) == 429  # the child's own bucket has 1 left, the shared root none
        assert score(root_raw, 1) == 429


def test_get_reward_refuses_prompts_that_do_not_match_the_queries(served, reward_server):
    project, _, token, _ = served
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0)
    auth = {"Authorization": f"Bearer {token}"}
    with reward_server(config) as srv:
        url = srv.url + "/get_reward"
        r = httpx.post(url, json={"query": ["Hi there", "Hi you"], "prompts": ["Hi"]}, headers=auth)
        assert r.status_code == 400
        assert r.json()["error"]["fields"]["prompts"] == [
            "'prompts' has 1 items but 'query' has 2; send one prompt per query."
        ]
        r = httpx.post(url, json={"query": ["Hi there"], "prompts": [3]}, headers=auth)
        assert r.status_code == 400 and "prompts" in r.json()["error"]["fields"]
        assert (
            httpx.post(url, json={"query": ["Hi there"], "prompts": ["Hi"]}, headers=auth).status_code == 200
        )
