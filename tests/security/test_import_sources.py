"""An import ``source`` is exactly one of: an uploaded file, a path that resolves (symlinks and ``..``
included) under an import root (``PREFLAB_IMPORT_ROOTS``), or a Hugging Face hub dataset id ``owner/name``.

``source: "json"`` with a split used to reach ``datasets.load_dataset("json")``, which globs the server's
working directory (with the default data dir: every project's snapshot artefacts). Builder names,
``data_files``/``data_dir``, paths that escape the roots and anything else are a 400 naming the field, and
nothing is read or written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.importing import ImportFileError
from annotation.importing.readers import resolve_source
from tests.security.importer import Importer, counts

pytestmark = pytest.mark.usefixtures("require_postgres")

GOOD_LINE = json.dumps({"prompt": "Is water wet?", "chosen": "Yes.", "rejected": "No."}).encode() + b"\n"


@pytest.fixture
def roots(settings, tmp_path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    settings.PREFLAB_IMPORT_ROOTS = [root]
    return root


@pytest.fixture
def importer(db) -> Importer:
    return Importer()


def _refused(importer: Importer, body: dict, field: str = "source") -> str:
    before = counts()
    response = importer.client.post(importer.url, body, format="json")
    error = importer.refused(response, 400)
    assert list(error["fields"]) == [field], error
    assert counts() == before
    return error["fields"][field][0]


@pytest.mark.parametrize("builder", ["json", "csv", "text", "parquet", "arrow", "imagefolder", "pandas"])
def test_datasets_builder_names_are_refused(importer, roots, builder, monkeypatch, tmp_path):
    # Run where a builder would find data to glob: the working directory holds a JSONL file.
    (tmp_path / "secret.jsonl").write_bytes(GOOD_LINE)
    monkeypatch.chdir(tmp_path)
    message = _refused(importer, {"source": builder, "split": "train"})
    assert "builder names such as 'json'" in message
    message = _refused(importer, {"source": builder, "format": "hf"})
    assert "hub dataset id 'owner/name'" in message


@pytest.mark.parametrize("source", ["owner/name/extra", "owner/../name", "-x/y", "a b/c", "~/data", "json:x"])
def test_anything_else_is_refused(importer, roots, source):
    assert "hub dataset id 'owner/name'" in _refused(importer, {"source": source})


def test_blank_source_is_refused(importer, roots):
    _refused(importer, {"source": " "})


def test_symlink_under_a_root_that_leads_outside_is_refused(importer, roots, tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(GOOD_LINE)
    (roots / "link.jsonl").symlink_to(outside)
    (roots / "linkdir").symlink_to(tmp_path)
    for source in (roots / "link.jsonl", roots / "linkdir" / "outside.jsonl"):
        assert "local paths must lie under an import root" in _refused(importer, {"source": str(source)})


def test_dot_dot_out_of_a_root_is_refused(importer, roots, tmp_path, monkeypatch):
    (tmp_path / "outside.jsonl").write_bytes(GOOD_LINE)
    monkeypatch.chdir(roots)
    for source in (f"{roots}/../outside.jsonl", "../outside.jsonl", "./../outside.jsonl"):
        assert "local paths must lie under an import root" in _refused(importer, {"source": source})


@pytest.mark.parametrize("option", ["data_files", "data_dir"])
def test_loader_options_that_pick_files_are_refused(importer, roots, option):
    """``data_files``/``data_dir`` would let ``datasets`` read what the source rule never checked."""
    for value in ("/etc/passwd", str(roots / "x.jsonl"), "../../"):
        message = _refused(importer, {"source": "owner/name", option: value}, field=option)
        assert message.startswith("not accepted")


def test_a_path_under_a_root_imports(importer, roots):
    (roots / "ok.jsonl").write_bytes(GOOD_LINE)
    response = importer.client.post(importer.url, {"source": str(roots / "ok.jsonl")}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tasks_created"] == 1


def test_the_artifact_directory_is_not_an_import_root(importer, settings):
    """It holds every project's snapshots: an engineer of one project must not import another's."""
    snapshot = Path(settings.ARTIFACT_DIR) / "snapshots" / "other-project" / "train.jsonl"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_bytes(GOOD_LINE)
    assert "local paths must lie under an import root" in _refused(importer, {"source": str(snapshot)})


def test_a_hub_id_passes_the_rule_and_is_loaded_from_the_hub_only(importer, roots):
    """Tests run offline: a hub id gets as far as ``load_dataset`` and fails there, on the source field."""
    message = _refused(importer, {"source": "no-such-org/no-such-dataset"})
    assert "cannot load dataset" in message


def test_resolve_source_rule(tmp_path, monkeypatch):
    """The rule itself: roots=None (the operator's command line) allows any local path, never a builder."""
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").write_bytes(GOOD_LINE)
    monkeypatch.chdir(tmp_path)
    assert resolve_source("hf-org/dataset_1.0", roots=[tmp_path]) == "hf-org/dataset_1.0"
    # "owner/name" that exists locally is a path, judged as one.
    assert resolve_source("owner/name", roots=[tmp_path]) == str(tmp_path / "owner" / "name")
    with pytest.raises(ImportFileError, match="import root"):
        resolve_source("owner/name", roots=[tmp_path / "elsewhere"])
    assert resolve_source("/etc/hostname", roots=None) == "/etc/hostname"
    for bad in ("json", "csv", "missing/..", "a/b/c"):
        with pytest.raises(ImportFileError) as info:
            resolve_source(bad, roots=None)
        assert info.value.field == "source"
