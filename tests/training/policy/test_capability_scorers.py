"""Capability task sets: the scorers on hand-made answers, the shipped files, the bootstrap interval."""

import pytest

from training.policy.capability.intervals import bootstrap_interval
from training.policy.capability.scorers import (
    Answer,
    constraint_holds,
    last_number,
    normalize_answer,
    score_arithmetic,
    score_factual,
    score_format,
    score_instruction,
    sentence_count,
    word_count,
)
from training.policy.capability.tasksets import TASK_SET_NAMES, task_set


def test_word_sentence_counts():
    assert word_count("It's a well-known fact, isn't it?") == 6
    assert sentence_count("One. Two! Three?") == 3
    assert sentence_count("No end mark") == 1 and sentence_count("First. then more") == 2
    assert sentence_count("   ") == 0


@pytest.mark.parametrize(
    ("constraint", "text", "ok"),
    [
        ({"type": "max_words", "value": 3}, "one two three", True),
        ({"type": "max_words", "value": 3}, "one two three four", False),
        ({"type": "min_words", "value": 4}, "one two three", False),
        ({"type": "max_sentences", "value": 1}, "Cats purr. Dogs bark.", False),
        ({"type": "max_sentences", "value": 1}, "Cats purr.", True),
        ({"type": "bullets", "value": 2}, "- sleep\n- water", True),
        ({"type": "bullets", "value": 2}, "- sleep\n* water\n- food", False),
        ({"type": "no_commas"}, "red, green", False),
        ({"type": "no_commas"}, "red and green", True),
        ({"type": "keywords", "words": ["budget", "Save"]}, "Make a budget and save.", True),
        ({"type": "keywords", "words": ["budget"]}, "Budgeting helps.", False),  # whole words only
        ({"type": "forbidden", "words": ["wet"]}, "Rain is wet.", False),
        ({"type": "forbidden", "words": ["wet"]}, "Rain falls softly.", True),
        ({"type": "forbidden_chars", "chars": "zZ"}, "Dogs are lazy", False),
        ({"type": "lowercase"}, "hello there", True),
        ({"type": "lowercase"}, "Hello there", False),
        ({"type": "uppercase"}, "DANGER: HIGH VOLTAGE", True),
        ({"type": "uppercase"}, "1234", False),
        ({"type": "starts_with", "text": "Yes"}, "  yes, it is.", True),
        ({"type": "ends_with", "text": "Thank you."}, "Study daily. Thank you.", True),
        ({"type": "ends_with", "text": "done"}, "Eggs, done!", False),
        ({"type": "json", "keys": ["name", "age"]}, '{"name": "Ann", "age": 30}', True),
        ({"type": "json", "keys": ["name", "age"]}, '```json\n{"name": "Ann", "age": 30}\n```', True),
        ({"type": "json", "keys": ["name", "age"]}, '{"name": "Ann"}', False),
        ({"type": "json", "keys": ["name"]}, "name: Ann", False),
        ({"type": "json_list", "value": 3}, '["red", "green", "blue"]', True),
        ({"type": "json_list", "value": 3}, '["red"]', False),
    ],
)
def test_constraints(constraint, text, ok):
    assert constraint_holds(constraint, text) is ok


def test_instruction_is_strict_per_prompt():
    item = {"constraints": [{"type": "max_words", "value": 20}, {"type": "no_commas"}]}
    assert score_instruction(item, Answer("A bike has two wheels")) == (1.0, {"failed": []})
    assert score_instruction(item, Answer("A bike has wheels, pedals")) == (0.0, {"failed": ["no_commas"]})
    with pytest.raises(ValueError, match="unknown constraint"):
        constraint_holds({"type": "rhymes"}, "x")


def test_arithmetic_takes_the_last_number():
    assert last_number("3 + 5 = 8. The answer is 8.") == 8.0
    assert last_number("It costs 1,200 dollars") == 1200.0
    assert last_number("minus -4.5 then 7") == 7.0 and last_number("-4.5") == -4.5
    assert last_number("no digits") is None
    item = {"answer": 48}
    assert score_arithmetic(item, Answer("12 x 4 = 48 eggs"))[0] == 1.0
    assert score_arithmetic(item, Answer("48 eggs, or 4 boxes"))[0] == 0.0
    assert score_arithmetic(item, Answer("I don't know")) == (0.0, {"extracted": None})


def test_factual_normalised_exact_match():
    assert normalize_answer("The  Pacific Ocean!") == "pacific ocean"
    item = {"answers": ["Pacific", "Pacific Ocean"]}
    assert score_factual(item, Answer("The Pacific Ocean."))[0] == 1.0
    assert score_factual(item, Answer("pacific\nIt is the largest."))[0] == 1.0  # first line only
    assert score_factual(item, Answer("It is the Pacific."))[0] == 0.0  # a sentence is not the answer
    assert score_factual(item, Answer(""))[0] == 0.0


def test_format_compliance():
    assert score_format({}, Answer("Hello!", raw="Hello!", stopped=True)) == (
        1.0,
        {"failed": [], "residue": []},
    )
    score, detail = score_format({}, Answer("Hi user", raw="Hi<|im_start|>user", stopped=True))
    assert score == 0.0 and detail["failed"] == ["template_residue"] and detail["residue"] == ["<|im_start|>"]
    assert score_format({}, Answer("[INST] again", raw="[INST] again"))[1]["residue"] == ["[INST]"]
    assert score_format({}, Answer("   ", raw="   "))[1]["failed"] == ["empty"]
    assert score_format({}, Answer("On and on", raw="On and on", stopped=False))[1]["failed"] == ["truncated"]


def test_shipped_sets_load_and_score_their_own_reference_answers():
    for name in TASK_SET_NAMES:
        ts = task_set(name)
        assert 30 <= len(ts.items) <= 60, name
        assert len({i["id"] for i in ts.items}) == len(ts.items), name
    arithmetic = task_set("arithmetic")
    assert all(
        arithmetic.scorer(i, Answer(f"The answer is {i['answer']}."))[0] == 1.0 for i in arithmetic.items
    )
    factual = task_set("factual")
    assert all(factual.scorer(i, Answer(i["answers"][0]))[0] == 1.0 for i in factual.items)


def test_bootstrap_interval():
    outcomes = [1.0] * 30 + [0.0] * 10
    a = bootstrap_interval(outcomes, n_boot=500, seed=7)
    assert a == bootstrap_interval(outcomes, n_boot=500, seed=7)  # deterministic with a seed
    assert a.score == 0.75 and a.n == 40 and a.low <= a.score <= a.high
    assert 0.55 < a.low < 0.75 < a.high < 0.9
    wide = bootstrap_interval([1.0, 0.0] * 10, n_boot=500, seed=1)
    narrow = bootstrap_interval([1.0, 0.0] * 200, n_boot=500, seed=1)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 2  # shrinks with n (~1/sqrt(n))
    assert bootstrap_interval([], n_boot=100).as_dict() == {"score": 0.0, "low": 0.0, "high": 0.0, "n": 0}
    assert bootstrap_interval([1.0, 1.0, 1.0], n_boot=100) == bootstrap_interval([1.0] * 3, n_boot=0)
