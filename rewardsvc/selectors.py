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
    can_score: bool = True
    """Member of the served project (or an admin); always true when no project is served."""
    can_reload: bool = False
    """Engineer or admin in the served project (any engineer or admin when no project is served)."""
    budget_root_id: int | None = None
    """The token whose rate-limit budget this minted token shares (``ApiToken.budget_root``)."""
    budget_root_rate_limit_per_minute: int | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _active_reward_model(project_id: int) -> RewardModel | None:
    # The training registry may provide the canonical lookup; fall back to the model's own invariant
    # (at most one active RM per project, enforced by a constraint).
    try:
        registry = importlib.import_module("training.rewardmodels.selectors")
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


def token_info(raw_key: str, *, project_id: int | None = None) -> TokenInfo | None:
    """Resolve a raw API key (unknown, revoked, expired tokens and inactive users give None), with the
    holder's rights in ``project_id`` (the project a reward server serves)."""
    from annotation.auth import token_lookup

    token = token_lookup(raw_key)
    if token is None:
        return None
    return token_infos_by_id([token.pk], project_id=project_id).get(token.pk)


def token_infos_by_id(
    token_ids: Iterable[int], chunk: int = 1000, *, project_id: int | None = None
) -> dict[int, TokenInfo]:
    """The tokens among ``token_ids`` that still authenticate, as ``token_info`` would resolve them now;
    revoked, expired and deleted tokens and those of deactivated users are absent. Three queries per chunk.

    Rights in ``project_id`` follow the web's rules (``annotation.auth.visible_projects``): admins
    (superusers or the admin role) everywhere; others score only as members of the project and reload only
    as members whose membership role is engineer or admin, or who hold the global engineer role."""
    from django.contrib.auth import get_user_model

    from annotation.auth import live_tokens
    from annotation.models import ProjectMembership, Role

    ids = sorted(set(token_ids))
    out: dict[int, TokenInfo] = {}
    for start in range(0, len(ids), chunk):
        rows = list(
            live_tokens()
            .filter(pk__in=ids[start : start + chunk])
            .values(
                "pk",
                "scopes",
                "rate_limit_per_minute",
                "budget_root_id",
                "budget_root__rate_limit_per_minute",
                "user_id",
                "user__is_staff",
                "user__is_superuser",
            )
        )
        user_ids = {row["user_id"] for row in rows}
        groups: dict[int, set[str]] = {}
        for user_id, name in (
            get_user_model()
            .groups.through.objects.filter(
                user_id__in=user_ids, group__name__in=[Role.ADMIN.value, Role.ENGINEER.value]
            )
            .values_list("user_id", "group__name")
        ):
            groups.setdefault(user_id, set()).add(name)
        roles_here: dict[int, str] = {}
        if project_id is not None:
            roles_here = dict(
                ProjectMembership.objects.filter(project_id=project_id, user_id__in=user_ids).values_list(
                    "user_id", "role"
                )
            )
        for row in rows:
            user_groups = groups.get(row["user_id"], set())
            admin = bool(row["user__is_superuser"] or Role.ADMIN in user_groups)
            staff = bool(row["user__is_staff"] or admin or Role.ENGINEER in user_groups)
            if project_id is None:
                can_score, can_reload = True, staff
            else:
                role = roles_here.get(row["user_id"])
                can_score = admin or role is not None
                can_reload = admin or (
                    role is not None and (role in (Role.ENGINEER, Role.ADMIN) or Role.ENGINEER in user_groups)
                )
            out[row["pk"]] = TokenInfo(
                token_id=row["pk"],
                user_id=row["user_id"],
                scopes=tuple(row["scopes"] or ()),
                rate_limit_per_minute=row["rate_limit_per_minute"],
                is_staff=staff,
                can_score=can_score,
                can_reload=can_reload,
                budget_root_id=row["budget_root_id"],
                budget_root_rate_limit_per_minute=row["budget_root__rate_limit_per_minute"],
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
