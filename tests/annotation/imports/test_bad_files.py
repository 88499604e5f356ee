"""A bad file fails whole: the error names the line/row, the field and the reason, and nothing is written."""

from __future__ import annotations

import gzip

import pytest

from annotation.importing.errors import ImportFileError
from annotation.services.imports import items_import
from tests.annotation.imports.conftest import (
    PAIRS_ROWS,
    RESPONSES_ROWS,
    row_counts,
    write_jsonl,
    write_parquet,
)

NOTHING = {"prompts": 0, "candidates": 0, "tasks": 0, "judgments": 0, "batches": 0}
GOOD = {"prompt": "Fine prompt", "chosen": "good", "rejected": "bad"}


def _fails(project, source, **kwargs) -> ImportFileError:
    with pytest.raises(ImportFileError) as err:
        items_import(project=project, source=source, **kwargs)
    assert row_counts(project) == NOTHING
    return err.value


def test_invalid_json_names_the_line(project, tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl", [GOOD, GOOD | {"prompt": "two"}, '{"prompt": "x", "chosen": ', GOOD]
    )
    err = _fails(project, path)
    assert err.location == "line 3"
    assert err.message.startswith("line 3: invalid JSON")


def test_invalid_json_in_gzip_names_the_line(project, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl.gz", [GOOD, "not json"], gz=True)
    assert _fails(project, path).location == "line 2"


def test_missing_field_names_the_row(project, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('prompt,chosen,rejected\nq1,good,bad\n"multi\nline",good,bad\nno rejected,good\n')
    err = _fails(project, path)
    assert (err.location, err.field) == ("row 3 (line 5)", "rejected")
    assert "missing required field" in err.message
    err = _fails(project, write_jsonl(tmp_path / "bad.jsonl", [GOOD, {"chosen": "x", "prompt": "p"}]))
    assert (err.location, err.field, err.reason) == ("line 2", "rejected", "missing required field")


def test_empty_response_names_row_and_field(project, tmp_path):
    rows = [dict(r) for r in RESPONSES_ROWS]
    rows[1]["responses"] = [{"text": "Hi.", "model": "m"}, {"text": "   ", "model": "m"}]
    err = _fails(project, write_parquet(tmp_path / "bad.parquet", rows))
    assert (err.location, err.field, err.reason) == ("row 2", "responses[1]", "empty response")
    err = _fails(project, write_jsonl(tmp_path / "bad.jsonl", [GOOD, GOOD | {"chosen": ""}]))
    assert (err.location, err.field, err.reason) == ("line 2", "chosen", "empty response")


def test_unknown_format_is_refused(project, tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    err = _fails(project, path)
    assert err.field == "format" and "unknown format" in err.reason
    err = _fails(project, write_jsonl(tmp_path / "ok.jsonl", [GOOD]), format="yaml")
    assert err.field == "format" and "'yaml'" in err.reason


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"prompt": 42, "chosen": "a", "rejected": "b"}, "prompt", "must be a string or a list"),
        ({"prompt": "p", "chosen": ["a"], "rejected": "b"}, "chosen[0]", "must be a {role, content} object"),
        ({"prompt": "p", "responses": "just one string"}, "responses", "must be a list, got str"),
        ({"prompt": "p", "responses": ["a", 3]}, "responses[1]", "must be a string, got int"),
        (
            {"prompt": [{"role": "robot", "content": "x"}], "responses": ["a"]},
            "prompt[0].role",
            "role must be",
        ),
        ({"chosen": "no transcript", "rejected": "\n\nHuman: q\n\nAssistant: a"}, "chosen", "not an hh-rlhf"),
    ],
)
def test_wrong_types_name_field_and_reason(project, tmp_path, row, field, reason):
    shape = "pairs" if "chosen" in row and "prompt" in row else None
    first = GOOD if shape else None
    rows = [first, row] if first else [row]
    err = _fails(project, write_jsonl(tmp_path / "bad.jsonl", rows))
    assert err.location == f"line {len(rows)}"
    assert err.field == field
    assert reason in err.reason


def test_shape_mismatch_later_in_the_file(project, tmp_path):
    err = _fails(project, write_jsonl(tmp_path / "bad.jsonl", [*PAIRS_ROWS, {"text": "what is this"}]))
    assert (err.location, err.field) == ("line 4", "prompt")


def test_unrecognised_shape_and_empty_file(project, tmp_path):
    err = _fails(project, write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "a"}]))
    assert err.location == "line 1" and "cannot tell the record shape" in err.reason
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert "no records" in _fails(project, tmp_path / "empty.jsonl").reason


def test_not_utf8_and_corrupt_parquet(project, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "ok", "chosen": "a", "rejected": "b"}\n{"prompt": "caf\xe9"}\n')
    err = _fails(project, path)
    assert err.location == "line 2" and "UTF-8" in err.reason
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    assert "Parquet" in _fails(project, tmp_path / "broken.parquet").reason
    with gzip.open(tmp_path / "trunc.jsonl.gz", "wb") as fh:
        fh.write(b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 200)
    data = (tmp_path / "trunc.jsonl.gz").read_bytes()
    (tmp_path / "trunc.jsonl.gz").write_bytes(data[: len(data) // 2])
    assert "compressed" in _fails(project, tmp_path / "trunc.jsonl.gz").reason


def test_unknown_split_and_unreachable_hub_dataset(project, tmp_path):
    import datasets

    path = tmp_path / "dd"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([GOOD])}).save_to_disk(str(path))
    err = _fails(project, path, split="validation")
    assert err.field == "split" and "train" in err.reason
    # Tests run offline (HF_DATASETS_OFFLINE=1): a hub name fails fast with a clear reason.
    err = _fails(project, "no-such-org/no-such-dataset", format="hf")
    assert err.field == "source" and "cannot load dataset" in err.reason
