"""Through the real server: every route brings what it receives to the rendering on the RM card, so the
same held-out hh-rlhf pairs score the same as messages, raw transcript or chat-template text; vLLM's
``/score`` keeps (prompt, response) as two segments and equals the native route on an encoder RM."""

from __future__ import annotations

import httpx
import pytest

from annotation.models import Role
from rewardsvc.server import ServerConfig
from tests.factories import make_token, make_user
from tests.rewardsvc.conftest import write_rm_dir
from tests.training.chat_forms import END_OF_TURN, TEMPLATES, held_out_pairs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

ENCODING = {"prompt_rendering": "preflab", "padding_side": "right", "max_length": 512}


def _post(srv, token, path, body):
    resp = httpx.post(srv.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=600)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.slow
def test_held_out_pairs_score_the_same_in_every_form_and_route(
    hh_rlhf_path, tiny_reward_model_dir, tmp_path, reward_server
):
    pairs = held_out_pairs(hh_rlhf_path, 12)  # all 100 pairs, every family: test_prompt_rendering
    model_dir = write_rm_dir(tiny_reward_model_dir, tmp_path / "rm", encoding=ENCODING)
    token = make_token(make_user(Role.ENGINEER), ["score"])
    sides = [(p, side) for p in pairs for side in ("chosen", "rejected")]
    with reward_server(ServerConfig(model_dir=str(model_dir), poll_seconds=0, sample_rate=0)) as srv:

        def native(prompt_of, response_of) -> list[float]:
            items = [{"prompt": prompt_of(p), "response": response_of(p, s)} for p, s in sides]
            return _post(srv, token, "/v1/reward/score", {"items": items})["rewards"]

        reference = native(lambda p: p["messages"], lambda p, s: p[s])
        assert native(lambda p: p["raw_prompt"], lambda p, s: p[f"raw_{s}"]) == pytest.approx(
            reference, abs=1e-5
        )
        for family in ("chatml", "llama2"):
            template, end = TEMPLATES[family], END_OF_TURN[family]
            got = native(lambda p, t=template: t(p["messages"]), lambda p, s, e=end: p[s] + e)
            assert got == pytest.approx(reference, abs=1e-5), family
        # OpenRLHF: queries in Llama-3 form with their prompts, and raw transcripts without prompts
        prompts = [TEMPLATES["llama3"](p["messages"]) for p, _ in sides]
        queries = [q + p[s] + "<|eot_id|>" for q, (p, s) in zip(prompts, sides, strict=True)]
        openrlhf = _post(srv, token, "/get_reward", {"query": queries, "prompts": prompts})["rewards"]
        assert openrlhf == pytest.approx(reference, abs=1e-5)
        transcripts = [p["raw_prompt"] + p[f"raw_{s}"] for p, s in sides]
        assert _post(srv, token, "/get_reward", {"query": transcripts})["rewards"] == pytest.approx(
            reference, abs=1e-5
        )
        # vLLM: a full ChatML conversation to /classify, the hh transcript as two segments to /score
        chats = [TEMPLATES["chatml"](p["messages"]) + p[s] + "<|im_end|>" for p, s in sides]
        classify = _post(srv, token, "/classify", {"input": chats, "use_activation": False})
        assert [row["probs"][0] for row in classify["data"]] == pytest.approx(reference, abs=1e-5)
        body = {
            "text_1": [p["raw_prompt"] for p, _ in sides],
            "text_2": [p[f"raw_{s}"] for p, s in sides],
            "use_activation": False,
        }
        score = _post(srv, token, "/score", body)
        assert [row["score"] for row in score["data"]] == pytest.approx(reference, abs=1e-5)


@pytest.fixture(scope="module")
def tiny_encoder_rm_dir(tmp_path_factory):
    from training.tiny_models import save_tiny_encoder_reward_model

    return save_tiny_encoder_reward_model(tmp_path_factory.mktemp("tiny-encoder-rm") / "model")


PROMPT = "What is the capital of France?"
RESPONSES = ["Paris is the capital of France.", "I do not know.", "Paris."]


def test_vllm_score_route_equals_native_on_an_encoder_rm(tiny_encoder_rm_dir, tmp_path, reward_server):
    import math

    model_dir = write_rm_dir(tiny_encoder_rm_dir, tmp_path / "rm", encoding=ENCODING)
    token = make_token(make_user(Role.ENGINEER), ["score"])
    with reward_server(ServerConfig(model_dir=str(model_dir), poll_seconds=0, sample_rate=0)) as srv:
        items = [{"prompt": PROMPT, "response": r} for r in RESPONSES]
        native = _post(srv, token, "/v1/reward/score", {"items": items})["rewards"]
        # vLLM's exact payload (one text_1 for every text_2: 1:N) and response shape, at both paths
        for path in ("/score", "/v1/score"):
            got = _post(srv, token, path, {"model": "rm", "text_1": PROMPT, "text_2": RESPONSES})
            assert set(got) == {"id", "object", "created", "model", "data", "usage"}
            assert got["object"] == "list" and got["id"].startswith("score-") and got["model"] == "rm"
            assert [row["index"] for row in got["data"]] == [0, 1, 2]
            assert {row["object"] for row in got["data"]} == {"score"}
            expected = [1 / (1 + math.exp(-r)) for r in native]  # sigmoid by default, as vLLM's pooler
            assert [row["score"] for row in got["data"]] == pytest.approx(expected, abs=1e-6)
            assert got["usage"]["prompt_tokens"] > 0
        raw = _post(
            srv, token, "/score", {"text_1": [PROMPT] * 3, "text_2": RESPONSES, "use_activation": False}
        )
        assert [row["score"] for row in raw["data"]] == pytest.approx(native, abs=1e-6)
        # /classify gets one concatenated text: [CLS] prompt response [SEP], not two segments; it differs
        classify = _post(
            srv, token, "/classify", {"input": [PROMPT + " " + r for r in RESPONSES], "use_activation": False}
        )
        assert all(abs(row["probs"][0] - n) > 1e-6 for row, n in zip(classify["data"], native, strict=True))
        # lengths other than 1:1, 1:N or N:N are refused, naming the field
        auth = {"Authorization": f"Bearer {token}"}
        bad = httpx.post(srv.url + "/score", json={"text_1": [PROMPT] * 2, "text_2": RESPONSES}, headers=auth)
        assert bad.status_code == 400 and "text_1" in bad.json()["error"]["fields"]
        empty = httpx.post(srv.url + "/score", json={"text_1": PROMPT, "text_2": []}, headers=auth)
        assert empty.status_code == 400 and "text_2" in empty.json()["error"]["fields"]
