"""Tiny, offline models for tests and the `--fast` demo: a byte-level BPE tokenizer trained in seconds with
`tokenizers`, and small Llama-shaped causal-LM / reward models built from a config (random weights)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
# A minimal chat template so conversational data and `apply_chat_template` work with the tiny tokenizer.
CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)

DEFAULT_CORPUS = [
    "Human: How do I bake bread? Assistant: Mix flour, water, salt and yeast, knead, let it rise, bake.",
    "Human: What is the capital of France? Assistant: Paris is the capital of France.",
    "Human: Tell me a joke. Assistant: Why did the chicken cross the road? To get to the other side.",
    "I am sorry, I cannot help with that request. Here is a safer alternative you could consider.",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:'\"()[]{}<>-_=+*/\\|@#$%^&~`",
]


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``corpus`` (a few sentences are enough)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus or DEFAULT_CORPUS) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    return fast


def tiny_llama_config(tokenizer: PreTrainedTokenizerFast, **overrides) -> LlamaConfig:
    params = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    params.update(overrides)
    return LlamaConfig(**params)


def build_tiny_reward_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides):
    """A randomly initialised sequence-classification model with one output (a reward)."""
    import torch

    torch.manual_seed(seed)
    config = tiny_llama_config(tokenizer, num_labels=1, **overrides)
    return LlamaForSequenceClassification(config)


def build_tiny_causal_lm(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides):
    import torch

    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_llama_config(tokenizer, **overrides))


def save_tiny_reward_model(path: Path | str, corpus: Iterable[str] | None = None, seed: int = 0) -> Path:
    """Write a tiny reward model + tokenizer as a `save_pretrained` directory and return its path."""
    path = Path(path)
    tokenizer = build_tokenizer(corpus)
    model = build_tiny_reward_model(tokenizer, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_causal_lm(path: Path | str, corpus: Iterable[str] | None = None, seed: int = 0) -> Path:
    path = Path(path)
    tokenizer = build_tokenizer(corpus)
    model = build_tiny_causal_lm(tokenizer, seed=seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_encoder_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 400
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer (``[CLS]``/``[SEP]``, no EOS) trained on ``corpus`` in a moment."""
    from tokenizers import normalizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(list(corpus or DEFAULT_CORPUS) * 4, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.model_max_length = 512
    return fast


def save_tiny_encoder_reward_model(
    path: Path | str, corpus: Iterable[str] | None = None, seed: int = 0
) -> Path:
    """A tiny random BERT sequence-classification model (one label) + WordPiece tokenizer: an encoder RM,
    scored as ``[CLS] prompt [SEP] response [SEP]`` like MiniLM."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    path = Path(path)
    tokenizer = build_encoder_tokenizer(corpus)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
