"""Integration: PPO's reward comes over real HTTP from PrefLab's running reward server (rewardsvc.server)."""

import math

import pytest

from tests.factories import make_token, make_user
from training.policy.ppo import PPOConfig, load_ppo_models, train_ppo
from training.policy.rewards import HttpReward


@pytest.mark.django_db(transaction=True)
def test_ppo_scores_rollouts_with_the_running_reward_server(real_reward_server, tiny_causal_lm_dir):
    token = make_token(make_user("engineer"), ["score"])
    reward = HttpReward(real_reward_server, token=token)
    policy, ref, value, tokenizer = load_ppo_models(tiny_causal_lm_dir)
    config = PPOConfig(steps=2, batch_size=4, mini_batch_size=2, ppo_epochs=1, max_new_tokens=6, seed=2)
    prompts = ["How do I bake bread?", "Tell me a joke.", "What is the capital of France?", "Say hi."]
    result = train_ppo(
        policy=policy,
        ref_policy=ref,
        value_model=value,
        tokenizer=tokenizer,
        prompts=prompts,
        reward_fn=reward,
        config=config,
    )
    assert len(result.history) == 2 and all(math.isfinite(h["reward_mean"]) for h in result.history)
    # What PPO logged for a sample is exactly what the server answers for that pair.
    s = result.samples[0]
    assert reward([s["prompt"]], [s["response"]])[0] == pytest.approx(s["reward"], abs=1e-5)
    with pytest.raises(Exception, match="401"):
        HttpReward(real_reward_server, token="pl_wrong")(["p"], ["r"])
