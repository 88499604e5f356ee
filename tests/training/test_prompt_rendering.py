"""Train/serve format skew: a prompt sent as chat messages, as the raw hh transcript or as a policy's
chat-template text reaches the reward model as the one rendering it was trained on."""

from __future__ import annotations

import pytest

from annotation.chat import render_messages
from tests.training.chat_forms import END_OF_TURN, TEMPLATES, held_out_pairs, hh_transcript
from training.prompt_rendering import (
    HH_TRANSCRIPT,
    PREFLAB,
    normalise_pair,
    parse_chat_text,
    render_prompt,
    split_chat_text,
)
from training.rm_encoding import InputEncoder, encoder_from_card, score_sequences

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris.\n\nIt is also the largest city."},
    {"role": "user", "content": "And Italy?"},
]


@pytest.mark.parametrize("family", sorted(TEMPLATES))
def test_each_template_family_parses_back_to_its_messages(family):
    messages = CHAT[1:] if family == "gemma" else CHAT  # Gemma's template has no system role
    parsed = parse_chat_text(TEMPLATES[family](messages))
    assert parsed is not None and parsed.messages == messages  # the generation prompt is dropped
    # a full conversation (prompt + the answer + its end of turn) splits into (prompt, response)
    answered = TEMPLATES[family](messages) + "Rome." + END_OF_TURN[family]
    assert split_chat_text(answered, PREFLAB) == (render_messages(messages), "Rome.")


def test_the_hh_transcript_parses_as_the_importer_splits_it():
    messages = CHAT[1:]
    assert parse_chat_text(hh_transcript(messages)).messages == messages
    assert render_prompt(messages, HH_TRANSCRIPT) == hh_transcript(messages)
    # responses get the transcript's leading space; a template's end of turn is dropped
    assert normalise_pair(
        chatml_prompt := TEMPLATES["chatml"](messages), "Rome.<|im_end|>", HH_TRANSCRIPT
    ) == (
        hh_transcript(messages),
        " Rome.",
    )
    assert normalise_pair(chatml_prompt, "Rome.<|im_end|>", PREFLAB) == (render_messages(messages), "Rome.")


def test_text_in_no_known_form_is_kept_as_sent():
    for text in ["What is the capital of France?", "User: hi\n\nAssistant: hello\n\nUser: and?", ""]:
        assert parse_chat_text(text) is None
        assert normalise_pair(text, " Paris.", PREFLAB) == (text, " Paris.")


def test_held_out_pairs_encode_identically_in_every_form(hh_rlhf_path, tiny_tokenizer):
    """100 held-out hh-rlhf pairs: messages (as imports store them), the raw transcript and six families'
    chat-template text give the very same token ids, hence the same reward."""
    pairs = held_out_pairs(hh_rlhf_path, 100)
    assert len(pairs) == 100
    encoder = InputEncoder(tiny_tokenizer, 512, messages_rendering=PREFLAB, normalise_text=True)
    multi_turn = 0
    for pair in pairs:
        messages = pair["messages"]
        multi_turn += len(messages) > 1
        for side, raw_side in (("chosen", "raw_chosen"), ("rejected", "raw_rejected")):
            reference = encoder.encode(messages, pair[side]).input_ids
            # what training encoded: the stored prompt text and the stored response
            assert reference == encoder.layout.encode(render_messages(messages), pair[side], 512).input_ids
            assert encoder.encode(pair["raw_prompt"], pair[raw_side]).input_ids == reference
            assert encoder.encode_text(pair["raw_prompt"] + pair[raw_side]).input_ids == reference
            for family, template in TEMPLATES.items():
                text = template(messages)
                assert encoder.encode(text, pair[side] + END_OF_TURN[family]).input_ids == reference, family
                full = text + pair[side] + END_OF_TURN[family]
                assert encoder.encode_text(full).input_ids == reference, family
    assert multi_turn > 10  # multi-turn prompts are common in the file and keep their context


def test_scores_agree_across_forms_on_a_tiny_rm(hh_rlhf_path, tiny_reward_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_reward_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir)
    card = {"encoding": {"prompt_rendering": PREFLAB, "padding_side": "right"}}
    encoder = encoder_from_card(tokenizer, card, max_length=256)
    pairs = held_out_pairs(hh_rlhf_path, 20)
    forms = {
        "messages": [encoder.encode(p["messages"], p["chosen"]) for p in pairs],
        "transcript": [encoder.encode(p["raw_prompt"], p["raw_chosen"]) for p in pairs],
        "chatml": [encoder.encode(TEMPLATES["chatml"](p["messages"]), p["chosen"]) for p in pairs],
    }
    scores = {
        k: score_sequences(model, [e.input_ids for e in v], pad_token_id=encoder.layout.pad_id)
        for k, v in forms.items()
    }
    assert scores["transcript"] == scores["messages"] == scores["chatml"]
    # without a recorded rendering the raw transcript is scored as sent, and that differs
    as_sent = encoder_from_card(tokenizer, {"snapshot_hash": "x"}, max_length=256)
    raw = [as_sent.encode(p["raw_prompt"], p["raw_chosen"]).input_ids for p in pairs]
    assert score_sequences(model, raw, pad_token_id=encoder.layout.pad_id) != scores["messages"]
