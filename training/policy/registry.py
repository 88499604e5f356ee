"""Policy registry writes: register a finished policy run as its project's next version (writing
``preflab_policy_card.json`` into the artefact directory), check the promotion gate, and promote a version to
the project's active policy through the gate or by a recorded, reasoned override (as for reward models)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from training.models import (
    POLICY_VERSION_KINDS,
    JobStatus,
    PolicyPromotion,
    PolicyVersion,
    RunKind,
    TrainingRun,
)
from training.policy.gate import PolicyGateConfig, gate_verdict, refusal_message

POLICY_CARD_NAME = "preflab_policy_card.json"
CARD_FORMAT = "preflab-policy-card/1"


class PolicyPromotionRefused(ValidationError):
    """The gate said no; ``gate`` holds the verdict (each check, ``failed`` names the failing ones)."""

    def __init__(self, message: str, gate: dict):
        super().__init__(message)
        self.gate = gate


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_hashes(root: Path) -> dict[str, Any]:
    """sha256 of every file under ``root`` (the card itself left out) and one hash over them all (sorted
    ``name  hash`` lines), so a copied artefact can be checked against its card."""
    files = {
        str(p.relative_to(root)): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != POLICY_CARD_NAME
    }
    listing = "".join(f"{name}  {digest}\n" for name, digest in files.items())
    return {"files": files, "artifact_sha256": hashlib.sha256(listing.encode()).hexdigest()}


def _sft_lineage(sft_model: str) -> dict[str, Any]:
    """The SFT run that wrote ``sft_model`` (when PrefLab trained it) and that model's own base model."""
    sft_run = (
        TrainingRun.objects.filter(kind=RunKind.SFT, status=JobStatus.SUCCEEDED, output_dir=sft_model)
        .order_by("-id")
        .first()
    )
    base = ""
    card = Path(sft_model) / "preflab_sft.json"
    if card.is_file():
        try:
            base = json.loads(card.read_text(encoding="utf-8")).get("base_model", "")
        except (OSError, ValueError):
            base = ""
    if not base and sft_run is not None:
        base = sft_run.base_model
    return {"sft_model": sft_model, "sft_run_id": sft_run.pk if sft_run else None, "base_model": base}


def policy_lineage(run: TrainingRun) -> dict[str, Any]:
    """Where a policy came from: snapshot (id, hash), reward model (id, version), SFT and base model, the
    battle project and the capability evaluation run."""
    summary = run.summary or {}
    reward = summary.get("reward") if isinstance(summary.get("reward"), dict) else {}
    snapshot = run.snapshot
    battle_base = ((run.config or {}).get("battle") or {}).get("base_model", "")
    sft = _sft_lineage(run.base_model)
    return {
        "run_id": run.pk,
        "kind": run.kind,
        "seed": run.seed,
        "retry_of": run.retry_of_id,
        "snapshot_id": snapshot.pk if snapshot else None,
        "snapshot": f"{snapshot.name} v{snapshot.version}" if snapshot else None,
        "snapshot_hash": snapshot.content_hash if snapshot else None,
        "judgment_ids_hash": snapshot.judgment_ids_hash if snapshot else None,
        "reward": reward,
        "reward_model_id": reward.get("reward_model_id"),
        "reward_model_version": reward.get("version"),
        **sft,
        "base_model": battle_base or sft["base_model"],
        "battle_project_id": (summary.get("battle") or {}).get("project_id"),
        "capability_gate_run_id": (summary.get("capability") or {}).get("gate_run_id"),
    }


def _write_card(artifact_dir: Path, card: dict[str, Any]) -> None:
    path = artifact_dir / POLICY_CARD_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _check_registrable(run: TrainingRun) -> tuple[Any, Path]:
    if run.kind not in POLICY_VERSION_KINDS:
        raise ValidationError(
            {
                "run": f"run {run.pk} is a {run.kind} run; only {', '.join(POLICY_VERSION_KINDS)} runs are policies"
            }
        )
    if run.status != JobStatus.SUCCEEDED:
        raise ValidationError(
            {"run": f"run {run.pk} has not succeeded ({run.status}); register a finished run"}
        )
    existing = PolicyVersion.objects.filter(run=run).first()
    if existing is not None:
        raise ValidationError({"run": f"run {run.pk} is already registered as {existing}"})
    project = run.project or (run.snapshot.projects.order_by("pk").first() if run.snapshot else None)
    if project is None:
        raise ValidationError({"run": f"run {run.pk} has no project to register its policy under"})
    artifact_dir = Path((run.summary or {}).get("model_dir") or run.output_dir or "")
    if not str(artifact_dir) or not artifact_dir.is_dir():
        raise ValidationError({"run": f"run {run.pk}'s model directory is missing ({artifact_dir})"})
    return project, artifact_dir


def policy_version_register(*, run: TrainingRun, user=None) -> PolicyVersion:
    """Register a succeeded policy run as its project's next version and write its card into the artefact
    directory. Refuses (``ValidationError`` naming ``run``) SFT runs, unfinished or failed runs, a run
    already registered, a run without a project and a missing model directory."""
    project, artifact_dir = _check_registrable(run)
    hashes = artifact_hashes(artifact_dir)
    lineage = policy_lineage(run)
    summary = run.summary or {}
    for _attempt in range(5):  # two registrations at once race for the version number
        try:
            with transaction.atomic():
                version = (
                    PolicyVersion.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
                ) + 1
                card = {
                    "format": CARD_FORMAT,
                    "project": project.name,
                    "project_id": project.pk,
                    "version": version,
                    "kind": run.kind,
                    "run_id": run.pk,
                    "registered_at": timezone.now().isoformat(),
                    "config": run.config,
                    "lineage": lineage,
                    "hashes": hashes,
                    "training": {
                        k: summary[k]
                        for k in ("reward_first", "reward_last", "kl_last", "steps", "prompts", "warnings")
                        if k in summary
                    },
                }
                policy = PolicyVersion.objects.create(
                    project=project,
                    version=version,
                    run=run,
                    kind=run.kind,
                    artifact_dir=str(artifact_dir),
                    card=card,
                    config=run.config,
                    lineage=lineage,
                    registered_by=user if getattr(user, "is_authenticated", False) else None,
                )
                _write_card(artifact_dir, card)
            return policy
        except IntegrityError:
            if PolicyVersion.objects.filter(run=run).exists():
                raise ValidationError({"run": f"run {run.pk} is already registered"}) from None
            continue
    raise ValidationError("could not allocate a policy version")


def policy_gate_check(*, policy: PolicyVersion, gate: PolicyGateConfig | None = None) -> dict[str, Any]:
    """Evaluate the gate for ``policy`` and keep the verdict on the version (``gate``, ``gate_checked_at``)."""
    from training.policy.selectors import policy_gate_inputs

    if policy.run is None:
        verdict = {
            "passed": False,
            "failed": ["run"],
            "checks": [{"check": "run", "passed": False, "detail": "the run was deleted", "values": {}}],
            "config": (gate or PolicyGateConfig()).to_dict(),
        }
    else:
        verdict = gate_verdict(policy_gate_inputs(policy.run), gate or PolicyGateConfig())
    policy.gate, policy.gate_checked_at = verdict, timezone.now()
    PolicyVersion.objects.filter(pk=policy.pk).update(gate=verdict, gate_checked_at=policy.gate_checked_at)
    return verdict


def policy_version_promote(
    *,
    policy: PolicyVersion,
    user=None,
    gate: PolicyGateConfig | None = None,
    force: bool = False,
    reason: str = "",
) -> PolicyPromotion:
    """Make ``policy`` its project's active policy if it passes the gate.

    ``force=True`` overrides a failed gate; it needs a ``reason`` and is recorded as a forced promotion.
    Raises ``PolicyPromotionRefused`` (its message names each failed check) when the gate fails and
    ``force`` is off."""
    reason = reason.strip()
    if force and not reason:
        raise ValidationError({"reason": "a forced promotion needs a reason"})
    verdict = policy_gate_check(policy=policy, gate=gate)
    if not verdict["passed"] and not force:
        raise PolicyPromotionRefused(refusal_message(verdict), verdict)
    with transaction.atomic():
        locked = list(PolicyVersion.objects.select_for_update().filter(project=policy.project))
        previous = next((p for p in locked if p.is_active), None)
        PolicyVersion.objects.filter(project=policy.project, is_active=True).update(is_active=False)
        PolicyVersion.objects.filter(pk=policy.pk).update(is_active=True)
        policy.is_active = True
        forced = force and not verdict["passed"]
        return PolicyPromotion.objects.create(
            policy=policy,
            previous=previous if previous and previous.pk != policy.pk else None,
            promoted_by=user if getattr(user, "is_authenticated", False) else None,
            forced=forced,
            reason=reason,
            gate=verdict,
        )
