"""Over-length inputs through the real reward server: the prompt is cut from the left so the response's
tokens survive, the native route says ``truncated: true`` and ``/get_reward`` reports it in ``extra_logs``."""

from __future__ import annotations

import httpx
import pytest

from annotation.models import Role
from rewardsvc.scoring import EncodedInput, RewardScorer
from rewardsvc.server import ServerConfig
from tests.factories import make_project, make_token, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

MAX_LENGTH = 32
LONG_PROMPT = (
    "\n\nHuman: "
    + "Tell me about the history and geography of Europe, its rivers and mountains. " * 12
    + "What is the capital of France?\n\nAssistant:"
)
SHORT_PROMPT = "\n\nHuman: Hi\n\nAssistant:"
RESPONSE = " Paris is the capital of France."


@pytest.fixture
def served(make_rm, tiny_reward_model_dir):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    rm = make_rm(project, 1, tiny_reward_model_dir, active=True, max_length=MAX_LENGTH)
    return project, rm, make_token(engineer, ["score"])


def test_over_length_inputs_are_cut_from_the_left_and_reported(served, reward_server):
    project, rm, token = served
    # the reference: the saved model run on ids we cut by hand (prompt's head dropped, response whole)
    scorer = RewardScorer.load(rm.artifact_dir, max_length=MAX_LENGTH)
    tok = scorer.tokenizer
    prompt_ids = tok(LONG_PROMPT, add_special_tokens=False)["input_ids"]
    response_ids = tok(RESPONSE, add_special_tokens=False)["input_ids"]
    assert len(prompt_ids) > 3 * MAX_LENGTH and len(response_ids) < MAX_LENGTH // 2
    budget = MAX_LENGTH - 1  # the tiny decoder RM's layout: prompt + response + EOS
    kept = prompt_ids[len(prompt_ids) - (budget - len(response_ids)) :] + response_ids + [tok.eos_token_id]
    assert len(kept) == MAX_LENGTH
    expected_long = scorer.forward([EncodedInput(kept, True)])[0]
    full_ids = tok(LONG_PROMPT + RESPONSE, add_special_tokens=False)["input_ids"]
    expected_text = scorer.forward(
        [EncodedInput(full_ids[len(full_ids) - budget :] + [tok.eos_token_id], True)]
    )
    head_kept = prompt_ids[:budget] + [tok.eos_token_id]  # what a right cut would score: no response at all
    assert scorer.forward([EncodedInput(head_kept, True)])[0] != pytest.approx(expected_long, abs=1e-4)

    config = ServerConfig(project_id=project.pk, poll_seconds=0, sample_rate=0.0)
    with reward_server(config) as srv:
        auth = {"Authorization": f"Bearer {token}"}
        native = httpx.post(
            srv.url + "/v1/reward/score",
            json={
                "items": [
                    {"prompt": LONG_PROMPT, "response": RESPONSE},
                    {"prompt": SHORT_PROMPT, "response": RESPONSE},
                ],
                "normalize": False,
            },
            headers=auth,
        )
        assert native.status_code == 200, native.text
        body = native.json()
        assert body["truncated"] == [True, False]
        assert body["rewards"][0] == pytest.approx(expected_long, abs=1e-5)

        # OpenRLHF: a query with its prompt is split and cut as above; without one the full text keeps its tail
        peer = httpx.post(
            f"{srv.url}/t/{token}/get_reward",
            json={
                "query": [LONG_PROMPT + RESPONSE, SHORT_PROMPT + RESPONSE],
                "prompts": [LONG_PROMPT, SHORT_PROMPT],
                "labels": ["", ""],
            },
        )
        assert peer.status_code == 200, peer.text
        got = peer.json()
        assert got["extra_logs"] == {"truncated": [1.0, 0.0]}
        assert got["rewards"] == pytest.approx(body["rewards"], abs=1e-5)
        text_only = httpx.post(
            srv.url + "/get_reward", json={"query": [LONG_PROMPT + RESPONSE]}, headers=auth
        ).json()
        assert text_only["extra_logs"] == {"truncated": [1.0]}
        assert text_only["rewards"] == pytest.approx(expected_text, abs=1e-5)

        metrics = httpx.get(srv.url + "/metrics").text
        counted = [
            line for line in metrics.splitlines() if line.startswith("preflab_rm_truncated_items_total")
        ]
        assert counted and float(counted[0].split()[-1]) == 3.0
