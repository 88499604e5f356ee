"""Python clients (sync, async, retries, timeouts) and the TRL reward function, against a real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from annotation.models import ApiToken, Role
from rewardsvc.client import AsyncPrefLabRewardClient, ClientConfig, PrefLabRewardClient, RewardServerError
from rewardsvc.server import ServerConfig
from rewardsvc.trl import preflab_reward
from tests.factories import make_project, make_token, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

PROMPT = "\n\nHuman: Tell me a joke.\n\nAssistant:"
ITEMS = [(PROMPT, f" A joke about {x}.") for x in ("cats", "dogs", "bread", "Paris", "code")]


@pytest.fixture
def server_and_token(make_rm, tiny_reward_model_dir, reward_server):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_rm(project, 1, tiny_reward_model_dir, active=True)
    token = make_token(engineer, ["score"])
    with reward_server(ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0)) as srv:
        yield srv, token, engineer


def native(srv, token, items):
    body = {"items": [{"prompt": p, "response": r} for p, r in items]}
    return httpx.post(
        srv.url + "/v1/reward/score", json=body, headers={"Authorization": f"Bearer {token}"}
    ).json()


def test_sync_and_async_clients_score_like_the_route(server_and_token):
    srv, token, _ = server_and_token
    expected = native(srv, token, ITEMS)["rewards"]
    with PrefLabRewardClient(srv.url, token, max_items_per_request=2) as client:
        result = client.score(ITEMS)  # three requests of at most 2 items, merged in order
        assert (
            result.rewards == pytest.approx(expected, abs=1e-6)
            and result.model_version == 1
            and result.truncated == [False] * 5
        )
        assert client.health()["status"] == "ok" and client.models()[0]["version"] == 1
        assert client.score([]).rewards == []

    async def run():
        async with AsyncPrefLabRewardClient(srv.url, token, max_items_per_request=2) as client:
            return await client.score([{"prompt": p, "response": r} for p, r in ITEMS], normalize=True)

    result = asyncio.run(run())
    assert result.normalized and result.raw_rewards == pytest.approx(expected, abs=1e-6)
    assert result.rewards == pytest.approx([(r - 0.25) / 2.0 for r in expected], abs=1e-6)


def test_client_retries_throttling_and_gives_up_on_errors(server_and_token):
    srv, token, engineer = server_and_token
    throttled = make_token(engineer, ["score"], name="throttled")
    ApiToken.objects.filter(name="throttled").update(rate_limit_per_minute=60)
    with PrefLabRewardClient(srv.url, throttled, max_retries=3, backoff=0.01) as client:
        client.score([ITEMS[0]] * 60)  # spends the bucket
        # The next call gets 429 + Retry-After: 1 and succeeds on a retry.
        assert len(client.score([ITEMS[0]]).rewards) == 1
    with PrefLabRewardClient(srv.url, "pl_bad", max_retries=3, backoff=0.01) as client:
        with pytest.raises(RewardServerError) as err:  # 401 is not retried
            client.score(ITEMS)
        assert err.value.status == 401
    dead = PrefLabRewardClient(
        "http://127.0.0.1:9", token, ClientConfig(timeout=1, max_retries=2, backoff=0.01)
    )
    with pytest.raises(RewardServerError) as err:
        dead.score(ITEMS)
    assert err.value.status is None and "ConnectError" in err.value.message


def test_trl_reward_function_contract(server_and_token):
    from trl.trainer.utils import get_callable_name, is_async_callable

    srv, token, _ = server_and_token
    reward = preflab_reward(srv.url, token)
    assert is_async_callable(reward) and get_callable_name(reward) == "preflab_reward"
    expected = native(srv, token, ITEMS)["rewards"]
    prompts, completions = [p for p, _ in ITEMS], [c for _, c in ITEMS]
    # the call TRL makes: keyword arguments, plus columns, trainer state and loggers
    out = asyncio.run(
        reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 5, trainer_state=None)
    )
    assert out == pytest.approx(expected, abs=1e-6)
    messages = [[{"role": "user", "content": "Tell me a joke."}]] * 2
    chat = asyncio.run(reward(prompts=messages, completions=[[{"role": "assistant", "content": "No."}]] * 2))
    direct = native(srv, token, [(messages[0], "No.")])["rewards"][0]
    assert chat == pytest.approx([direct, direct], abs=1e-6)


@pytest.mark.slow
def test_grpo_trainer_trains_a_step_with_the_served_reward(server_and_token, tiny_causal_lm_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    srv, token, _ = server_and_token
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir),
        reward_funcs=[preflab_reward(srv.url, token)],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": "Human: Tell me a joke. Assistant:"}] * 4),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "rewards/preflab_reward/mean" in h]
    assert logged and isinstance(logged[0]["rewards/preflab_reward/mean"], float)
    assert srv.service.models.current.batcher.stats.items >= 4


def test_verl_reward_functions_loaded_by_path(server_and_token):
    import importlib.util
    from pathlib import Path

    import rewardsvc

    srv, token, _ = server_and_token
    path = Path(rewardsvc.__file__).parent / "verl.py"
    spec = importlib.util.spec_from_file_location("custom_module", path)  # as verl loads it
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = native(srv, token, ITEMS)["rewards"]
    one = module.compute_score("hh", ITEMS[0][1], None, {"prompt": PROMPT}, url=srv.url, token=token)
    assert one == pytest.approx(expected[0], abs=1e-6)
    batch = module.compute_score_batch(
        ["hh"] * 5,
        [r for _, r in ITEMS],
        [None] * 5,
        [{"prompt": p} for p, _ in ITEMS],
        url=srv.url,
        token=token,
    )
    assert batch == pytest.approx(expected, abs=1e-6)
