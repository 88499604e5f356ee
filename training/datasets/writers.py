"""Streaming writers for snapshot formats: rows go straight to per-split files (JSONL lines, Parquet row
groups of ``PARQUET_ROWS``), so memory stays flat however many judgments are exported."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from training.datasets.spec import SPLIT_NAMES

FORMATS = ("trl", "trl_conversational", "meta", "parquet", "hf", "votes", "judgment_ids")
PARQUET_ROWS = 5000
_BUFFER = 1 << 20


try:  # orjson is ~8x faster than json for these rows; both give the same compact UTF-8 text.
    import orjson

    def _dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode("utf-8")

except ImportError:  # pragma: no cover - orjson is a declared dependency
    _dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def parquet_schema(has_margin: bool) -> pa.Schema:
    fields = [("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string())]
    if has_margin:
        fields.append(("margin", pa.float64()))
    fields += [
        ("prompt_id", pa.int64()),
        ("chosen_candidate_id", pa.int64()),
        ("rejected_candidate_id", pa.int64()),
        ("chosen_model", pa.string()),
        ("rejected_model", pa.string()),
        ("judgment_ids", pa.list_(pa.int64())),
        ("label_type", pa.string()),
    ]
    return pa.schema(fields)


class SnapshotWriter:
    """Writes one snapshot's rows into ``root`` in the requested formats and hashes what it writes.

    ``content_hash`` covers the spec and, per split in order, every TRL standard line and its meta line
    (computed even when those files are not written, so the hash depends only on spec and data).
    """

    def __init__(self, root: Path, *, formats: tuple[str, ...], has_margin: bool, spec_json: str):
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown formats: {sorted(unknown)}")
        self.root = Path(root)
        self.formats = set(formats)
        if "hf" in self.formats:
            self.formats.add("parquet")
        self.has_margin = has_margin
        self.spec_json = spec_json
        self._files: list[IO[str]] = []
        self._hash = {split: hashlib.sha256() for split in SPLIT_NAMES}
        self._ids_hash = hashlib.sha256()
        self.trl = self._open_splits("trl") if "trl" in self.formats else None
        self.conv = self._open_splits("trl_conversational") if "trl_conversational" in self.formats else None
        self.meta = self._open_splits("meta") if "meta" in self.formats else None
        self.votes = self._open(self.root / "votes.jsonl") if "votes" in self.formats else None
        self.ids = self._open(self.root / "judgment_ids.txt") if "judgment_ids" in self.formats else None
        self._schema = parquet_schema(has_margin)
        self._pq_buffers: dict[str, list[dict]] = {s: [] for s in SPLIT_NAMES}
        self._pq_writers: dict[str, pq.ParquetWriter] = {}
        if "parquet" in self.formats:
            (self.root / "parquet").mkdir(parents=True, exist_ok=True)
            for split in SPLIT_NAMES:
                self._pq_writers[split] = pq.ParquetWriter(
                    self.root / "parquet" / f"{split}.parquet", self._schema
                )

    def _open(self, path: Path) -> IO[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w", encoding="utf-8", buffering=_BUFFER)  # noqa: SIM115 - closed in close()
        self._files.append(handle)
        return handle

    def _open_splits(self, folder: str) -> dict[str, IO[str]]:
        return {split: self._open(self.root / folder / f"{split}.jsonl") for split in SPLIT_NAMES}

    def write_row(
        self,
        split: str,
        *,
        prompt_text: str,
        prompt_messages: list[dict] | None,
        chosen: str,
        rejected: str,
        margin: float | None,
        meta: dict[str, Any],
    ) -> None:
        record: dict[str, Any] = {"prompt": prompt_text, "chosen": chosen, "rejected": rejected}
        if self.has_margin:
            record["margin"] = margin if margin is not None else 0.0
        line = _dumps(record) + "\n"
        meta_line = _dumps(meta) + "\n"
        digest = self._hash[split]
        digest.update(line.encode("utf-8"))
        digest.update(meta_line.encode("utf-8"))
        if self.trl is not None:
            self.trl[split].write(line)
        if self.meta is not None:
            self.meta[split].write(meta_line)
        if self.conv is not None:
            messages = prompt_messages or [{"role": "user", "content": prompt_text}]
            conv: dict[str, Any] = {
                "prompt": messages,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
            if self.has_margin:
                conv["margin"] = record["margin"]
            self.conv[split].write(_dumps(conv) + "\n")
        ids_text = "".join(f"{i}\n" for i in meta["judgment_ids"])
        self._ids_hash.update(ids_text.encode("ascii"))
        if self.ids is not None:
            self.ids.write(ids_text)
        if self._pq_writers:
            buffer = self._pq_buffers[split]
            buffer.append({**record, **meta})
            if len(buffer) >= PARQUET_ROWS:
                self._flush_parquet(split)

    def write_vote(self, vote: dict[str, Any]) -> None:
        if self.votes is not None:
            self.votes.write(_dumps(vote) + "\n")

    def _flush_parquet(self, split: str) -> None:
        buffer = self._pq_buffers[split]
        if buffer:
            table = pa.Table.from_pylist(buffer, schema=self._schema)
            self._pq_writers[split].write_table(table)
            buffer.clear()

    def content_hash(self) -> str:
        total = hashlib.sha256(self.spec_json.encode("utf-8"))
        for split in SPLIT_NAMES:
            total.update(f"\n{split}\n{self._hash[split].hexdigest()}".encode())
        return total.hexdigest()

    def judgment_ids_hash(self) -> str:
        """sha256 of ``judgment_ids.txt`` (one id a line, in row order)."""
        return self._ids_hash.hexdigest()

    def close(self) -> None:
        for split in list(self._pq_writers):
            self._flush_parquet(split)
            self._pq_writers.pop(split).close()
        while self._files:
            self._files.pop().close()
        if "hf" in self.formats:
            write_hf_dataset(self.root)

    def abort(self) -> None:
        """Close handles without finishing (the caller removes the directory)."""
        for writer in self._pq_writers.values():
            with contextlib.suppress(Exception):  # best effort on the failure path
                writer.close()
        self._pq_writers.clear()
        while self._files:
            with contextlib.suppress(OSError):
                self._files.pop().close()


def write_hf_dataset(root: Path) -> None:
    """``hf/``: a ``DatasetDict`` of the Parquet splits, saved with ``save_to_disk`` (Arrow is built from
    the Parquet files in a scratch cache under ``root`` that is removed afterwards)."""
    from datasets import Dataset, DatasetDict

    cache = root / ".hf-cache"
    splits = {}
    for split in SPLIT_NAMES:
        path = root / "parquet" / f"{split}.parquet"
        if pq.ParquetFile(path).metadata.num_rows == 0:
            splits[split] = Dataset(pq.read_table(path))
        else:
            splits[split] = Dataset.from_parquet(str(path), cache_dir=str(cache), keep_in_memory=False)
    DatasetDict(splits).save_to_disk(str(root / "hf"))
    del splits
    shutil.rmtree(cache, ignore_errors=True)
