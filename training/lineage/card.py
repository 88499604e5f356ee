"""The lineage card's format: a schema name and version, the artefact, its chain of nodes, and a SHA-256
content hash over the card's canonical JSON (keys sorted, no whitespace, UTF-8), so a copy can be checked
wherever the artefact directory travels. Pure functions, no Django."""

from __future__ import annotations

import hashlib
import json
from typing import Any

CARD_SCHEMA = "preflab.lineage"
CARD_SCHEMA_VERSION = 1
#: The card's file name inside an artefact directory (beside ``preflab_card.json`` of a reward model).
CARD_FILE = "preflab_lineage.json"


def canonical_json(value: Any) -> str:
    """The one text a JSON value hashes as: keys sorted, compact separators, non-ASCII kept as UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_hash(value: Any) -> str:
    """SHA-256 of a JSON value's canonical text (run configs, reward model cards)."""
    return sha256_text(canonical_json(value))


def card_content_hash(card: dict[str, Any]) -> str:
    """The hash of everything in the card but its ``content_hash`` field."""
    return json_hash({k: v for k, v in card.items() if k != "content_hash"})


def card_make(*, artefact: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A card for ``artefact`` (a node key such as ``reward_model:7``) and its chain, upstream first."""
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "schema_version": CARD_SCHEMA_VERSION,
        "artefact": artefact,
        "nodes": nodes,
    }
    card["content_hash"] = card_content_hash(card)
    return card


def card_is_intact(card: Any) -> bool:
    """Whether a card read back (from a file) still has the content hash it was written with."""
    return (
        isinstance(card, dict)
        and card.get("schema") == CARD_SCHEMA
        and isinstance(card.get("content_hash"), str)
        and card["content_hash"] == card_content_hash(card)
    )
