"""Spot checks: a person pastes or picks a prompt and candidates and sees their rewards; recent scored pairs
are sent to an annotation project as comparison tasks so humans check what the reward model rewards."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.auth import has_role, visible_projects
from annotation.models import Prompt
from rewardsvc.selectors import scored_sample_recent, spot_check_models
from rewardsvc.services import scored_samples_to_project, spot_check_score

SPOT_CHECK_ROLES = ("engineer", "reviewer")
CANDIDATE_SEPARATOR = "---"
MAX_CANDIDATES = 16
#: Newest scored samples one "send to annotation" uses: default and cap.
DEFAULT_SEND, MAX_SEND = 200, 2000
#: Largest id a form may name (PostgreSQL bigint; a larger number would reach the database as an error).
MAX_ID = 2**63 - 1


def _require_role(request) -> None:
    if not has_role(request.user, *SPOT_CHECK_ROLES):
        raise PermissionDenied("Spot checks are for engineers and reviewers.")


class SpotCheckScoreForm(forms.Form):
    """What "Score" scores: candidates separated by lines of ``---`` (the picked model and prompt come from
    the page's pickers)."""

    candidates = forms.CharField(required=False, strip=False)

    def clean_candidates(self) -> list[str]:
        parts, current = [], []
        for line in self.cleaned_data["candidates"].splitlines():
            if line.strip() == CANDIDATE_SEPARATOR:
                parts.append("\n".join(current).strip())
                current = []
            else:
                current.append(line)
        parts.append("\n".join(current).strip())
        candidates = [p for p in parts if p]
        if not candidates:
            raise forms.ValidationError(
                f"Give at least one candidate (separate candidates with a line '{CANDIDATE_SEPARATOR}')."
            )
        if len(candidates) > MAX_CANDIDATES:
            raise forms.ValidationError(f"At most {MAX_CANDIDATES} candidates.")
        return candidates


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
        form = SpotCheckScoreForm({"candidates": candidates_text})
        if selected is None or not form.is_valid():
            ctx["error"] = (
                "Pick a reward model." if selected is None else " ".join(form.errors.get("candidates", []))
            )
        else:
            ctx["results"] = spot_check_score(
                reward_model=selected, prompt=prompt_text, candidates=form.cleaned_data["candidates"]
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
