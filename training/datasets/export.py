"""The export loop: stream the spec's judgments from the database, group votes by pair, combine them into
Bradley-Terry rows and hand each row to a ``SnapshotWriter``. Memory holds one pair's votes at a time
(plus numpy arrays of prompt keys for the split)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from training.datasets.pairs import (
    PromptSplitter,
    Vote,
    combine_pair,
    orient,
    prompt_split_key,
    ranking_pair_kept,
)
from training.datasets.selectors import (
    annotator_pseudonym,
    snapshot_prompt_hashes,
    snapshot_reliability_weights,
    snapshot_vote_rows,
)
from training.datasets.spec import SPLIT_NAMES, SnapshotSpec
from training.datasets.writers import FORMATS, SnapshotWriter

PROGRESS_EVERY = 5000


@dataclass
class ExportResult:
    counts: dict[str, Any] = field(default_factory=dict)
    class_balance: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    judgment_ids_hash: str = ""
    reliability: dict[tuple[int, int], float] = field(default_factory=dict)
    """The reliability weights the export used {(project_id, annotator_id): weight} ({} when none)."""


class EmptyExport(ValueError):
    """The spec selected judgments but no row survived (or none were selected)."""


def export_snapshot_files(
    spec: SnapshotSpec,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = FORMATS,
    weights: Mapping[tuple[int, int], float] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the spec's dataset into ``out_dir`` (which must exist) and return counts and hashes.

    ``weights`` maps (project_id, annotator_id) -> reliability; None computes them from the same database
    snapshot as the votes when the spec needs them (``snapshot_reliability_weights``). ``progress(n)`` is
    called with the number of judgments read since the last call. Raises
    ``EmptyExport`` when no row would be written; the caller cleans up ``out_dir``.
    """
    with _consistent_read():
        return _export(spec, out_dir, formats=formats, weights=weights, progress=progress)


@contextmanager
def _consistent_read() -> Iterator[None]:
    """Read the prompt ids and the votes from one database snapshot (REPEATABLE READ on PostgreSQL), so a
    judgment committed mid-export cannot appear in one query and not the other."""
    if connection.in_atomic_block or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _export(spec: SnapshotSpec, out_dir: Path, *, formats, weights, progress) -> ExportResult:
    if weights is None:
        weights = snapshot_reliability_weights(spec)
    # Split by prompt content: the same text in two projects of the snapshot lands in one split.
    keys = (prompt_split_key(h) for h in snapshot_prompt_hashes(spec))
    splitter = PromptSplitter(keys, spec.split, spec.seed)
    writer = SnapshotWriter(
        out_dir, formats=formats, has_margin=spec.has_margin, spec_json=spec.canonical_json()
    )
    state = _ExportState(spec=spec, writer=writer, splitter=splitter, weights=dict(weights))
    try:
        read = 0
        for row in snapshot_vote_rows(spec, with_created_at="votes" in formats):
            state.add(row)
            read += 1
            if progress is not None and read % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
        state.flush()
        if progress is not None and read % PROGRESS_EVERY:
            progress(read % PROGRESS_EVERY)
        if state.rows_total == 0:
            raise EmptyExport(
                "No judgments match the spec." if read == 0 else "No pair survived the spec's filters."
            )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return state.result(splitter)


@dataclass
class _ExportState:
    spec: SnapshotSpec
    writer: SnapshotWriter
    splitter: PromptSplitter
    weights: Mapping[tuple[int, int], float]
    key: tuple | None = None
    votes: list[Vote] = field(default_factory=list)
    context: tuple | None = None
    rows_total: int = 0
    counters: Counter = field(default_factory=Counter)
    rows: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    chosen_longer: int = 0
    pref_rows: int = 0
    _last_prompt: int | None = None
    _last_split: str = "train"
    _pseudonyms: dict[int, str] = field(default_factory=dict)

    def pseudonym(self, annotator_id: int) -> str:
        if annotator_id not in self._pseudonyms:
            self._pseudonyms[annotator_id] = annotator_pseudonym(annotator_id)
        return self._pseudonyms[annotator_id]

    def split_of(self, prompt_id: int, prompt_hash: str) -> str:
        if prompt_id != self._last_prompt:
            split = self.splitter.split_of(prompt_split_key(prompt_hash))
            self._last_prompt, self._last_split = prompt_id, split
        return self._last_split

    def add(self, row: tuple) -> None:
        (
            jid,
            task_id,
            project_id,
            prompt_id,
            cand_a,
            cand_b,
            kind,
            choice,
            strength,
            annotator_id,
            is_extra,
            source,
            ranking_order,
            adj_choice,
            adj_strength,
            prompt_text,
            prompt_messages,
            text_a,
            model_a,
            text_b,
            model_b,
            prompt_hash,
            *rest,
        ) = row
        self.counters["judgments_selected"] += 1
        split = self.split_of(prompt_id, prompt_hash)
        if self.writer.votes is not None:
            self.writer.write_vote(
                {
                    "judgment_id": jid,
                    "annotator": self.pseudonym(annotator_id),
                    "project_id": project_id,
                    "prompt_id": prompt_id,
                    "task_id": task_id,
                    "task_kind": kind,
                    "candidate_a_id": cand_a,
                    "candidate_b_id": cand_b,
                    "model_a": model_a,
                    "model_b": model_b,
                    "choice": choice,
                    "strength": strength,
                    "adjudicated_choice": adj_choice,
                    "is_extra": is_extra,
                    "source": source,
                    "created_at": rest[0].isoformat(),
                    "split": split,
                }
            )
        lo, hi = (cand_a, cand_b) if cand_a < cand_b else (cand_b, cand_a)
        key = (prompt_id, lo, hi)
        if key != self.key:
            self.flush()
            self.key = key
            texts = {cand_a: (text_a, model_a), cand_b: (text_b, model_b)}
            self.context = (project_id, prompt_id, prompt_text, prompt_messages, texts, split)
        if ranking_order and not ranking_pair_kept(ranking_order, cand_a, cand_b, self.spec.ranking_pairs):
            self.counters["ranking_pairs_skipped"] += 1
            return
        if adj_choice:
            _, _, label = orient(adj_choice, cand_a, cand_b)
            last = self.votes[-1] if self.votes else None
            if last is not None and last.adjudicated and last.task_id == task_id:
                self.votes[-1] = last._replace(judgment_ids=(*last.judgment_ids, jid))
                return
            self.votes.append(Vote((jid,), task_id, project_id, None, lo, hi, label, adj_strength, True))
            return
        if self.spec.min_reliability is not None:
            reliability = self.weights.get((project_id, annotator_id))
            if reliability is not None and reliability < self.spec.min_reliability:
                self.counters["votes_dropped_low_reliability"] += 1
                return
        _, _, label = orient(choice, cand_a, cand_b)
        self.votes.append(Vote((jid,), task_id, project_id, annotator_id, lo, hi, label, strength))

    def flush(self) -> None:
        if not self.votes:
            self.key = None
            return
        project_id, prompt_id, prompt_text, prompt_messages, texts, split = self.context
        rows, reason = combine_pair(self.votes, spec=self.spec, weights=self.weights)
        self.counters["pairs_seen"] += 1
        if reason:
            self.counters[f"dropped_{reason}"] += 1
        for row in rows:
            chosen_text, chosen_model = texts[row.chosen_id]
            rejected_text, rejected_model = texts[row.rejected_id]
            self.writer.write_row(
                split,
                prompt_text=prompt_text,
                prompt_messages=prompt_messages,
                chosen=chosen_text,
                rejected=rejected_text,
                margin=row.margin,
                meta={
                    "prompt_id": prompt_id,
                    "chosen_candidate_id": row.chosen_id,
                    "rejected_candidate_id": row.rejected_id,
                    "chosen_model": chosen_model,
                    "rejected_model": rejected_model,
                    "judgment_ids": list(row.judgment_ids),
                    "label_type": row.label_type,
                },
            )
            self.rows_total += 1
            self.rows[split] += 1
            self.labels[row.label_type] += 1
            self.counters["judgments_used"] += len(row.judgment_ids)
            if row.label_type == "pref":
                self.pref_rows += 1
                self.chosen_longer += len(chosen_text) > len(rejected_text)
        self.votes = []
        self.key = None

    def result(self, splitter: PromptSplitter) -> ExportResult:
        if self.spec.min_reliability is not None:
            self.counters.setdefault("votes_dropped_low_reliability", 0)  # reported even when nothing dropped
        counts: dict[str, Any] = dict(sorted(self.counters.items()))
        counts["rows"] = {split: self.rows.get(split, 0) for split in SPLIT_NAMES}
        counts["rows_total"] = self.rows_total
        counts["prompts"] = splitter.sizes()
        balance: dict[str, Any] = {
            "label_type": {k: self.labels.get(k, 0) for k in ("pref", "tie", "both_bad")},
            "chosen_longer_share": round(self.chosen_longer / self.pref_rows, 4) if self.pref_rows else None,
        }
        return ExportResult(
            counts=counts,
            class_balance=balance,
            content_hash=self.writer.content_hash(),
            judgment_ids_hash=self.writer.judgment_ids_hash(),
            reliability=dict(self.weights),
        )
