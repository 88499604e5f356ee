"""Every input format and every record shape imports, with duplicates skipped and counted."""

from __future__ import annotations

import pytest

from annotation.models import Candidate, ComparisonTask, ImportBatch, Judgment, Prompt
from annotation.services.imports import items_import
from tests.annotation.imports.conftest import (
    HH_ROWS,
    PAIRS_ROWS,
    RESPONSES_ROWS,
    row_counts,
    write_csv,
    write_hf_dataset,
    write_jsonl,
    write_parquet,
)

WRITERS = {
    "jsonl": lambda d, rows: write_jsonl(d / "in.jsonl", rows),
    "jsonl.gz": lambda d, rows: write_jsonl(d / "in.jsonl.gz", rows, gz=True),
    "csv": lambda d, rows: write_csv(d / "in.csv", rows),
    "parquet": lambda d, rows: write_parquet(d / "in.parquet", rows),
    "hf": lambda d, rows: write_hf_dataset(d / "in-dataset", rows),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_responses_shape_in_every_format(project, tmp_path, fmt):
    path = WRITERS[fmt](tmp_path, RESPONSES_ROWS)
    report = items_import(project=project, source=path, pairing="all_pairs")

    assert report.shape == "responses"
    assert report.format == ("jsonl" if fmt.startswith("jsonl") else fmt)
    # 3 + 4 responses; all pairs: 3 + 6 tasks.
    assert (report.prompts_created, report.candidates_created, report.tasks_created) == (2, 7, 9)
    assert row_counts(project) == {"prompts": 2, "candidates": 7, "tasks": 9, "judgments": 0, "batches": 1}
    chat = Prompt.objects.get(project=project, external_id="p2")
    assert chat.messages == RESPONSES_ROWS[1]["prompt"]
    assert chat.text == "System: Be brief.\n\nUser: Say hi."
    assert set(Candidate.objects.filter(prompt=chat).values_list("model_name", flat=True)) == {
        "m-a",
        "m-b",
        "m-c",
        "m-d",
    }
    assert Candidate.objects.get(prompt__external_id="p1", text="Cherry!").model_name == "m-c"
    assert Prompt.objects.get(project=project, external_id="p1").text == "Name a fruit."


def test_text_prompt_with_plain_responses_and_model_list(project, tmp_path):
    rows = [{"prompt": "Say hi.", "responses": ["Hi.", "Hello."], "models": ["m-a", "m-b"]}]
    report = items_import(project=project, source=write_jsonl(tmp_path / "r.jsonl", rows))
    assert report.tasks_created == 1
    prompt = Prompt.objects.get(project=project)
    assert (prompt.text, prompt.messages) == ("Say hi.", None)
    assert dict(Candidate.objects.filter(prompt=prompt).values_list("text", "model_name")) == {
        "Hi.": "m-a",
        "Hello.": "m-b",
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_pairs_shape_with_prior_judgments(project, tmp_path, fmt):
    path = WRITERS[fmt](tmp_path, PAIRS_ROWS)
    report = items_import(project=project, source=path, prior_judgments=True, seed=7)

    assert report.shape == "pairs"
    # "2+2?" appears twice: one prompt, three candidates ("5" once), two tasks.
    assert (report.prompts_created, report.candidates_created, report.tasks_created) == (2, 5, 3)
    assert report.candidates_duplicate == 1
    assert report.judgments_created == 3
    for task in ComparisonTask.objects.filter(project=project):
        judgment = Judgment.objects.get(task=task)
        chosen = task.candidate_a if judgment.choice == "A" else task.candidate_b
        rejected = task.candidate_b if judgment.choice == "A" else task.candidate_a
        assert chosen.text in {"Yes, on a clear day.", "4", "Four."}
        assert rejected.text in {"No.", "5"}
    assert Candidate.objects.get(prompt__project=project, text="Yes, on a clear day.").model_name == "good"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_hh_rlhf_shape_in_file_formats(project, tmp_path, fmt):
    path = WRITERS[fmt](tmp_path, HH_ROWS)
    report = items_import(project=project, source=path)
    assert report.shape == "hh_rlhf"
    assert (report.prompts_created, report.candidates_created, report.tasks_created) == (2, 4, 2)
    joke = Prompt.objects.get(project=project, messages__0__content="Hi")
    assert [m["role"] for m in joke.messages] == ["user", "assistant", "user"]
    assert set(Candidate.objects.filter(prompt=joke).values_list("text", flat=True)) == {
        "Why did the bicycle fall over? It was two tired.",
        "No.",
    }


def test_json_array_and_explicit_format_override(project, tmp_path):
    import json

    (tmp_path / "data.json").write_text(json.dumps(PAIRS_ROWS))
    assert items_import(project=project, source=tmp_path / "data.json").tasks_created == 3
    other = tmp_path / "export.txt"  # no known extension: the format must be named
    write_jsonl(other, RESPONSES_ROWS)
    report = items_import(project=project, source=other, format="jsonl", pairing="adjacent")
    assert report.tasks_created == 2 + 3  # adjacent: n-1 per prompt


def test_reimport_skips_duplicates_and_adds_only_new(project, tmp_path):
    first = items_import(project=project, source=write_jsonl(tmp_path / "a.jsonl", RESPONSES_ROWS))
    assert first.tasks_created == 9
    grown = [
        dict(
            RESPONSES_ROWS[0], responses=[*RESPONSES_ROWS[0]["responses"], {"text": "Date.", "model": "m-d"}]
        )
    ]
    second = items_import(
        project=project, source=write_jsonl(tmp_path / "b.jsonl", grown), pairing="all_pairs"
    )
    assert (second.prompts_created, second.prompts_duplicate) == (0, 1)
    assert (second.candidates_created, second.candidates_duplicate) == (1, 3)
    assert (second.tasks_created, second.tasks_duplicate) == (3, 3)  # only pairs with the new response
    assert ComparisonTask.objects.filter(project=project).count() == 12
    assert ImportBatch.objects.filter(project=project).count() == 2


def test_pairing_strategies_from_project_and_argument(project, tmp_path):
    rows = [{"prompt": f"q{i}", "responses": [f"r{i}-{j}" for j in range(5)]} for i in range(4)]
    path = write_jsonl(tmp_path / "five.jsonl", rows)
    project.pairing_strategy, project.pairs_per_prompt = "random_k", 3
    project.save()
    assert items_import(project=project, source=path).tasks_created == 4 * 3  # project: random_k, k=3
    project.prompts.all().delete()
    assert items_import(project=project, source=path, pairs_per_prompt=7).tasks_created == 4 * 7
    project.prompts.all().delete()
    assert items_import(project=project, source=path, pairing="all_pairs").tasks_created == 4 * 10
    project.prompts.all().delete()
    assert items_import(project=project, source=path, pairing="adjacent").tasks_created == 4 * 4


def test_ab_order_is_seeded_and_stored(project, tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    items_import(project=project, source=path, seed=3)
    order = list(
        ComparisonTask.objects.filter(project=project).values_list("metadata__source_preference", flat=True)
    )
    assert 5 < order.count("A") < 35  # both orders occur
    project.prompts.all().delete()
    items_import(project=project, source=path, seed=3)
    again = list(
        ComparisonTask.objects.filter(project=project).values_list("metadata__source_preference", flat=True)
    )
    assert again == order


def test_in_memory_records_and_limit(project):
    report = items_import(project=project, source=PAIRS_ROWS, limit=1)
    assert (report.records, report.tasks_created, report.format) == (1, 1, "records")


def test_saved_dataset_dict_uses_train_or_the_named_split(project, tmp_path):
    import datasets

    path = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(PAIRS_ROWS[:1]),
            "test": datasets.Dataset.from_list(PAIRS_ROWS[1:]),
        }
    ).save_to_disk(str(path))
    assert items_import(project=project, source=path).tasks_created == 1
    assert items_import(project=project, source=path, split="test").tasks_created == 2
