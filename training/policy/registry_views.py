"""Web pages of the policy registry for ML engineers: the registered versions per project, a version's page
(card, lineage, gate verdicts, promotion history, promote / override form), and the register button of the
policy run page."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import is_admin, visible_projects
from training.access import require_engineer
from training.configs import ConfigError
from training.models import PolicyVersion
from training.policy.gate import PolicyGateConfig
from training.policy.registry import (
    PolicyPromotionRefused,
    policy_gate_check,
    policy_version_promote,
    policy_version_register,
)
from training.policy.selectors import policy_promotion_list, policy_version_list
from training.policy.views import _run_or_404

WHAT = "The policy registry"


def _policy_or_404(user, policy_id: int) -> PolicyVersion:
    policy = policy_version_list(projects=visible_projects(user)).filter(pk=policy_id).first()
    if policy is None:
        raise Http404("No such policy version.")
    return policy


def _gate_from_form(form) -> PolicyGateConfig:
    """The gate config from the form's fields (empty ones take their defaults); ``ConfigError`` when a value
    is not a number or out of range."""
    data = {}
    errors = {}
    for name, (low, _high) in PolicyGateConfig.RANGES.items():
        raw = (form.get(name) or "").strip()
        if not raw:
            continue
        try:
            data[name] = int(raw) if isinstance(low, int) and not isinstance(low, float) else float(raw)
        except ValueError:
            errors[name] = [f"not a number: {raw[:20]!r}"]
    if errors:
        raise ConfigError(errors, "gate config")
    return PolicyGateConfig.from_dict(data)


@login_required
def policy_registry_page(request):
    require_engineer(request.user, what=WHAT)
    projects = visible_projects(request.user)
    versions = policy_version_list(projects=projects)
    project_id = request.GET.get("project", "")
    if project_id.isdigit():
        versions = versions.filter(project_id=int(project_id))
    groups: dict = {}
    for v in versions.order_by("project__name", "-version")[:500]:
        groups.setdefault(v.project, []).append(v)
    return render(
        request,
        "training/policy/registry.html",
        {"groups": groups, "projects": projects, "project_id": project_id},
    )


@login_required
def policy_version_page(request, policy_id: int):
    require_engineer(request.user, what=WHAT)
    policy = _policy_or_404(request.user, policy_id)
    return render(
        request,
        "training/policy/version.html",
        {
            "policy": policy,
            "gate_defaults": PolicyGateConfig().to_dict(),
            "gate_config": (policy.gate or {}).get("config") or PolicyGateConfig().to_dict(),
            "promotions": policy_promotion_list(policy=policy)[:50],
            "card_json": json.dumps(policy.card, indent=2, sort_keys=True, default=str),
            "lineage_json": json.dumps(policy.lineage, indent=2, sort_keys=True, default=str),
            "show_paths": is_admin(request.user),
        },
    )


@login_required
@require_POST
def policy_register_page(request, run_id: int):
    require_engineer(request.user, what=WHAT)
    run = _run_or_404(request.user, run_id)
    try:
        policy = policy_version_register(run=run, user=request.user)
    except ValidationError as exc:
        messages.error(request, f"Could not register run {run.pk}: {'; '.join(exc.messages)}")
        return redirect("training:policy_detail", run_id=run.pk)
    messages.success(request, f"Registered run {run.pk} as {policy}.")
    return redirect("training:policy_version", policy_id=policy.pk)


@login_required
@require_POST
def policy_gate_page(request, policy_id: int):
    require_engineer(request.user, what=WHAT)
    policy = _policy_or_404(request.user, policy_id)
    try:
        verdict = policy_gate_check(policy=policy, gate=_gate_from_form(request.POST))
    except ConfigError as exc:
        messages.error(request, f"Invalid gate settings: {exc}")
    else:
        if verdict["passed"]:
            messages.success(request, "The gate passes.")
        else:
            messages.warning(request, f"The gate fails: {', '.join(verdict['failed'])}.")
    return redirect("training:policy_version", policy_id=policy.pk)


@login_required
@require_POST
def policy_promote_page(request, policy_id: int):
    require_engineer(request.user, what=WHAT)
    policy = _policy_or_404(request.user, policy_id)
    try:
        promotion = policy_version_promote(
            policy=policy,
            user=request.user,
            gate=_gate_from_form(request.POST),
            force=request.POST.get("force") == "on",
            reason=request.POST.get("reason", ""),
        )
    except ConfigError as exc:
        messages.error(request, f"Invalid gate settings: {exc}")
    except PolicyPromotionRefused as exc:
        messages.error(request, f"The gate refused {policy}: {exc.messages[0]}")
    except ValidationError as exc:
        messages.error(request, f"Could not promote: {'; '.join(exc.messages)}")
    else:
        how = "forced past a failed gate" if promotion.forced else "gate passed"
        messages.success(request, f"{policy} is now the active policy ({how}).")
    return redirect("training:policy_version", policy_id=policy.pk)
