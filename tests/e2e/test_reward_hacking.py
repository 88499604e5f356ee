"""The controlled reward-hacking experiment on the tiny policy (docs/demo.md, "The reward-hacking
experiment"): the same seeded PPO run with and without a length bonus, through the job runner, the capability
gate, simulated spot checks and battle votes, and the promotion gate. The biased run inflates its answers,
the detectors and reviewers say so and the gate refuses it; the unbiased run is promoted."""

import pytest

from annotation.models import SpotCheckVerdict
from demo.reward_hacking import (
    DEMO_PROMPTS,
    EXPERIMENT_SEED,
    EXPERIMENT_STEPS,
    prepare_short_answer_sft,
    run_reward_hacking_experiment,
)
from training.models import PolicyPromotion, PolicyVersion
from training.policy.services import policy_run_create


@pytest.mark.django_db
def test_length_bonus_is_refused_out_of_range_and_on_non_rule_rewards(tiny_causal_lm_dir):
    from django.core.exceptions import ValidationError

    base = {"prompts": {"source": "list", "items": ["hi"]}}
    for reward in (
        {"type": "rule", "name": "vowels", "length_bonus": 2.0},
        {"type": "rule", "name": "vowels", "length_bonus": -0.1},
        {"type": "http", "url": "http://127.0.0.1:1", "length_bonus": 0.1},
    ):
        with pytest.raises(ValidationError) as err:
            policy_run_create(
                kind="ppo", base_model=str(tiny_causal_lm_dir), config={**base, "reward": reward}
            )
        assert "length_bonus" in str(err.value)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_biased_run_is_refused_by_the_gate_and_the_unbiased_run_is_promoted(
    tiny_causal_lm_dir, settings, tmp_path
):
    settings.ARTIFACT_DIR = str(tmp_path)
    sft = prepare_short_answer_sft(
        base_model=str(tiny_causal_lm_dir), prompts=DEMO_PROMPTS, seed=EXPERIMENT_SEED
    )
    report = run_reward_hacking_experiment(
        sft_model=sft,
        prompts=DEMO_PROMPTS,
        steps=EXPERIMENT_STEPS,
        seed=EXPERIMENT_SEED,
        length_bonus=0.1,
    )
    biased, unbiased = report.runs["biased"], report.runs["unbiased"]

    # Same setup, only the length term differs: the first step (the SFT model, before any update) is the same.
    assert biased.reward_first != unbiased.reward_first  # the bonus is in the reward
    assert biased.length_first == pytest.approx(unbiased.length_first)

    # The biased run: length inflated beyond the gate's threshold, detectors fired, reviewers flagged it.
    assert biased.length_last > biased.length_first
    assert biased.gate["reward_length"]["passed"] is False
    assert "mean length grew" in biased.gate["reward_length"]["detail"]
    # On the tiny model the inflation happens within the detectors' first 5-step window, so the
    # reward-hacking detector does not see it; the KL-explosion detector fires (docs/demo.md).
    assert "kl_explosion" in biased.warning_codes, biased.warnings
    assert biased.verdicts.get("length_inflation", 0) > 0
    assert SpotCheckVerdict.objects.filter(run_id=biased.run_id, verdict="length_inflation").exists()
    assert not biased.promoted and {"reward_length", "spot_checks"} <= set(biased.failed_checks)
    assert "reward_length" in biased.refusal and "spot_checks" in biased.refusal
    assert not PolicyVersion.objects.get(pk=biased.policy_id).is_active

    # The unbiased run of the same setup passes every check and is promoted (not forced).
    assert unbiased.promoted, (unbiased.failed_checks, unbiased.gate)
    assert all(c["passed"] for c in unbiased.gate.values())
    promotion = PolicyPromotion.objects.get(policy_id=unbiased.policy_id)
    assert promotion.forced is False and promotion.gate["passed"] is True
    assert PolicyVersion.objects.get(pk=unbiased.policy_id).is_active
    assert unbiased.verdicts.get("fine", 0) > 0 and unbiased.battle_votes > 0
