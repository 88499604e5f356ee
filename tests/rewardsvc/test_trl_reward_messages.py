"""One way for conversational prompts: PrefLab's GRPO/RLOO adapter (``training.policy.rewards.as_trl_reward``,
in process or over HTTP) and ``rewardsvc.trl.preflab_reward`` both score the whole message list, so a
multi-turn batch scores the same both ways and keeps its context."""

from __future__ import annotations

import asyncio

import pytest

from annotation.models import Role
from rewardsvc.scoring import RewardScorer
from rewardsvc.server import ServerConfig
from rewardsvc.trl import preflab_reward
from tests.factories import make_token, make_user
from tests.rewardsvc.conftest import write_rm_dir
from training.policy.rewards import HttpReward, InProcessReward, as_trl_reward

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

PROMPTS = [
    [
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    [{"role": "user", "content": "How do I bake bread?"}],
]
COMPLETIONS = [
    [{"role": "assistant", "content": "To get to the other side."}],
    [{"role": "assistant", "content": "Paris."}],
    [{"role": "assistant", "content": "Mix flour, water, salt and yeast."}],
]


@pytest.mark.parametrize("rendering", ["preflab", None])
def test_the_same_multi_turn_batch_scores_equal_both_ways(
    tiny_reward_model_dir, tmp_path, reward_server, rendering
):
    card = {"encoding": {"prompt_rendering": rendering, "padding_side": "right"}} if rendering else {}
    model_dir = write_rm_dir(tiny_reward_model_dir, tmp_path / "rm", **card)
    token = make_token(make_user(Role.ENGINEER), ["score"])
    in_process = as_trl_reward(InProcessReward(model_dir, max_length=512))(
        prompts=PROMPTS, completions=COMPLETIONS
    )
    expected = RewardScorer.load(model_dir).score_pairs(PROMPTS, [c[0]["content"] for c in COMPLETIONS])
    assert in_process == pytest.approx(expected, abs=1e-5)
    with reward_server(ServerConfig(model_dir=str(model_dir), poll_seconds=0, sample_rate=0)) as srv:
        over_http = as_trl_reward(HttpReward(srv.url, token=token))(prompts=PROMPTS, completions=COMPLETIONS)
        served = asyncio.run(preflab_reward(srv.url, token)(prompts=PROMPTS, completions=COMPLETIONS))
    assert over_http == pytest.approx(served, abs=1e-5)
    assert in_process == pytest.approx(served, abs=1e-5)
    # the first prompt's context counts: its last user turn alone scores differently
    last_turn_only = RewardScorer.load(model_dir).score_pairs(
        [PROMPTS[0][-1:]], [COMPLETIONS[0][0]["content"]]
    )
    assert abs(last_turn_only[0] - served[0]) > 1e-6
