"""Spot checks: a person pastes or picks a prompt and candidates and sees their rewards; recent scored pairs
are sent to an annotation project as comparison tasks so humans check what the reward model rewards."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.auth import has_role, visible_projects
from annotation.models import Prompt
from rewardsvc.scoring import RewardScorer
from rewardsvc.selectors import scored_sample_recent, spot_check_models
from rewardsvc.services import scored_samples_record, scored_samples_to_project
from training.rm_encoding import can_normalize, normalize_rewards

SPOT_CHECK_ROLES = ("engineer", "reviewer")
CANDIDATE_SEPARATOR = "---"
MAX_CANDIDATES = 16
#: Newest scored samples one "send to annotation" uses: default and cap.
DEFAULT_SEND, MAX_SEND = 200, 2000
#: Largest id a form may name (PostgreSQL bigint; a larger number would reach the database as an error).
MAX_ID = 2**63 - 1

_scorers: OrderedDict[str, RewardScorer] = OrderedDict()
_scorers_lock = threading.Lock()


def scorer_for(reward_model) -> RewardScorer:
    """An in-process scorer for a registered RM (the two most recently used stay loaded)."""
    key = f"{reward_model.pk}:{reward_model.artifact_dir}"
    with _scorers_lock:
        if key in _scorers:
            _scorers.move_to_end(key)
            return _scorers[key]
        scorer = RewardScorer.load(
            reward_model.artifact_dir,
            max_length=reward_model.max_length,
            reward_mean=reward_model.reward_mean,
            reward_std=reward_model.reward_std,
            version=reward_model.version,
        )
        _scorers[key] = scorer
        while len(_scorers) > 2:
            _scorers.popitem(last=False)
        return scorer


def score_candidates(reward_model, prompt: str, candidates: list[str]) -> tuple[list[float], list[bool]]:
    """Rewards via the reward server when ``PREFLAB_RM_SERVER_URL`` is set (with ``PREFLAB_RM_SERVER_TOKEN``),
    else in-process with the same scoring code."""
    server = settings.PREFLAB_RM_SERVER_URL
    if server:
        from rewardsvc.client import PrefLabRewardClient

        with PrefLabRewardClient(server, settings.PREFLAB_RM_SERVER_TOKEN or None) as client:
            result = client.score([(prompt, c) for c in candidates], model=reward_model.version)
        return result.rewards, result.truncated
    scorer = scorer_for(reward_model)
    encoded = [scorer.encode(prompt, c) for c in candidates]
    return scorer.score_encoded(encoded), [e.truncated for e in encoded]


def _require_role(request) -> None:
    if not has_role(request.user, *SPOT_CHECK_ROLES):
        raise PermissionDenied("Spot checks are for engineers and reviewers.")


def _split_candidates(text: str) -> list[str]:
    parts, current = [], []
    for line in text.splitlines():
        if line.strip() == CANDIDATE_SEPARATOR:
            parts.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    parts.append("\n".join(current).strip())
    return [p for p in parts if p]


class SpotCheckSendForm(forms.Form):
    """What "Send to annotation" posts; bad values are form errors (a 400 page naming the field)."""

    reward_model = forms.IntegerField(min_value=1, max_value=MAX_ID)
    project = forms.IntegerField(min_value=1, max_value=MAX_ID)
    limit = forms.IntegerField(min_value=1, max_value=MAX_SEND, required=False)
    source = forms.ChoiceField(
        choices=[("", "any"), ("traffic", "traffic"), ("rollout", "rollout"), ("spot_check", "spot_check")],
        required=False,
    )


def _page_context(request, models: list, model_id) -> dict:
    """The spot-check page's pickers: models, projects, recent samples, the selected model and its prompts."""
    ctx: dict = {
        "models": models,
        "separator": CANDIDATE_SEPARATOR,
        "projects": visible_projects(request.user),
        "recent": scored_sample_recent(unsent_only=False).filter(reward_model__in=models)[:20],
    }
    selected = None
    if model_id:
        selected = next((m for m in models if str(m.pk) == str(model_id)), None)
    elif models:
        selected = models[0]
    ctx["selected"] = selected
    if selected is not None:
        ctx["prompts"] = Prompt.objects.filter(project_id=selected.project_id).order_by("-id")[:50]
    return ctx


@login_required
@require_http_methods(["GET", "POST"])
def spot_check(request):
    _require_role(request)
    models = list(spot_check_models(request.user))
    ctx = _page_context(request, models, request.POST.get("reward_model") or request.GET.get("reward_model"))
    selected = ctx["selected"]
    prompt_text = request.POST.get("prompt", "")
    candidates_text = request.POST.get("candidates", "")
    picked = request.POST.get("prompt_id") or request.GET.get("prompt_id")
    if picked and selected is not None:
        prompt_obj = Prompt.objects.filter(pk=picked, project_id=selected.project_id).first()
        if prompt_obj is not None:
            prompt_text = prompt_text or prompt_obj.text
            if not candidates_text.strip():
                candidates_text = f"\n{CANDIDATE_SEPARATOR}\n".join(
                    c.text for c in prompt_obj.candidates.all()
                )
    ctx.update(prompt=prompt_text, candidates_text=candidates_text, picked=picked)
    if request.method == "POST":
        candidates = _split_candidates(candidates_text)
        if selected is None:
            ctx["error"] = "Pick a reward model."
        elif not candidates:
            ctx["error"] = (
                f"Give at least one candidate (separate candidates with a line '{CANDIDATE_SEPARATOR}')."
            )
        elif len(candidates) > MAX_CANDIDATES:
            ctx["error"] = f"At most {MAX_CANDIDATES} candidates."
        else:
            rewards, truncated = score_candidates(selected, prompt_text, candidates)
            normalized = None
            if can_normalize(selected.reward_mean, selected.reward_std):
                normalized = normalize_rewards(rewards, selected.reward_mean, selected.reward_std)
            rows = [
                {
                    "rank": 0,
                    "text": c,
                    "reward": r,
                    "normalized": normalized[i] if normalized else None,
                    "truncated": truncated[i],
                }
                for i, (c, r) in enumerate(zip(candidates, rewards, strict=True))
            ]
            rows.sort(key=lambda row: row["reward"], reverse=True)
            for rank, row in enumerate(rows, 1):
                row["rank"] = rank
            ctx["results"] = rows
            scored_samples_record(
                rows=[
                    {"prompt": prompt_text, "response": c, "reward": r}
                    for c, r in zip(candidates, rewards, strict=True)
                ],
                reward_model_id=selected.pk,
                source="spot_check",
            )
    return render(request, "rewardsvc/spot_check.html", ctx)


@login_required
@require_POST
def spot_check_send(request):
    """Send recent, not yet sent scored samples of one RM to an annotation project as spot-check tasks."""
    _require_role(request)
    form = SpotCheckSendForm(request.POST)
    if not form.is_valid():
        models_list = list(spot_check_models(request.user))
        ctx = _page_context(request, models_list, request.POST.get("reward_model"))
        ctx["send_errors"] = [f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()]
        return render(request, "rewardsvc/spot_check.html", ctx, status=400)
    v = form.cleaned_data
    models = {m.pk: m for m in spot_check_models(request.user)}
    reward_model = models.get(v["reward_model"])
    if reward_model is None:
        raise PermissionDenied("Unknown reward model.")
    project = get_object_or_404(visible_projects(request.user), pk=v["project"])
    limit = v["limit"] or DEFAULT_SEND
    source = v["source"] or None
    samples = list(scored_sample_recent(reward_model_id=reward_model.pk, source=source)[:limit])
    report = scored_samples_to_project(samples=samples, project=project)
    messages.success(
        request,
        f"Created {report.tasks_created} spot-check tasks in {project.name} from {report.samples_sent} "
        f"scored samples ({report.skipped_single} prompts had a single response and were skipped).",
    )
    return redirect(f"{reverse('rewardsvc:spot_check')}?reward_model={reward_model.pk}")
