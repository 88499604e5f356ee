"""A causal-LM reward model (a scalar head on the last non-pad token), trained from a tiny Llama built from
a config (the SmolLM2 GGUF path is the benchmark's): its card records the encoding, and the server encodes
exactly as training and evaluation did."""

from __future__ import annotations

import json

import pytest

from rewardsvc.scoring import RewardScorer
from training.datasets.reader import read_snapshot_split
from training.hh_rlhf_files import write_hh_rlhf_snapshot_files
from training.rewardmodels.evaluation import evaluate_and_describe
from training.rewardmodels.trainer import RewardRunConfig, train_reward_model
from training.rm_encoding import PairEncoder, prepare_tokenizer, score_sequences
from training.tiny_models import build_tokenizer


def test_a_pad_token_distinct_from_eos_and_right_padding():
    tok = build_tokenizer()
    tok.pad_token = tok.eos_token  # what many causal LMs ship (or no pad at all)
    tok.padding_side = "left"
    assert prepare_tokenizer(tok) is False
    assert tok.pad_token == "<unk>" and tok.pad_token_id != tok.eos_token_id and tok.padding_side == "right"
    tok.unk_token = None
    tok.pad_token = None
    assert prepare_tokenizer(tok) is True and tok.pad_token == "<|pad|>"  # the caller resizes embeddings


@pytest.fixture(scope="module")
def trained_decoder(tiny_causal_lm_dir, hh_rlhf_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder-rm")
    snapshot, digest, _ = write_hh_rlhf_snapshot_files(
        hh_rlhf_path, root / "snapshot", limit=80, prompt_rendering="preflab"
    )
    cfg = RewardRunConfig(max_steps=2, per_device_train_batch_size=4, max_length=256, max_train_pairs=16)
    out = root / "rm"
    trained = train_reward_model(
        base_model=str(tiny_causal_lm_dir), artifact_dir=snapshot, cfg=cfg, seed=0, output_dir=out
    )
    described = evaluate_and_describe(
        trained.model,
        trained.tokenizer,
        snapshot_dir=snapshot,
        params=cfg.to_dict(),
        max_length=cfg.max_length,
        batch_size=8,
        seed=0,
        base_model="tiny-llama",
        snapshot_hash=digest,
        data=trained.data,
        encoding=trained.encoding,
    )
    described.card.write(out)
    return snapshot, out, trained


def test_the_card_records_how_training_encoded(trained_decoder):
    _, out, trained = trained_decoder
    card = json.loads((out / "preflab_card.json").read_text())
    assert card["encoding"] == {
        "layout": "decoder",
        "chat_template": False,
        "prompt_rendering": "preflab",
        "max_length": 256,
        "truncation": "prompt_left",
        "padding_side": "right",
        "pad_token": "<pad>",
        "reward_token": "last_non_pad",
    }
    assert (
        trained.model.config.pad_token_id == trained.tokenizer.pad_token_id != trained.tokenizer.eos_token_id
    )


def test_served_rewards_equal_training_s_encoding_and_do_not_depend_on_padding(trained_decoder):
    snapshot, out, trained = trained_decoder
    rows = [
        row for split in ("train", "validation", "test") for row in read_snapshot_split(snapshot, split)[0]
    ]
    encoder = PairEncoder(trained.tokenizer, max_length=256)
    kept = [r for r in rows if encoder.encode_pair(r["prompt"], r["chosen"], r["rejected"])[2] == "kept"]
    assert len(kept) >= 3
    chosen_ids = [encoder.encode_pair(r["prompt"], r["chosen"], r["rejected"])[0] for r in kept]
    pad = trained.tokenizer.pad_token_id
    one_by_one = score_sequences(trained.model, chosen_ids, pad_token_id=pad, batch_size=1)
    padded = score_sequences(trained.model, chosen_ids, pad_token_id=pad, batch_size=16)
    assert padded == pytest.approx(one_by_one, abs=1e-5)  # the head reads the last real token, not a pad
    scorer = RewardScorer.load(out)
    assert scorer.prompt_rendering == "preflab" and scorer.max_length == 256
    served = scorer.score_pairs([r["prompt"] for r in kept], [r["chosen"] for r in kept])
    assert served == pytest.approx(one_by_one, abs=1e-5)
