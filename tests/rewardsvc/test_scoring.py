"""Scoring core: the server's encoding of text and chat messages, left truncation, batched == single
forwards (the encoding itself is ``training.rm_encoding``, tested in tests/training/test_rm_encoding.py)."""

from __future__ import annotations

import pytest
import torch

from rewardsvc.scoring import RewardScorer
from training.rm_encoding import SequenceLayout, score_sequences

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


def test_scores_equal_a_direct_forward_of_the_model(scorer):
    layout = SequenceLayout(scorer.tokenizer)
    sequences = [
        layout.assemble(layout.ids(p), layout.ids(r)) for p, r in zip(PROMPTS, RESPONSES, strict=True)
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
    layout = SequenceLayout(scorer.tokenizer)
    assert scorer.encode(chat, " Rome.").input_ids == layout.assemble(layout.ids(text), layout.ids(" Rome."))
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
