"""Hot swap under load: promoting a new RM version switches the server to it with no failed request;
requests keep flowing while the new model loads beside the old one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from django.db import connection

from annotation.models import Role
from rewardsvc.scoring import RewardScorer
from rewardsvc.server import ServerConfig
from tests.factories import make_project, make_token, make_user
from training.models import Promotion, RewardModel
from training.rewardmodels.registry import reward_model_promote

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

PROMPT = "\n\nHuman: Tell me a joke.\n\nAssistant:"


def promote(project_id: int, version: int) -> None:
    """Promote through the registry's promote service, as the API and pages do. These registered models
    have no snapshot for the gate to evaluate on, so the promotion is a recorded forced one."""
    try:
        reward_model = RewardModel.objects.get(project_id=project_id, version=version)
        reward_model_promote(reward_model=reward_model, force=True, reason="hot-swap test (no snapshot)")
    finally:
        connection.close()  # this may run on a helper thread: do not leave its connection open


def _project_with_two_versions(make_rm, v1_dir, v2_dir):
    """A project serving version 1 with version 2 registered (not yet promoted), and a score token."""
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_rm(project, 1, v1_dir, active=True)
    make_rm(project, 2, v2_dir)
    return project, make_token(engineer, ["score"])


def _v2_rewards(project, responses: list[str]) -> list[float]:
    """Version 2's rewards for ``responses`` to PROMPT, from a direct forward (the reference)."""
    scorer = RewardScorer.load(RewardModel.objects.get(project=project, version=2).artifact_dir)
    return [scorer.forward([scorer.encode(PROMPT, r)])[0] for r in responses]


def test_promotion_swaps_models_without_failing_a_request(
    make_rm, tiny_reward_model_dir, tiny_reward_model_dir_v2, reward_server
):
    project, token = _project_with_two_versions(make_rm, tiny_reward_model_dir, tiny_reward_model_dir_v2)
    responses = [f" Joke number {i}." for i in range(4)]
    expected_v2 = _v2_rewards(project, responses)
    config = ServerConfig(project_id=project.pk, poll_seconds=0.2, sample_rate=0)

    async def load(url: str) -> list[list[tuple[int, int | None, list]]]:
        stop = asyncio.Event()
        logs: list[list] = [[] for _ in range(6)]

        async def client(log):
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                while not stop.is_set():
                    r = await http.post(
                        url + "/v1/reward/score",
                        json={"items": [{"prompt": PROMPT, "response": x} for x in responses]},
                    )
                    body = r.json()
                    log.append((r.status_code, body.get("model_version"), body.get("rewards")))

        tasks = [asyncio.create_task(client(log)) for log in logs]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(promote, project.pk, 2)
        for _ in range(200):  # until every client has seen v2 a few times
            await asyncio.sleep(0.05)
            if all(sum(1 for _, v, _ in log if v == 2) >= 3 for log in logs):
                break
        stop.set()
        await asyncio.gather(*tasks)
        return logs

    with reward_server(config) as srv:
        logs = asyncio.run(load(srv.url))
        holder = srv.service.models
        assert holder.current.version == 2
        for _ in range(100):
            if not holder.draining:
                break
            asyncio.run(asyncio.sleep(0.02))
        assert holder.draining == []  # the old model finished its requests and was released
        assert srv.service.metrics.swaps._value.get() == 1
    promotion = Promotion.objects.get(project=project)
    assert (promotion.reward_model.version, promotion.previous.version, promotion.forced) == (2, 1, True)
    flat = [entry for log in logs for entry in log]
    assert flat and all(status == 200 for status, _, _ in flat)
    for log in logs:
        versions = [v for _, v, _ in log]
        assert (
            versions == sorted(versions) and versions[0] == 1 and versions[-1] == 2
        )  # switched once, never back
    for _, version, rewards in flat:
        if version == 2:
            assert rewards == pytest.approx(expected_v2, abs=1e-5)


def test_server_without_an_active_model_waits_for_a_promotion(make_rm, tiny_reward_model_dir, reward_server):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_rm(project, 1, tiny_reward_model_dir, active=False)
    token = make_token(engineer, ["score"])
    with reward_server(
        ServerConfig(project_id=project.pk, poll_seconds=0.1, sample_rate=0), expect_ready=False
    ) as srv:
        health = httpx.get(srv.url + "/health")
        assert health.status_code == 503 and "no active reward model" in health.json()["error"]
        item = {"items": [{"prompt": PROMPT, "response": " Hi."}]}
        r = httpx.post(srv.url + "/v1/reward/score", json=item, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        promote(project.pk, 1)
        for _ in range(200):
            if httpx.get(srv.url + "/health").status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.05))
        r = httpx.post(srv.url + "/v1/reward/score", json=item, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["model_version"] == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_client_call_split_in_chunks_is_scored_by_one_version_across_a_swap(
    make_rm, tiny_reward_model_dir, tiny_reward_model_dir_v2, reward_server, kind
):
    """One ``score`` call of 3 items sent as 3 requests; a promotion lands after the first answer. The
    client pins the first answer's version for the rest; the server has retired it, so the client scores
    the whole call again on the new version: every reward comes from one model, the one reported."""
    from rewardsvc.client import AsyncPrefLabRewardClient, PrefLabRewardClient

    project, token = _project_with_two_versions(make_rm, tiny_reward_model_dir, tiny_reward_model_dir_v2)
    responses = [f" Joke number {i}." for i in range(3)]
    expected_v2 = _v2_rewards(project, responses)
    items = [{"prompt": PROMPT, "response": r} for r in responses]
    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0)
    with reward_server(config) as srv:
        answers: list[int] = []

        def swap_after_the_first_answer(response) -> None:
            if response.request.url.path == "/v1/reward/score":
                answers.append(response.status_code)
                if len(answers) == 1:
                    promote(project.pk, 2)
                    reload = httpx.post(
                        srv.url + "/v1/admin/reload", headers={"Authorization": f"Bearer {token}"}
                    )
                    assert reload.json()["model_version"] == 2

        async def async_hook(response) -> None:
            await asyncio.to_thread(swap_after_the_first_answer, response)

        if kind == "sync":
            client = PrefLabRewardClient(srv.url, token, max_items_per_request=1)
            client._http.event_hooks["response"].append(swap_after_the_first_answer)
            result = client.score(items)
        else:

            async def run():
                async with AsyncPrefLabRewardClient(srv.url, token, max_items_per_request=1) as client:
                    client._http.event_hooks["response"].append(async_hook)
                    return await client.score(items)

            result = asyncio.run(run())
    assert answers[:2] == [200, 404]  # v1 answered, then the pinned v1 was gone
    assert result.model_version == 2
    assert result.rewards == pytest.approx(expected_v2, abs=1e-5)
