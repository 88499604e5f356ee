"""Uploads are size-limited and parsed safely.

The one file-upload endpoint is ``POST /api/v1/projects/{id}/import`` (multipart ``file``, or a JSON body
naming a ``source``); pages take no files. Every case goes through the real API with a real ``train``
token of an engineer of the project, and every refusal is checked to leave the database as it was: an
upload over the limit is a 413 naming the field and the limit; a compressed file that expands past the
limit is refused the same way before it is read into memory; malformed JSON/JSONL/CSV/Parquet, NUL
characters, invalid UTF-8, over-deep nesting, traversal file names and lying extensions are each a 400
naming the line or row, the field and the reason, with nothing half-written. JSON bodies of every API (and
of the reward server) get the same treatment: too deep or undecodable is a 400, too big a 413, never a 500.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client
from rest_framework.test import APIClient

from annotation.models import (
    ImportBatch,
    Prompt,
    Role,
    TokenScope,
)
from tests.factories import make_project, make_token, make_user
from tests.security.importer import Importer, counts, memory_peak, named_file
from training.models import TrainingRun

pytestmark = pytest.mark.usefixtures("require_postgres")

GOOD = {"prompt": "Is water wet?", "chosen": "Yes, in the everyday sense.", "rejected": "No."}
GOOD_LINE = json.dumps(GOOD).encode() + b"\n"


@pytest.fixture
def importer(db) -> Importer:
    return Importer()


# --- size limits ------------------------------------------------------------------------------------------


def test_upload_over_the_limit_is_413_naming_field_and_limit(importer, settings):
    data = GOOD_LINE * 40  # ~3 KB
    settings.PREFLAB_MAX_IMPORT_BYTES = 2000
    before = counts()
    error = importer.refused(importer.upload(data, "items.jsonl"), 413)
    assert error["code"] == "too_large"
    assert "the import limit is 2000 bytes (PREFLAB_MAX_IMPORT_BYTES)" in error["message"]
    assert error["fields"] == {"file": ["larger than 2000 bytes"]}
    assert counts() == before
    # The same file under a higher limit imports: the size alone refused it.
    settings.PREFLAB_MAX_IMPORT_BYTES = 1_000_000
    assert importer.upload(data, "items.jsonl").status_code == 201


@pytest.mark.parametrize("name", ["bomb.jsonl.gz", "bomb.json.gz", "bomb.csv.gz"])
def test_compressed_upload_that_expands_past_the_limit_is_413_before_it_is_read(importer, settings, name):
    """A ~20 KB gzip that inflates to 20 MB (a gzip bomb in miniature) is refused at the limit, without
    the server ever holding the inflated data."""
    start = {"bomb.jsonl.gz": b"", "bomb.json.gz": b"[", "bomb.csv.gz": b'prompt,chosen,rejected\n"'}[name]
    inflated = start + b" " * 20_000_000
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 100_000 < len(inflated)
    settings.PREFLAB_MAX_IMPORT_BYTES = 100_000
    before = counts()
    importer.upload(bomb, name)  # warm up: first-use imports and caches are not what this measures
    measured = memory_peak(lambda: importer.upload(bomb, name))
    response, peak = measured.result, measured.traced
    error = importer.refused(response, 413)
    assert error["code"] == "too_large"
    assert "expands to more than 100000 bytes" in error["message"]
    assert error["fields"] == {"file": ["larger than 100000 bytes"]}
    assert peak < 5_000_000, f"peak {peak} bytes: the inflated file was read into memory"
    assert counts() == before


def test_compressed_upload_within_the_limit_imports(importer, settings):
    settings.PREFLAB_MAX_IMPORT_BYTES = 100_000
    response = importer.upload(gzip.compress(GOOD_LINE), "items.jsonl.gz")
    assert response.status_code == 201, response.content
    assert response.json()["tasks_created"] == 1


def test_parquet_that_expands_past_the_limit_is_413(importer, settings, tmp_path):
    """Parquet compresses repeated values to almost nothing; its decoded size counts against the limit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"p{i}", "chosen": "c" * 1000, "rejected": "r" * 1000} for i in range(5000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "big.parquet", compression="zstd")
    data = (tmp_path / "big.parquet").read_bytes()
    assert len(data) < 100_000
    settings.PREFLAB_MAX_IMPORT_BYTES = 100_000
    before = counts()
    error = importer.refused(importer.upload(data, "big.parquet"), 413)
    assert error["code"] == "too_large" and "Parquet" in error["message"]
    assert counts() == before


def _refused_before_decoding(importer, settings, path) -> None:
    """A small Parquet file that decodes to gigabytes: 413, no row written, Arrow's memory peak far below the
    decoded size (decoding even one batch would take a gigabyte)."""
    import pyarrow as pa

    data = path.read_bytes()
    assert len(data) < 200_000
    settings.PREFLAB_MAX_IMPORT_BYTES = 50_000_000
    pool = pa.default_memory_pool()
    peak_before = pool.max_memory()
    before = counts()
    error = importer.refused(importer.upload(data, path.name), 413)
    assert error["code"] == "too_large" and "Parquet" in error["message"]
    assert counts() == before
    assert pool.max_memory() - peak_before < 100_000_000


def test_parquet_dictionary_bomb_is_refused_before_it_is_decoded(importer, settings, tmp_path):
    """One 1 MB text repeated in 4,096 rows: a few kilobytes on disk (Parquet keeps it once, in a
    dictionary), 4 GB once decoded. It is refused from the dictionary's lengths, with Arrow's memory peak
    far below the decoded size (decoding the first batch alone would take a gigabyte)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = "x" * 1_000_000
    table = pa.table(
        {
            "prompt": pa.array([f"p{i}" for i in range(4096)]),
            "chosen": pa.DictionaryArray.from_arrays(pa.array([0] * 4096, pa.int32()), pa.array([big])),
            "rejected": pa.array(["no"] * 4096),
        }
    )
    pq.write_table(table, tmp_path / "bomb.parquet", compression="zstd")
    _refused_before_decoding(importer, settings, tmp_path / "bomb.parquet")


def test_parquet_dictionary_bomb_in_a_nested_column_is_refused_before_it_is_decoded(
    importer, settings, tmp_path
):
    """The same bomb inside a list of responses (a list<struct<text, model>> column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 2048
    texts = pa.DictionaryArray.from_arrays(
        pa.array([0] * (2 * rows), pa.int32()), pa.array(["x" * 1_000_000])
    )
    models = pa.array(["m-a", "m-b"] * rows)
    responses = pa.ListArray.from_arrays(
        pa.array(range(0, 2 * rows + 1, 2), pa.int32()),
        pa.StructArray.from_arrays([texts, models], names=["text", "model"]),
    )
    table = pa.table({"prompt": pa.array([f"p{i}" for i in range(rows)]), "responses": responses})
    pq.write_table(table, tmp_path / "nested.parquet", compression="zstd")
    _refused_before_decoding(importer, settings, tmp_path / "nested.parquet")


def test_parquet_with_arrow_dictionary_columns_imports_normally(importer, tmp_path):
    """Files written from Arrow dictionary columns (text, nested text, numbers) import like any other."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    responses = pa.ListArray.from_arrays(
        pa.array([0, 2, 4], pa.int32()),
        pa.StructArray.from_arrays(
            [
                pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, 0], pa.int32()), pa.array(["Yes.", "No."])),
                pa.array(["m-a", "m-b", "m-a", "m-b"]),
            ],
            names=["text", "model"],
        ),
    )
    table = pa.table(
        {
            "prompt": pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()), pa.array(["Q1?", "Q2?"])),
            "responses": responses,
            "rank": pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int8()), pa.array([7], pa.int64())),
        }
    )
    pq.write_table(table, tmp_path / "dict.parquet")
    response = importer.upload((tmp_path / "dict.parquet").read_bytes(), "dict.parquet")
    assert response.status_code == 201, response.content
    assert response.json()["tasks_created"] == 2


def test_json_body_over_the_request_limit_is_a_json_413(importer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = counts()
    response = importer.client.post(importer.url, {"source": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "PREFLAB_MAX_REQUEST_BYTES" in response.json()["error"]["message"]
    assert counts() == before


class RecordingUploadHandler(FileUploadHandler):
    """Django's upload-handler hook, recording every file chunk the server receives (and dropping it)."""

    chunks: list[int] = []

    def receive_data_chunk(self, raw_data, start):
        RecordingUploadHandler.chunks.append(len(raw_data))

    def file_complete(self, file_size):
        return None


@pytest.fixture
def recorded_uploads(settings):
    settings.FILE_UPLOAD_HANDLERS = ["tests.security.test_uploads.RecordingUploadHandler"]
    RecordingUploadHandler.chunks = []
    return RecordingUploadHandler.chunks


def test_oversized_body_is_413_before_anything_reads_it(importer, settings, recorded_uploads):
    """Django caps form fields but not files, and the CSRF check reads the form: without a cap on the
    declared body, an anonymous POST with a CSRF cookie could make the server spool a file of any size."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    anonymous = Client(enforce_csrf_checks=True)
    anonymous.get("/accounts/login/")  # the CSRF cookie, as a browser would have it
    small = anonymous.post("/accounts/login/", {"username": "x", "file": named_file(b"x" * 5_000, "a.bin")})
    assert small.status_code == 403 and recorded_uploads, (
        "the control: a small body is read by the CSRF check"
    )
    recorded_uploads.clear()
    big = anonymous.post("/accounts/login/", {"username": "x", "file": named_file(b"x" * 20_000, "a.bin")})
    assert big.status_code == 413
    assert (
        big.json()["error"]["code"] == "too_large"
        and "PREFLAB_MAX_REQUEST_BYTES" in big.json()["error"]["message"]
    )
    assert recorded_uploads == []
    # Logged in, on an API route that takes no files: the same.
    session = Client()
    session.force_login(importer.user)
    response = session.post("/api/v1/judgments/", {"file": named_file(b"x" * 20_000, "a.bin")})
    assert response.status_code == 413 and recorded_uploads == []
    # The upload route takes bodies up to PREFLAB_MAX_IMPORT_BYTES.
    settings.FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
    response = importer.upload(GOOD_LINE * 200, "items.jsonl")
    assert response.status_code == 201, response.content


# --- malformed content: a 400 naming where, which field and why; nothing written ---------------------------

DEEP = 100_000  # far past the recursion limit of any JSON decoder


def _cut_gzip() -> bytes:
    lines = b"".join(json.dumps({**GOOD, "prompt": f"question {i}"}).encode() + b"\n" for i in range(2000))
    data = gzip.compress(lines)
    return data[: len(data) // 2]


# (file name, content, the exact start of the error message, the field the error is filed under).
# Each bad record comes after a good one, so a half-written import would show in the row counts.
BAD_FILES = {
    "jsonl-syntax": ("d.jsonl", GOOD_LINE + b'{"prompt": "x", "chosen": \n', "line 2: invalid JSON", "file"),
    "jsonl-not-an-object": ("d.jsonl", GOOD_LINE + b"[1, 2]\n", "line 2: expected a JSON object", "file"),
    "jsonl-raw-nul-byte": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": "a\x00b", "chosen": "c", "rejected": "r"}\n',
        "line 2: invalid JSON (Invalid control character",
        "file",
    ),
    "jsonl-escaped-nul": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": "p2", "chosen": "c\\u0000", "rejected": "r"}\n',
        "line 2: chosen: contains a NUL character",
        "chosen",
    ),
    "jsonl-nul-in-metadata": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": "p2", "chosen": "c", "rejected": "r", "metadata": {"k\\u0000": 1}}\n',
        "line 2: metadata: contains a NUL character",
        "metadata",
    ),
    "jsonl-invalid-utf8": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": "caf\xe9", "chosen": "c", "rejected": "r"}\n',
        "line 2: not valid UTF-8",
        "file",
    ),
    "jsonl-nested-too-deep": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": ' + b"[" * DEEP + b"]" * DEEP + b"}\n",
        "line 2: invalid JSON (nested too deeply)",
        "file",
    ),
    "jsonl-metadata-nested-deep": (
        "d.jsonl",
        GOOD_LINE
        + b'{"prompt": "p2", "chosen": "c", "rejected": "r", "metadata": '
        + b'{"a": ' * 150
        + b"1"
        + b"}" * 150
        + b"}\n",
        "line 2: metadata: nested deeper than 100 levels",
        "metadata",
    ),
    "jsonl-huge-integer": (
        "d.jsonl",
        GOOD_LINE + b'{"prompt": "p2", "chosen": "c", "rejected": "r", "id": ' + b"9" * 5000 + b"}\n",
        "line 2: invalid JSON (Exceeds the limit (4300 digits) for integer string conversion",
        "file",
    ),
    "json-array-syntax": (
        "d.json",
        b"[\n" + json.dumps(GOOD).encode() + b",\n{oops}\n]",
        "line 3: invalid JSON",
        "file",
    ),
    "json-array-nested-too-deep": (
        "d.json",
        b"[" * DEEP + b"]" * DEEP,
        "line 1: invalid JSON (nested too deeply)",
        "file",
    ),
    "csv-extra-cells": (
        "d.csv",
        b"prompt,chosen,rejected\nq1,good,bad\nq2,good,bad,surplus\n",
        "row 2 (line 3): 4 cells but the header has 3",
        "file",
    ),
    "csv-nul-byte": (
        "d.csv",
        b"prompt,chosen,rejected\nq1,good,bad\nq\x002,good,bad\n",
        "row 2 (line 3): prompt: contains a NUL character",
        "prompt",
    ),
    "csv-invalid-utf8": (
        "d.csv",
        b"prompt,chosen,rejected\nq1,good,bad\nq\xff,good,bad\n",
        "line 3: not valid UTF-8",
        "file",
    ),
    "csv-cell-nested-too-deep": (
        "d.csv",
        b'prompt,chosen,rejected\nq1,good,bad\n"' + b"[" * DEEP + b'",good,bad\n',
        "row 2 (line 3): JSON nested too deeply",
        "file",
    ),
    "parquet-not-parquet": ("d.parquet", GOOD_LINE, "source: not a readable Parquet file", "source"),
    "gzip-truncated": ("d.jsonl.gz", _cut_gzip(), "after line", "file"),
    "empty-file": ("d.jsonl", b"\n\n", "source: the input has no records", "source"),
    "binary-named-jsonl": (
        "d.jsonl",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        "line 1: not valid UTF-8",
        "file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_malformed_upload_is_400_with_location_and_writes_nothing(importer, case):
    name, data, message, field = BAD_FILES[case]
    before = counts()
    error = importer.refused(importer.upload(data, name), 400)
    assert error["code"] == "invalid_import"
    assert error["message"].startswith(message), error["message"]
    assert error["fields"] == {field: [error["message"]]}
    assert counts() == before


def test_the_good_record_alone_imports(importer):
    """The control for the table above: its good first record is importable, so each refusal is the bad
    record's doing."""
    response = importer.upload(GOOD_LINE, "d.jsonl")
    assert response.status_code == 201 and response.json()["tasks_created"] == 1


def test_parquet_cut_short_is_400(importer, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([GOOD] * 50), tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    before = counts()
    error = importer.refused(importer.upload(data[: len(data) // 2], "cut.parquet"), 400)
    assert "not a readable Parquet file" in error["message"]
    assert counts() == before


# --- names, extensions and content types are not trusted ----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/preflab-traversal/evil.jsonl",
        "..\\..\\preflab-traversal\\evil.jsonl",
        "/etc/evil.jsonl",
    ],
)
def test_traversal_file_name_is_reduced_to_its_base_name(importer, name):
    """The upload is read in memory (or an anonymous temp file) and never saved under its name; the name
    kept on the import batch is the base name only."""
    response = importer.upload(GOOD_LINE, name)
    assert response.status_code == 201, response.content
    batch = ImportBatch.objects.get(pk=response.json()["batch_id"])
    assert batch.source == "evil.jsonl"
    assert not Path("/tmp/preflab-traversal").exists() and not Path("/etc/evil.jsonl").exists()


def test_file_name_that_is_only_dots_is_no_file(importer):
    before = counts()
    error = importer.refused(importer.upload(GOOD_LINE, ".."), 400)
    assert "file" in error["fields"]
    assert counts() == before


def test_source_path_outside_the_data_dirs_is_refused(importer, settings, tmp_path):
    """``source`` names a server path: only under the shared data or artifact directory, and a symlink
    there that leads outside is resolved and refused too."""
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(GOOD_LINE)
    link = Path(settings.ARTIFACT_DIR) / "link.jsonl"
    link.symlink_to(outside)
    before = counts()
    for source in (
        str(outside),
        f"{settings.ARTIFACT_DIR}/../outside.jsonl",
        "../../../../etc/passwd",
        "/etc/passwd",
        str(link),
    ):
        response = importer.client.post(importer.url, {"source": source}, format="json")
        error = importer.refused(response, 400)
        assert "local paths must lie under" in error["fields"]["source"][0], source
    assert counts() == before


@pytest.mark.parametrize(
    ("name", "data", "fields", "message"),
    [
        ("items.exe", GOOD_LINE, {}, "format: unknown format for 'items.exe'"),
        ("items", GOOD_LINE, {}, "format: unknown format for 'items'"),
        ("items.parquet", GOOD_LINE, {}, "source: not a readable Parquet file"),
        ("items.csv", GOOD_LINE, {"format": "parquet"}, "source: not a readable Parquet file"),
    ],
)
def test_extension_decides_the_reader_and_the_content_must_match(importer, name, data, fields, message):
    before = counts()
    error = importer.refused(importer.upload(data, name, **fields), 400)
    assert error["message"].startswith(message), error["message"]
    assert counts() == before


def test_declared_content_type_is_not_trusted(importer):
    """A PNG declared as ``text/csv`` is parsed as what it is (not UTF-8 text) and refused."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    upload = SimpleUploadedFile("items.csv", png, content_type="text/csv")
    before = counts()
    error = importer.refused(importer.client.post(importer.url, {"file": upload}, format="multipart"), 400)
    assert error["message"].startswith("line 1: not valid UTF-8")
    assert counts() == before


def test_unsupported_request_body_type_is_415(importer):
    response = importer.client.post(importer.url, GOOD_LINE, content_type="application/x-ndjson")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


# --- JSON request bodies of the other APIs and the reward server ---------------------------------------------


def test_deeply_nested_json_body_is_400_on_every_api(importer):
    body = b"[" * DEEP + b"]" * DEEP
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {make_token(importer.user, ['annotate', 'export', 'train'])}"
    )
    for url in (importer.url, "/api/v1/judgments/", "/api/v1/prompts/", "/api/v1/projects/", "/api/v1/runs/"):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content[:300])
        error = response.json()["error"]
        assert error["code"] == "parse_error" and "JSON parse error - nested too deeply" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_value_the_database_cannot_store_is_400_not_500():
    """PostgreSQL refuses NUL characters in JSON; the API says so instead of failing."""
    importer = Importer()
    before = Prompt.objects.count()
    response = importer.client.post(
        "/api/v1/prompts/",
        {"project": importer.project.pk, "text": "hello", "metadata": {"note": "a\u0000b"}},
        format="json",
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "invalid"
    assert "cannot store" in response.json()["error"]["message"]
    assert Prompt.objects.count() == before


def test_policy_form_with_a_too_deep_config_is_refused_not_a_500(client, db):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    client.force_login(engineer)
    response = client.post(
        "/policy/new/",
        {"project": project.pk, "kind": "ppo", "base_model": "tiny", "config": "[" * DEEP + "]" * DEEP},
    )
    assert response.status_code == 302
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_reward_server_refuses_deep_oversized_and_malformed_bodies(tiny_reward_model_dir, tmp_path):
    import httpx

    from rewardsvc.server import ServerConfig
    from tests.rewardsvc.conftest import serve, write_rm_dir

    model_dir = write_rm_dir(tiny_reward_model_dir, tmp_path / "rm")
    engineer = make_user(Role.ENGINEER)
    token = make_token(engineer, [TokenScope.SCORE])
    config = ServerConfig(model_dir=str(model_dir), poll_seconds=0, sample_rate=0, max_body_bytes=300_000)
    with serve(config) as srv:
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for route in ("/v1/reward/score", "/get_reward", "/classify", "/pooling", "/score"):
            deep = httpx.post(srv.url + route, content=b"[" * DEEP + b"]" * DEEP, headers=auth)
            assert deep.status_code == 400 and deep.json()["error"]["code"] == "parse_error", route
            big = httpx.post(srv.url + route, content=b" " * 300_001, headers=auth)
            assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large", route
            bad = httpx.post(srv.url + route, content=b'{"items": [\xff', headers=auth)
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "parse_error", route
        ok = httpx.post(
            srv.url + "/v1/reward/score",
            json={"items": [{"prompt": "Hi", "response": " there"}]},
            headers=auth,
        )
        assert ok.status_code == 200
