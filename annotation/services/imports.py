"""Importing prompts and candidate responses (and optionally known preferences) into a project.

``items_import`` reads and validates the whole input first, then writes everything in one transaction with
bulk inserts: a bad record N raises ``ImportFileError`` naming its line/row, field and reason, and nothing is
written. Duplicates are found by content hash (``annotation.models.content_hash``) against the project's
existing rows and earlier records of the same input, skipped, and counted in the report.

Tasks: for the ``responses`` shape, each prompt's candidates (from this import) are paired by the pairing
strategy; for the ``pairs`` and ``hh_rlhf`` shapes each record's chosen/rejected pair is one task, and with
``prior_judgments=True`` its known preference is stored as a ``Judgment(source="prior")`` by the inactive
system user ``preflab-import``. A/B order is drawn from ``random.Random(seed)`` and stored on the task.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from annotation.importing import (
    COMMON_FIELDS,
    SHAPE_FIELDS,
    SHAPES,
    ImportFileError,
    ImportRecord,
    detect_format,
    detect_shape,
    normalize_record,
    pairs_for_strategy,
    read_records,
)
from annotation.importing.bulk import insert_rows
from annotation.importing.pairing import pair_count
from annotation.importing.readers import Source, resolve_source, source_name
from annotation.models import (
    Candidate,
    Choice,
    ComparisonTask,
    ImportBatch,
    Judgment,
    JudgmentSource,
    PairingStrategy,
    Project,
    Prompt,
    content_hash,
)

IMPORT_USERNAME = "preflab-import"
_LOOKUP_CHUNK = 5000

# progress(stage, advance): called as records are read ("read") and rows are written ("write").
Progress = Callable[[str, int], None]


@dataclass
class ImportReport:
    """What an import did. ``*_duplicate`` rows already existed (same content hash) and were skipped;
    ``skipped`` counts records kept out on purpose (e.g. an hh-rlhf transcript whose final Assistant turn is
    empty, or a pair whose two sides are identical)."""

    batch_id: int | None = None
    source: str = ""
    format: str = ""
    shape: str = ""
    pairing: str = ""
    records: int = 0
    records_duplicate: int = 0
    prompts_created: int = 0
    prompts_duplicate: int = 0
    candidates_created: int = 0
    candidates_duplicate: int = 0
    tasks_created: int = 0
    tasks_duplicate: int = 0
    judgments_created: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        parts = [
            f"{self.records} records ({self.shape}, {self.format})",
            f"prompts {self.prompts_created} new / {self.prompts_duplicate} duplicate",
            f"candidates {self.candidates_created} new / {self.candidates_duplicate} duplicate",
            f"tasks {self.tasks_created} new / {self.tasks_duplicate} duplicate",
        ]
        if self.judgments_created:
            parts.append(f"prior judgments {self.judgments_created}")
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())))
        return "; ".join(parts) + f" in {self.seconds:.1f}s"


def import_system_user() -> User:
    """The inactive user that owns imported prior judgments (one per task, so the per-annotator constraint
    holds, and nobody can log in as it)."""
    user, created = User.objects.get_or_create(
        username=IMPORT_USERNAME, defaults={"is_active": False, "first_name": "PrefLab import"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def items_import(
    *,
    project: Project,
    source: Source,
    format: str | None = None,  # noqa: A002 - the public name of the option
    shape: str | None = None,
    pairing: str | None = None,
    pairs_per_prompt: int | None = None,
    prior_judgments: bool = False,
    seed: int = 0,
    created_by: User | None = None,
    split: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
    source_roots: Sequence[Path] | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import a JSONL/JSON/CSV/Parquet file, a Hugging Face dataset (hub id ``owner/name`` or
    ``save_to_disk`` directory) or a list of dicts into ``project``. Raises ImportFileError for bad input
    (nothing written), and its subclass ImportTooLarge when a gzip or Parquet file expands past
    ``max_bytes`` (None: no cap). A named source must be a path under one of ``source_roots`` (None: any
    local path, for the operator's command line) or a hub id (``resolve_source``).

    ``dry_run`` does everything, duplicate checks included, and rolls the transaction back: the report
    has the counts the import would make (``batch_id`` None) and nothing is written."""
    started = time.perf_counter()
    if isinstance(source, str | os.PathLike):
        source = resolve_source(source, roots=source_roots)
    fmt = detect_format(source, format)
    strategy = pairing or project.pairing_strategy
    if strategy not in PairingStrategy.values:
        raise ImportFileError(
            f"unknown pairing strategy {strategy!r}; use one of {', '.join(PairingStrategy.values)}",
            field="pairing",
        )
    k = project.pairs_per_prompt if pairs_per_prompt is None else pairs_per_prompt
    if k < 1:
        raise ImportFileError("must be at least 1", field="pairs_per_prompt")
    max_tasks = settings.PREFLAB_MAX_TASKS_PER_PROMPT
    if strategy == PairingStrategy.RANDOM_K and k > max_tasks:
        raise ImportFileError(
            f"at most {max_tasks} tasks per prompt (PREFLAB_MAX_TASKS_PER_PROMPT); got {k}",
            field="pairs_per_prompt",
        )
    if shape is not None and shape not in SHAPES:
        raise ImportFileError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}", field="shape")

    rows = read_records(source, fmt, split=split, max_bytes=max_bytes)
    records, shape = _read_validated(rows, shape, limit, progress)
    report = ImportReport(source=source_name(source)[:500], format=fmt, shape=shape, pairing=strategy)
    report.records = len(records)
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            project=project, source=report.source, format=fmt, shape=shape, created_by=created_by
        )
        report.batch_id = batch.pk
        _write(
            project=project,
            batch=batch,
            records=records,
            strategy=strategy,
            k=k,
            prior_judgments=prior_judgments,
            rng=random.Random(seed),
            report=report,
            progress=progress,
        )
        report.seconds = round(time.perf_counter() - started, 3)
        batch.counts = report.as_dict()
        batch.save(update_fields=["counts"])
        if dry_run:
            transaction.set_rollback(True)
            report.batch_id = None
    return report


PREVIEW_ROWS = 5
_PREVIEW_CHARS = 200


def _preview_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def items_import_preview(
    *,
    source: Source,
    format: str | None = None,  # noqa: A002 - the public name of the option
    shape: str | None = None,
    rows: int = PREVIEW_ROWS,
    max_bytes: int | None = None,
) -> dict:
    """The first ``rows`` records of a file as the import reads them, without a database: the detected
    format and shape, the first record's columns and what the shape reads from each (the column mapping,
    ``[[column, role], ...]``), the rows (values in column order, cut to 200 characters), and the first error among them with its line or row (else ""). Reads
    only what it shows, so it is instant on a file of any size; the dry run checks the whole file."""
    preview: dict = {
        "format": "",
        "shape": shape or "",
        "columns": [],
        "mapping": {},
        "rows": [],
        "error": "",
    }
    try:
        preview["format"] = fmt = detect_format(source, format)
        with contextlib.closing(read_records(source, fmt, max_bytes=max_bytes)) as records:
            for location, row in records:
                if len(preview["rows"]) >= rows:
                    break
                if not preview["columns"]:
                    preview["columns"] = list(row)
                if not preview["shape"]:
                    preview["shape"] = detect_shape(row, location)
                # Lists in column order (a JSON object stored in PostgreSQL's jsonb loses its key order).
                values = [_preview_value(row[c]) if c in row else "" for c in preview["columns"]]
                preview["rows"].append({"location": location, "values": values})
                normalize_record(row, preview["shape"], location)
    except ImportFileError as exc:
        preview["error"] = exc.message
    known = {**SHAPE_FIELDS.get(preview["shape"], {}), **COMMON_FIELDS}
    preview["mapping"] = [[column, known.get(column, "")] for column in preview["columns"]]
    return preview


def _read_validated(
    rows: Iterable[tuple[str, dict]], shape: str | None, limit: int | None, progress: Progress | None
) -> tuple[list[ImportRecord], str]:
    records: list[ImportRecord] = []
    max_records = settings.PREFLAB_MAX_IMPORT_RECORDS
    max_responses = settings.PREFLAB_MAX_RESPONSES_PER_RECORD
    for location, row in rows:
        if limit is not None and len(records) >= limit:
            break
        if len(records) >= max_records:
            raise ImportFileError(
                f"more than {max_records} records (PREFLAB_MAX_IMPORT_RECORDS): split the input or use "
                "'limit'",
                location=location,
                field="source",
            )
        if shape is None:
            shape = detect_shape(row, location)
        responses = row.get("responses")
        if isinstance(responses, list | str) and len(responses) > max_responses:  # before normalising them
            responses = _maybe_list(responses)
            if len(responses) > max_responses:
                raise _too_many_responses(location, len(responses), max_responses)
        records.append(normalize_record(row, shape, location))
        if progress and len(records) % 1000 == 0:
            progress("read", 1000)
    if progress:
        progress("read", len(records) % 1000)
    if not records:
        raise ImportFileError("the input has no records", field="source")
    return records, shape or ""


def _maybe_list(value: list | str) -> list | str:
    """A CSV cell holds the responses as JSON text; its length in characters says nothing yet."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value  # normalising reports the bad cell
        return decoded if isinstance(decoded, list) else value
    return value


def _too_many_responses(location: str, n: int, cap: int) -> ImportFileError:
    return ImportFileError(
        f"{n} responses; at most {cap} per record (PREFLAB_MAX_RESPONSES_PER_RECORD)",
        location=location,
        field="responses",
    )


def _check_tasks_per_prompt(groups: dict[str, dict], *, strategy: str, k: int) -> None:
    """Refuse a prompt whose candidates in this input would be paired into more than
    ``PREFLAB_MAX_TASKS_PER_PROMPT`` tasks (``all_pairs`` makes n*(n-1)/2 of them), before anything is
    inserted. Refusing, rather than quietly pairing fewer, keeps ``all_pairs`` meaning every pair; the
    message names the prompt's first line and says to split it or pick ``random_k`` or ``adjacent``."""
    cap = settings.PREFLAB_MAX_TASKS_PER_PROMPT
    for group in groups.values():
        if group["pairs"]:
            continue  # preference shapes: one task per record, bounded by the records themselves
        n = len(group["candidates"])
        planned = pair_count(strategy, n, k=k)
        if planned > cap:
            raise ImportFileError(
                f"{n} candidates for this prompt make {planned} {strategy} tasks; at most {cap} per prompt "
                "(PREFLAB_MAX_TASKS_PER_PROMPT): split the candidates or use random_k or adjacent",
                location=group["record"].location,
                field="responses",
            )


def _prompt_hash(record: ImportRecord) -> str:
    return content_hash(record.prompt_messages if record.prompt_messages is not None else record.prompt_text)


def _chunks(items: list, size: int = _LOOKUP_CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _write(
    *,
    project: Project,
    batch: ImportBatch,
    records: list[ImportRecord],
    strategy: str,
    k: int,
    prior_judgments: bool,
    rng: random.Random,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    # 1. Group usable records by prompt; remember each record's candidate hashes and preference.
    groups: dict[str, dict] = {}
    record_keys: list[tuple[str, list[str], tuple[str, str] | None]] = []
    for record in records:
        if record.skip_reason:
            report.skipped[record.skip_reason] = report.skipped.get(record.skip_reason, 0) + 1
            continue
        p_hash = _prompt_hash(record)
        group = groups.setdefault(p_hash, {"record": record, "candidates": {}, "pairs": []})
        hashes = []
        for response in record.responses:
            c_hash = content_hash(response.text)
            group["candidates"].setdefault(c_hash, response)
            hashes.append(c_hash)
        pref = (hashes[record.preferred[0]], hashes[record.preferred[1]]) if record.preferred else None
        if pref:
            group["pairs"].append(pref)
        record_keys.append((p_hash, hashes, pref))
    _check_tasks_per_prompt(groups, strategy=strategy, k=k)

    # 2. Prompts: reuse existing ones (same hash in this project), bulk-insert the rest.
    prompt_ids: dict[str, int] = {}
    for chunk in _chunks(list(groups)):
        prompt_ids.update(
            Prompt.objects.filter(project=project, content_hash__in=chunk).values_list("content_hash", "id")
        )
    existing_prompt_ids = set(prompt_ids.values())
    new_prompt_hashes = [h for h in groups if h not in prompt_ids]
    rows = []
    for h in new_prompt_hashes:
        record = groups[h]["record"]
        metadata = {**record.metadata, "import_batch": batch.pk}
        rows.append((project.pk, record.prompt_text, record.prompt_messages, metadata, record.external_id, h))
    columns = ("project_id", "text", "messages", "metadata", "external_id", "content_hash")
    prompt_ids.update(zip(new_prompt_hashes, insert_rows(Prompt, columns, rows), strict=True))
    report.prompts_created = len(new_prompt_hashes)
    report.prompts_duplicate = len(groups) - len(new_prompt_hashes)
    _tick(progress, len(rows))

    # 3. Candidates: (prompt id, hash) -> id, existing first; existing tasks as unordered id pairs.
    cand_ids: dict[tuple[int, str], int] = {}
    existing_pairs: set[frozenset[int]] = set()
    for chunk in _chunks(sorted(existing_prompt_ids)):
        for pid, h, cid in Candidate.objects.filter(prompt_id__in=chunk).values_list(
            "prompt_id", "content_hash", "id"
        ):
            cand_ids[(pid, h)] = cid
        existing_pairs.update(
            frozenset(p)
            for p in ComparisonTask.objects.filter(prompt_id__in=chunk).values_list(
                "candidate_a", "candidate_b"
            )
        )
    new_cand_keys: list[tuple[int, str]] = []
    rows = []
    for h, group in groups.items():
        pid = prompt_ids[h]
        for c_hash, response in group["candidates"].items():
            if (pid, c_hash) not in cand_ids:
                cand_ids[(pid, c_hash)] = -1  # placeholder until the insert returns the id
                new_cand_keys.append((pid, c_hash))
                rows.append((pid, response.text, response.model_name, response.generation_params, c_hash))
    columns = ("prompt_id", "text", "model_name", "generation_params", "content_hash")
    cand_ids.update(zip(new_cand_keys, insert_rows(Candidate, columns, rows), strict=True))
    report.candidates_created = len(new_cand_keys)
    report.candidates_duplicate = sum(len(hashes) for _, hashes, _ in record_keys) - len(new_cand_keys)
    _tick(progress, len(rows))

    # 4. Tasks: known pairs for preference shapes, the pairing strategy otherwise; random A/B order.
    rows = []
    preferences: list[str | None] = []
    new_task_keys: set[frozenset[int]] = set()
    planned = 0
    for h, group in groups.items():
        pid = prompt_ids[h]
        if group["pairs"]:
            pairs = [(cand_ids[(pid, a)], cand_ids[(pid, b)], True) for a, b in group["pairs"]]
        else:
            ids = [cand_ids[(pid, c)] for c in group["candidates"]]
            pairs = [(ids[i], ids[j], False) for i, j in pairs_for_strategy(strategy, len(ids), k=k, rng=rng)]
        for first, second, first_preferred in pairs:
            planned += 1
            key = frozenset((first, second))
            if key in existing_pairs or key in new_task_keys:
                continue
            new_task_keys.add(key)
            swap = rng.random() < 0.5
            a, b = (second, first) if swap else (first, second)
            known = (Choice.B if swap else Choice.A).value if first_preferred else None
            metadata = {"import_batch": batch.pk}
            if known:
                metadata["source_preference"] = known
            rows.append((project.pk, pid, a, b, metadata))
            preferences.append(known)
    columns = ("project_id", "prompt_id", "candidate_a_id", "candidate_b_id", "metadata")
    task_ids = insert_rows(ComparisonTask, columns, rows)
    report.tasks_created = len(task_ids)
    report.tasks_duplicate = planned - len(task_ids)
    _tick(progress, len(rows))

    # 5. Prior judgments: the known preference, by the import system user. They stay counted-looking
    # (is_extra=False) for exports, but never take an overlap-k slot (services.judgments skips priors).
    if prior_judgments:
        system_user = import_system_user()
        rows = [
            (task_id, system_user.pk, known, JudgmentSource.PRIOR.value)
            for task_id, known in zip(task_ids, preferences, strict=True)
            if known is not None
        ]
        insert_rows(Judgment, ("task_id", "annotator_id", "choice", "source"), rows)
        report.judgments_created = len(rows)
        _tick(progress, len(rows))

    # A record is a duplicate when everything it names (prompt, candidates, its pair) already existed.
    created_prompts, created_cands = set(new_prompt_hashes), set(new_cand_keys)
    claimed: set = set()
    for p_hash, hashes, pref in record_keys:
        pid = prompt_ids[p_hash]
        owned: list = [("p", p_hash)] if p_hash in created_prompts else []
        owned += [("c", (pid, c)) for c in hashes if (pid, c) in created_cands]
        if pref:
            pair = frozenset((cand_ids[(pid, pref[0])], cand_ids[(pid, pref[1])]))
            if pair in new_task_keys:
                owned.append(("t", pair))
        fresh = [o for o in owned if o not in claimed]
        claimed.update(fresh)
        if not fresh:
            report.records_duplicate += 1


def _tick(progress: Progress | None, n: int) -> None:
    if progress and n:
        progress("write", n)
