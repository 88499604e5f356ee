"""Reads for the reward service: which reward model to serve, API tokens as plain data, scored samples."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from rewardsvc.models import ScoredSample
from training.models import RewardModel


@dataclass(frozen=True)
class ServableModel:
    """What the server needs to load and describe one reward model version."""

    pk: int
    project_id: int
    version: int
    artifact_dir: str
    reward_mean: float | None
    reward_std: float | None
    max_length: int

    @property
    def model_id(self) -> str:
        return f"rm-p{self.project_id}-v{self.version}"


@dataclass(frozen=True)
class TokenInfo:
    """An API token resolved to what the scoring server checks (no ORM object crosses threads)."""

    token_id: int
    user_id: int
    scopes: tuple[str, ...]
    rate_limit_per_minute: int | None
    is_staff: bool

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _active_reward_model(project_id: int) -> RewardModel | None:
    # The training registry may provide the canonical lookup; fall back to the model's own invariant
    # (at most one active RM per project, enforced by a constraint).
    try:
        registry = importlib.import_module("training.selectors.registry")
        finder = getattr(registry, "reward_model_active", None)
    except ImportError:
        finder = None
    if finder is not None:
        try:
            return finder(project_id)
        except (TypeError, ValueError, AttributeError):
            pass
    return RewardModel.objects.filter(project_id=project_id, is_active=True).first()


def reward_model_for_serving(*, project_id: int, version: int | None = None) -> ServableModel | None:
    """The pinned ``version`` of a project's reward model, or its active one; None if there is none."""
    if version is not None:
        rm = RewardModel.objects.filter(project_id=project_id, version=version).first()
    else:
        rm = _active_reward_model(project_id)
        if rm is not None and not isinstance(rm, RewardModel):
            rm = RewardModel.objects.filter(pk=getattr(rm, "pk", rm)).first()
    if rm is None:
        return None
    return ServableModel(
        pk=rm.pk,
        project_id=rm.project_id,
        version=rm.version,
        artifact_dir=rm.artifact_dir,
        reward_mean=rm.reward_mean,
        reward_std=rm.reward_std,
        max_length=rm.max_length,
    )


def token_info(raw_key: str) -> TokenInfo | None:
    """Resolve a raw API key (unknown, revoked, expired tokens and inactive users give None)."""
    from annotation.auth import has_role, token_lookup

    token = token_lookup(raw_key)
    if token is None:
        return None
    user = token.user
    return TokenInfo(
        token_id=token.pk,
        user_id=user.pk,
        scopes=tuple(token.scopes or ()),
        rate_limit_per_minute=token.rate_limit_per_minute,
        is_staff=bool(user.is_staff or has_role(user, "admin", "engineer")),
    )


def token_infos_by_id(token_ids: Iterable[int], chunk: int = 1000) -> dict[int, TokenInfo]:
    """The tokens among ``token_ids`` that still authenticate, as ``token_info`` would resolve them now;
    revoked, expired and deleted tokens and those of deactivated users are absent. Two queries per chunk."""
    from django.contrib.auth import get_user_model

    from annotation.auth import live_tokens
    from annotation.models import Role

    ids = sorted(set(token_ids))
    staff_groups = [Role.ADMIN.value, Role.ENGINEER.value]
    out: dict[int, TokenInfo] = {}
    for start in range(0, len(ids), chunk):
        rows = list(
            live_tokens()
            .filter(pk__in=ids[start : start + chunk])
            .values(
                "pk", "scopes", "rate_limit_per_minute", "user_id", "user__is_staff", "user__is_superuser"
            )
        )
        user_ids = {row["user_id"] for row in rows}
        in_staff_group = set(
            get_user_model()
            .groups.through.objects.filter(user_id__in=user_ids, group__name__in=staff_groups)
            .values_list("user_id", flat=True)
        )
        for row in rows:
            out[row["pk"]] = TokenInfo(
                token_id=row["pk"],
                user_id=row["user_id"],
                scopes=tuple(row["scopes"] or ()),
                rate_limit_per_minute=row["rate_limit_per_minute"],
                is_staff=bool(
                    row["user__is_staff"] or row["user__is_superuser"] or row["user_id"] in in_staff_group
                ),
            )
    return out


def scored_sample_recent(
    *, reward_model_id: int | None = None, source: str | None = None, unsent_only: bool = True
) -> QuerySet[ScoredSample]:
    """Recent scored samples, newest first."""
    qs = ScoredSample.objects.select_related("reward_model").order_by("-id")
    if reward_model_id is not None:
        qs = qs.filter(reward_model_id=reward_model_id)
    if source:
        qs = qs.filter(source=source)
    if unsent_only:
        qs = qs.filter(sent_to_project_id__isnull=True)
    return qs


def spot_check_models(user) -> QuerySet[RewardModel]:
    """Reward models the user may spot-check: those of projects they can see, active ones first."""
    from annotation.auth import visible_projects

    return (
        RewardModel.objects.filter(project__in=visible_projects(user))
        .select_related("project")
        .order_by("-is_active", "project_id", "-version")
    )
