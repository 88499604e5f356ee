"""Lineage writes: the card file ``preflab_lineage.json`` in an artefact directory (a reward model's
``artifact_dir``, a policy run's model directory), written whole through a temporary file and a rename.

``lineage_cards_refresh`` is what the signal handlers (``training.lineage.receivers``) call after a
commit: a card that cannot be written is logged, never an error of the business action that triggered it.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

from training.lineage.card import CARD_FILE
from training.lineage.selectors import lineage_card, lineage_card_dir
from training.models import RewardModel, RunKind, TrainingRun

log = logging.getLogger(__name__)


def lineage_card_write(*, kind: str, obj) -> Path | None:
    """Write the artefact's card (the system's view: the whole chain) into its directory; returns the
    path, or None when the artefact has no card directory (``lineage_card_dir``) or it does not exist."""
    folder = lineage_card_dir(kind, obj)
    if folder is None or not folder.is_dir():
        return None
    card = lineage_card(kind=kind, obj=obj)
    path = folder / CARD_FILE
    tmp = folder / f".{CARD_FILE}.{uuid.uuid4().hex[:8]}.tmp"  # two writers never share a temp file
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def lineage_cards_refresh(*, reward_model_ids=(), run_ids=()) -> int:
    """(Re)write the cards of these reward models and runs (a reward run's card is its reward models');
    returns how many were written. Failures are logged."""
    written = 0
    run_rows = list(TrainingRun.objects.filter(pk__in=list(run_ids)).select_related("project", "snapshot"))
    rm_ids = set(reward_model_ids)
    rm_ids.update(
        RewardModel.objects.filter(run__in=[r for r in run_rows if r.kind == RunKind.REWARD]).values_list(
            "pk", flat=True
        )
    )
    targets = [("run", r) for r in run_rows if r.kind != RunKind.REWARD]
    rms = RewardModel.objects.filter(pk__in=rm_ids).select_related("project", "run", "snapshot")
    targets += [("reward_model", rm) for rm in rms]
    for kind, obj in targets:
        try:
            written += lineage_card_write(kind=kind, obj=obj) is not None
        except Exception:  # noqa: BLE001 - a card is a by-product: never fail what triggered it
            log.exception("could not write the lineage card of %s %s", kind, obj.pk)
    return written
