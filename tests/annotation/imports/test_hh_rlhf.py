"""hh-rlhf transcripts: splitting into a chat prompt and two responses, and the shared real file."""

from __future__ import annotations

import pytest

from annotation.importing.errors import ImportFileError
from annotation.importing.hh_rlhf import split_transcripts
from annotation.models import Candidate, ComparisonTask, ImportBatch, Judgment, JudgmentSource, Prompt
from annotation.services.imports import IMPORT_USERNAME, items_import
from tests.annotation.imports.conftest import row_counts


def test_split_multi_turn_keeps_shared_turns_as_messages():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant: Two tired bicycles."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant: No."
    split = split_transcripts(chosen, rejected)
    assert split.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "A joke?"},
    ]
    assert (split.chosen, split.rejected) == ("Two tired bicycles.", "No.")


def test_split_joins_consecutive_assistant_turns_and_handles_early_divergence():
    chosen = "\n\nHuman: Q\n\nAssistant: part one\n\nAssistant: part two"
    rejected = "\n\nHuman: Q\n\nAssistant: other"
    split = split_transcripts(chosen, rejected)
    assert split.messages == [{"role": "user", "content": "Q"}]
    assert split.chosen == "part one\n\npart two"
    diverged = split_transcripts(
        "\n\nHuman: Q\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant: A2", "\n\nHuman: Q\n\nAssistant: B1"
    )
    assert diverged.messages == [{"role": "user", "content": "Q"}]
    assert diverged.chosen == "Assistant: A1\n\nHuman: Q2\n\nAssistant: A2"


def test_split_refuses_text_that_is_not_a_transcript():
    with pytest.raises(ImportFileError) as err:
        split_transcripts("just text", "\n\nHuman: Q\n\nAssistant: A", location="line 4")
    assert err.value.field == "chosen" and err.value.location == "line 4"


@pytest.mark.slow
def test_shared_hh_rlhf_file_imports_and_reimport_skips_duplicates(project, hh_rlhf_path):
    report = items_import(project=project, source=hh_rlhf_path, prior_judgments=True)

    # 1,626 records; three have an empty final Assistant turn (truncated transcripts) and are skipped.
    assert report.records == 1626
    assert report.skipped == {"empty_response": 3}
    assert (report.prompts_created, report.candidates_created, report.tasks_created) == (1623, 3246, 1623)
    assert report.judgments_created == 1623
    assert row_counts(project) == {
        "prompts": 1623,
        "candidates": 3246,
        "tasks": 1623,
        "judgments": 1623,
        "batches": 1,
    }
    # Prompts are chat messages; multi-turn conversations keep every shared turn.
    multi = Prompt.objects.filter(
        project=project, text__startswith="User: what are some pranks with a pen"
    ).get()
    roles = [m["role"] for m in multi.messages]
    assert len(roles) >= 3 and roles[0] == roles[-1] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))  # alternating turns
    assert multi.messages[1]["content"] == "Are you looking for practical joke ideas?"
    assert Prompt.objects.filter(project=project, messages__isnull=True).count() == 0
    multi_turn = Prompt.objects.filter(project=project, messages__1__isnull=False).count()
    assert multi_turn == 1165  # 460 records are single-turn; 2 of those and 1 multi-turn are skipped
    # Every candidate is one final Assistant turn, never a transcript.
    assert not Candidate.objects.filter(prompt__project=project, text__contains="\n\nHuman:").exists()
    # Prior judgments point at the chosen side, whatever the stored A/B order.
    a_side = ComparisonTask.objects.filter(project=project, metadata__source_preference="A").count()
    assert 0 < a_side < 1623  # A/B order is randomised
    for judgment in Judgment.objects.filter(task__project=project).select_related("task", "annotator")[:50]:
        assert judgment.source == JudgmentSource.PRIOR
        assert judgment.annotator.username == IMPORT_USERNAME and not judgment.annotator.is_active
        assert judgment.choice == judgment.task.metadata["source_preference"]

    again = items_import(project=project, source=hh_rlhf_path, prior_judgments=True)
    assert (again.prompts_created, again.candidates_created, again.tasks_created) == (0, 0, 0)
    assert (again.prompts_duplicate, again.candidates_duplicate, again.tasks_duplicate) == (1623, 3246, 1623)
    assert again.records_duplicate == 1623
    assert row_counts(project)["tasks"] == 1623
    assert ImportBatch.objects.filter(project=project).latest("id").counts["candidates_duplicate"] == 3246
