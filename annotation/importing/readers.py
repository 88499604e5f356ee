"""Readers per input format. Each yields ``(location, record)`` one record at a time, where location is
what a person needs to find the record again ("line 7" in JSONL, "row 3 (line 4)" in CSV, "row 12" in
Parquet or a Hugging Face dataset).

A source is a filesystem path, a binary file object with a ``name`` (an upload), a Hugging Face dataset
name or saved-dataset directory, or an in-memory list of dicts (``format="records"``).

Reading is safe on hostile input: every malformed file raises ``ImportFileError`` (never another
exception), JSON nested past the recursion limit or holding an over-long integer included, and with
``max_bytes`` a gzip or Parquet file that expands past the limit raises ``ImportTooLarge`` before it is
all in memory.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from annotation.importing.errors import ImportFileError, ImportTooLarge

FORMATS = ("jsonl", "json", "csv", "parquet", "hf", "records")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".json.gz": "json",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
}
Source = str | os.PathLike | IO[bytes] | list[dict]


def source_name(source: Source) -> str:
    if isinstance(source, list):
        return "<records>"
    if isinstance(source, str | os.PathLike):
        return str(source)
    return str(getattr(source, "name", "<upload>"))


# A Hugging Face hub dataset id: exactly "owner/name" (the hub's own character set; no "..").
HUB_DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_NOT_A_SOURCE = (
    "must be an uploaded file, a path under an import root, or a Hugging Face hub dataset id 'owner/name'; "
    "datasets builder names such as 'json', 'csv', 'text' or 'parquet' are not sources"
)


def resolve_source(source: str | os.PathLike, *, roots: Sequence[Path] | None) -> str:
    """The one rule for a named (not uploaded) source: a local path, resolved through symlinks and ``..``,
    that lies under one of ``roots`` (None: anywhere, for the operator's command line), or a hub dataset
    id ``owner/name`` that names no local path. Anything else, a ``datasets`` builder name like ``json``
    included (``load_dataset("json")`` globs the working directory), raises ImportFileError on "source"."""
    text = os.fspath(source)
    if not text or "\x00" in text:
        raise ImportFileError(_NOT_A_SOURCE, field="source")
    path = Path(text)
    if path.is_absolute() or text.startswith(".") or os.path.lexists(text):
        resolved = path.resolve()
        if roots is not None and not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
            raise ImportFileError(
                "local paths must lie under an import root (PREFLAB_IMPORT_ROOTS), symlinks resolved",
                field="source",
            )
        return str(resolved)
    if HUB_DATASET_ID.fullmatch(text) and ".." not in text:
        return text
    raise ImportFileError(_NOT_A_SOURCE, field="source")


def is_hub_dataset_id(source: Source) -> bool:
    """A string source that is a hub id and no local path (what ``resolve_source`` passes as a hub id)."""
    if not isinstance(source, str) or not HUB_DATASET_ID.fullmatch(source) or ".." in source:
        return False
    return not os.path.lexists(source)


def detect_format(source: Source, override: str | None = None) -> str:
    """The format named by ``override``, else by the file name's extension (a directory is a saved HF
    dataset). Raises ImportFileError (field "format") when neither says."""
    if override:
        if override not in FORMATS:
            raise ImportFileError(
                f"unknown format {override!r}; use one of {', '.join(FORMATS)}", field="format"
            )
        return override
    if isinstance(source, list):
        return "records"
    if (isinstance(source, str | os.PathLike) and Path(source).is_dir()) or is_hub_dataset_id(source):
        return "hf"
    name = source_name(source).lower()
    for ext, fmt in sorted(_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(ext):
            return fmt
    raise ImportFileError(
        f"unknown format for {Path(name).name!r}: use a .jsonl, .jsonl.gz, .json, .csv or .parquet file, a "
        "saved Hugging Face dataset directory, or name the format explicitly",
        field="format",
    )


def read_records(
    source: Source, fmt: str, *, split: str | None = None, max_bytes: int | None = None
) -> Iterator[tuple[str, dict]]:
    """Yield ``(location, record)`` for every record of ``source`` read as ``fmt``. ``max_bytes`` caps what
    a gzip file may decompress to and a Parquet file may expand to (None: no cap)."""
    if fmt == "records":
        yield from ((f"record {i}", rec) for i, rec in enumerate(source, start=1))  # type: ignore[arg-type]
    elif fmt == "hf":
        yield from _read_hf(source, split=split)
    elif fmt == "parquet":
        yield from _read_parquet(source, max_bytes)
    else:
        readers = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv}
        if fmt not in readers:
            raise ImportFileError(f"unknown format {fmt!r}", field="format")
        last = ""
        with _open_binary(source, max_bytes) as raw:
            try:
                for last, record in readers[fmt](raw):
                    yield last, record
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                where = f"after {last}" if last else "at the start"
                raise ImportFileError(
                    f"corrupt or truncated compressed file ({exc})", location=where
                ) from exc


def _open_binary(source: Source, max_bytes: int | None = None) -> IO[bytes]:
    """A buffered binary stream of the source, transparently gunzipped (by magic bytes, not by name) and
    then cut off at ``max_bytes`` of decompressed data."""
    if isinstance(source, str | os.PathLike):
        try:
            raw: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by the caller's with-block
        except OSError as exc:
            raise ImportFileError(f"cannot open file: {exc.strerror or exc}", field="source") from exc
    else:
        if hasattr(source, "seek"):
            source.seek(0)
        raw = io.BufferedReader(_BorrowedRaw(source))  # an upload: read it, leave closing to its owner
    if raw.peek(2)[:2] == b"\x1f\x8b":
        unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
        if max_bytes is None:
            return unzipped  # type: ignore[return-value]
        return io.BufferedReader(_CappedRaw(unzipped, max_bytes))
    return raw


class _CappedRaw(io.RawIOBase):
    """Reads a decompressing stream and refuses past ``limit`` bytes: a gzip bomb stops at the limit."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner, self._limit, self._total = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._inner.readinto(b)  # type: ignore[attr-defined]
        self._total += n
        if self._total > self._limit:
            raise ImportTooLarge(f"the compressed file expands to more than {self._limit} bytes")
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


class _BorrowedRaw(io.RawIOBase):
    """Reads a caller's file object; closing our reader does not close theirs."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        return len(data)


def _decode(line: bytes, location: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"not valid UTF-8 ({exc.reason} at byte {exc.start})", location=location
        ) from exc


def _as_object(value: Any, location: str) -> dict:
    if not isinstance(value, dict):
        raise ImportFileError(f"expected a JSON object, got {type(value).__name__}", location=location)
    return value


def _read_jsonl(raw: IO[bytes]) -> Iterator[tuple[str, dict]]:
    for number, line in enumerate(raw, start=1):
        location = f"line {number}"
        text = _decode(line, location).strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(
                f"invalid JSON ({exc.msg} at column {exc.colno})", location=location
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise ImportFileError(f"invalid JSON ({_json_reason(exc)})", location=location) from exc
        yield location, _as_object(value, location)


def _json_reason(exc: ValueError | RecursionError) -> str:
    """Why syntactically valid JSON was refused: nested past the recursion limit, or an integer with more
    digits than Python converts (``sys.get_int_max_str_digits``)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]


MAX_JSON_DEPTH = 1000  # what json.loads reaches before its RecursionError: the same refusal for arrays
_JSON_CHUNK = 64 * 1024


def _read_json(raw: IO[bytes]) -> Iterator[tuple[str, dict]]:
    """A .json file is either one JSON array of objects or, as many exports are, JSON lines.

    An array is parsed incrementally: ijson's tokenizer (no prefix paths, which cost quadratic memory on
    deep nesting) feeds ``_ArrayItems``, which builds one element at a time and refuses nesting past
    ``MAX_JSON_DEPTH`` as it opens. A small file of a million ``{}`` thus costs one element, not a million,
    and its first bad element is reported before the rest is read. The tokenizer is fed at most one line
    (and at most 64 KB) at a time, so a syntax error is reported on its line."""
    import ijson

    head = raw.peek(64)[:64].lstrip()
    if not head.startswith(b"["):
        yield from _read_jsonl(raw)
        return
    events = ijson.sendable_list()
    tokenizer = ijson.basic_parse_coro(events, use_float=True)
    utf8 = codecs.getincrementaldecoder("utf-8")()  # checks the bytes; a character may span two chunks
    array = _ArrayItems()
    line, number, done = 1, 0, False
    while not done:
        chunk = raw.readline(_JSON_CHUNK)
        done = not chunk
        location = f"line {line}"
        try:
            utf8.decode(chunk, final=done)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"not valid UTF-8 ({exc.reason} at byte {exc.start})", location=location
            ) from exc
        try:
            if done:
                tokenizer.close()  # raises on a truncated array
            else:
                tokenizer.send(chunk)
            items = array.feed(events)
        except ijson.JSONError as exc:
            raise ImportFileError(f"invalid JSON ({_ijson_reason(exc)})", location=location) from exc
        except (ValueError, RecursionError) as exc:
            raise ImportFileError(f"invalid JSON ({_json_reason(exc)})", location=location) from exc
        del events[:]
        for item in items:
            number += 1
            yield f"item {number}", _as_object(item, f"item {number}")
        line += chunk.endswith(b"\n")


class _ArrayItems:
    """Builds the elements of a top-level JSON array from ijson ``basic_parse`` events, one at a time."""

    def __init__(self) -> None:
        self.opened = False
        self.stack: list[dict | list] = []  # the element being built, outermost first
        self.keys: list[str | None] = []  # per open object: the key of the value that comes next

    def feed(self, events: list[tuple[str, Any]]) -> list[Any]:
        """Consume ``events``; return the elements they completed."""
        done: list[Any] = []
        for event, value in events:
            if not self.opened:
                if event != "start_array":  # _read_json peeked "[": this cannot happen on valid input
                    raise ValueError("expected a JSON array")
                self.opened = True
            elif event in ("start_map", "start_array"):
                if len(self.stack) >= MAX_JSON_DEPTH:
                    raise RecursionError
                container: dict | list = {} if event == "start_map" else []
                self._add(container, done, complete=False)
                self.stack.append(container)
                if event == "start_map":
                    self.keys.append(None)
            elif event == "map_key":
                self.keys[-1] = value
            elif event in ("end_map", "end_array"):
                if not self.stack:
                    continue  # the end of the top-level array
                finished = self.stack.pop()
                if event == "end_map":
                    self.keys.pop()
                if not self.stack:
                    done.append(finished)
            else:
                self._add(value, done, complete=True)
        return done

    def _add(self, value: Any, done: list[Any], *, complete: bool) -> None:
        if not self.stack:
            if complete:
                done.append(value)  # a scalar element of the top-level array
            return
        parent = self.stack[-1]
        if isinstance(parent, list):
            parent.append(value)
        else:
            parent[self.keys[-1]] = value


def _ijson_reason(exc: Exception) -> str:
    """ijson's (yajl's) message without the multi-line excerpt it appends."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def _read_csv(raw: IO[bytes]) -> Iterator[tuple[str, dict]]:
    reader = csv.DictReader(_utf8_lines(raw))
    try:
        fields = reader.fieldnames
    except csv.Error as exc:
        raise ImportFileError(f"invalid CSV header ({exc})", location="line 1") from exc
    if not fields:
        raise ImportFileError("the CSV file is empty (no header row)", location="line 1")
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"invalid CSV ({exc})", location=f"line {reader.line_num}") from exc
        number += 1
        location = f"row {number} (line {reader.line_num})"
        if None in row:
            raise ImportFileError(
                f"{len(row[None]) + len(fields)} cells but the header has {len(fields)}", location=location
            )
        yield location, row  # a short row leaves its missing cells None: "missing required field"


_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def _utf8_lines(raw: IO[bytes]) -> Iterator[str]:
    """The text lines csv reads (as with ``newline=""``: ``\\r\\n``, ``\\n`` or a lone ``\\r`` ends a line,
    endings kept), each decoded on its own so a bad byte is reported on its own line (a text wrapper
    decodes ahead in 8 KB chunks and would blame an earlier line)."""
    number = 0
    for chunk in raw:
        for line in _LONE_CR.split(chunk):
            if line:
                number += 1
                yield _decode(line, f"line {number}")


def _read_parquet(source: Source, max_bytes: int | None = None) -> Iterator[tuple[str, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(source, str | os.PathLike) and hasattr(source, "seek"):
        source.seek(0)
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise ImportFileError(f"not a readable Parquet file ({exc})", field="source") from exc
    meta = parquet.metadata
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if max_bytes is not None and declared > max_bytes:
        raise ImportTooLarge(
            f"the Parquet file holds {declared} bytes uncompressed; the limit is {max_bytes}"
        )
    # Every text leaf (top-level or nested in lists and structs) is read as a dictionary (Parquet stores
    # repeated values once), so a batch's decoded size is computed from the dictionaries' value lengths
    # and the indices before anything is expanded: a file whose few kilobytes decode to gigabytes is
    # refused without allocating them.
    schema = parquet.schema
    text_paths = [
        schema.column(i).path for i in range(len(schema)) if schema.column(i).physical_type == "BYTE_ARRAY"
    ]
    if text_paths:
        if not isinstance(source, str | os.PathLike) and hasattr(source, "seek"):
            source.seek(0)
        parquet = pq.ParquetFile(source, read_dictionary=text_paths)
    number = expanded = 0
    for batch in parquet.iter_batches(batch_size=4096):
        expanded += sum(_decoded_nbytes(column) for column in batch.columns)
        if max_bytes is not None and expanded > max_bytes:
            raise ImportTooLarge(
                f"the Parquet data expands to more than {max_bytes} bytes", location=f"row {number + 1}"
            )
        for record in _dictionary_decoded(batch).to_pylist():
            number += 1
            yield f"row {number}", record


def _dictionary_decoded(batch):
    """``batch`` with every dictionary, nested ones included, decoded by one vectorised cast per column
    (after their decoded size was checked); a column whose type cannot be cast is left to ``to_pylist``."""
    import pyarrow as pa

    columns = []
    for column in batch.columns:
        plain = _without_dictionaries(column.type)
        if plain != column.type:
            with contextlib.suppress(pa.ArrowNotImplementedError, pa.ArrowInvalid):
                column = column.cast(plain)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _without_dictionaries(kind):
    """``kind`` with each dictionary type replaced by its value type, through lists and structs."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _without_dictionaries(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        field = kind.value_field
        inner = pa.field(field.name, _without_dictionaries(field.type), field.nullable)
        return pa.large_list(inner) if pa.types.is_large_list(kind) else pa.list_(inner)
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _without_dictionaries(f.type), f.nullable) for f in kind])
    return kind


def _decoded_nbytes(array) -> int:
    """The bytes ``array`` takes once decoded, without decoding it: a dictionary counts each row's value in
    full (its value lengths taken by the indices); lists, maps and structs add up their children."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        values = array.dictionary
        if not any(
            check(values.type)
            for check in (
                pa.types.is_string,
                pa.types.is_large_string,
                pa.types.is_binary,
                pa.types.is_large_binary,
            )
        ):  # numbers or nested values (an Arrow-written file may hold any dictionary): the mean value size
            return array.indices.nbytes + len(array) * -(-values.nbytes // max(1, len(values)))
        lengths = pc.binary_length(values)
        return int(pc.sum(pc.take(lengths, array.indices)).as_py() or 0) + array.indices.nbytes
    if pa.types.is_map(kind):
        return array.offsets.nbytes + _decoded_nbytes(array.keys) + _decoded_nbytes(array.items)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _decoded_nbytes(array.flatten()) + (
            0 if pa.types.is_fixed_size_list(kind) else array.offsets.nbytes
        )
    if pa.types.is_struct(kind):
        return sum(_decoded_nbytes(child) for child in array.flatten())
    return array.nbytes


def _read_hf(source: Source, *, split: str | None) -> Iterator[tuple[str, dict]]:
    """A dataset saved with ``save_to_disk`` (a directory) or a name for ``datasets.load_dataset``."""
    import datasets

    if not isinstance(source, str | os.PathLike):
        raise ImportFileError("a Hugging Face dataset must be a name or a directory path", field="source")
    try:
        if Path(source).is_dir():
            loaded = datasets.load_from_disk(str(source))
        elif is_hub_dataset_id(source):
            # Never a builder name, a file or a missing path: load_dataset would glob the working directory.
            loaded = datasets.load_dataset(str(source), split=split)
        else:
            raise ImportFileError(_NOT_A_SOURCE, field="source")
    except ImportFileError:
        raise
    except Exception as exc:  # datasets raises many types (FileNotFound, ConnectionError, ValueError...)
        raise ImportFileError(f"cannot load dataset {str(source)!r}: {exc}", field="source") from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        if split is None:
            split = "train" if "train" in loaded else (names[0] if len(names) == 1 else None)
        if split not in loaded:
            raise ImportFileError(f"choose a split: the dataset has {', '.join(names)}", field="split")
        loaded = loaded[split]
    yield from ((f"row {i}", dict(rec)) for i, rec in enumerate(_iter_rows(loaded), start=1))


def _iter_rows(dataset) -> Iterable[dict]:
    # Batched iteration is much faster than per-row indexing on Arrow-backed datasets.
    for batch in dataset.iter(batch_size=4096):
        keys = list(batch.keys())
        for values in zip(*(batch[k] for k in keys), strict=True):
            yield dict(zip(keys, values, strict=True))
