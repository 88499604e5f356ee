"""Web pages for ML engineers: training runs (list, launch, live detail, cancel, retry) and the reward-model
registry (list, evaluation report, promote through the gate, evaluate on a snapshot, compare two models)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.auth import is_admin, visible_projects
from training import run_charts
from training.access import require_engineer
from training.datasets.selectors import snapshot_get, snapshot_list
from training.models import DatasetSnapshot, JobStatus, RewardModel, TrainingRun
from training.rewardmodels.registry import (
    PromotionGate,
    PromotionRefused,
    reward_model_evaluate,
    reward_model_promote,
)
from training.rewardmodels.selectors import (
    evaluation_for,
    live_agreement_history,
    promotion_list,
    reward_model_evaluations,
    reward_model_list,
)
from training.rewardmodels.services import live_agreement_record, reward_run_create, run_cancel, run_retry
from training.rewardmodels.trainer import RewardRunConfig
from training.runs import run_list, run_live_state

FORM_FIELDS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "max_length",
    "max_steps",
    "ensemble_size",
    "length_penalty",
)


def _run_or_404(user, run_id: int) -> TrainingRun:
    run = run_list(projects=visible_projects(user)).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    return run


def _model_or_404(user, model_id) -> RewardModel:
    try:
        return reward_model_list(projects=visible_projects(user)).get(pk=int(model_id))
    except (RewardModel.DoesNotExist, TypeError, ValueError):
        raise Http404("No such reward model.") from None


def _snapshot_or_none(user, raw_id) -> DatasetSnapshot | None:
    """The snapshot a form names, through the one snapshot rule (all its projects visible); None when the
    id is missing, not a number or not visible."""
    try:
        snapshot_id = int(raw_id)
    except (TypeError, ValueError):
        return None
    return snapshot_get(user=user, snapshot_id=snapshot_id)


def run_charts_svg(state: dict) -> dict[str, str]:
    series = state["series"]
    pick = lambda *names: {n: series[n] for n in names if n in series}  # noqa: E731
    return {
        # Validation rows (eval_*, written during training) are drawn beside the train batches' values.
        "loss": run_charts.line_chart_svg(pick("loss", "eval_loss"), "Loss (train batches, validation)"),
        "accuracy": run_charts.line_chart_svg(
            pick("accuracy", "eval_accuracy"), "Pairwise accuracy (train batches, validation)"
        ),
        "margin": run_charts.line_chart_svg(pick("margin", "eval_margin"), "Reward margin"),
        "learning_rate": run_charts.line_chart_svg(pick("learning_rate"), "Learning rate"),
    }


def evaluation_charts(metrics: dict) -> dict[str, str]:
    buckets = metrics.get("accuracy_by_length_diff") or []
    return {
        "reliability": run_charts.reliability_svg(metrics.get("reliability") or []),
        "length": run_charts.bar_chart_svg(
            [run_charts.length_bucket_label(b["lo"], b["hi"]) for b in buckets],
            [b["accuracy"] for b in buckets],
            "Accuracy by length difference (chosen - rejected, chars)",
        ),
    }


@login_required
def run_list_page(request):
    require_engineer(request.user, what="Training runs")
    projects = visible_projects(request.user)
    runs = list(
        run_list(projects=projects, kind=request.GET.get("kind"), status=request.GET.get("status"))[:200]
    )
    snapshots = snapshot_list(user=request.user).filter(status=JobStatus.SUCCEEDED)[:100]
    return render(
        request,
        "training/runs/list.html",
        {"runs": runs, "snapshots": snapshots, "defaults": RewardRunConfig(), "statuses": JobStatus.choices},
    )


@login_required
@require_POST
def run_create_page(request):
    require_engineer(request.user, what="Training runs")
    snapshot = _snapshot_or_none(request.user, request.POST.get("snapshot"))
    if snapshot is None:
        messages.error(request, "Pick a ready snapshot.")
        return redirect("training:run_list")
    config: dict = {}
    defaults = RewardRunConfig()
    try:
        for name in FORM_FIELDS:
            raw = request.POST.get(name, "").strip()
            if raw:
                config[name] = type(getattr(defaults, name))(
                    float(raw) if "." in raw or "e" in raw else int(raw)
                )
        config["use_lora"] = request.POST.get("use_lora") == "on"
        config["length_offset"] = request.POST.get("length_offset") == "on"
        config["truncate_prompt_left"] = request.POST.get("truncate_prompt_left", "on") == "on"
        run = reward_run_create(
            snapshot=snapshot,
            base_model=request.POST.get("base_model", "").strip(),
            config=config,
            seed=int(request.POST.get("seed") or 42),
            user=request.user,
        )
    except (ValidationError, ValueError) as exc:
        messages.error(request, f"Could not start the run: {exc}")
        return redirect("training:run_list")
    messages.success(request, f"Run {run.pk} queued on the training queue.")
    return redirect("training:run_detail", run_id=run.pk)


@login_required
def run_detail_page(request, run_id: int):
    require_engineer(request.user, what="Training runs")
    run = _run_or_404(request.user, run_id)
    state = run_live_state(run)
    reward_model = RewardModel.objects.filter(run=run).first()
    return render(
        request,
        "training/runs/detail.html",
        {
            "run": run,
            "state": state,
            "charts": run_charts_svg(state),
            "reward_model": reward_model,
            "live": run.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        },
    )


@login_required
def run_live_json(request, run_id: int):
    """What the detail page polls while the run is live: state plus freshly rendered charts."""
    require_engineer(request.user, what="Training runs")
    state = run_live_state(_run_or_404(request.user, run_id))
    state["charts"] = run_charts_svg(state)
    state.pop("series")
    return JsonResponse(state)


@login_required
@require_POST
def run_cancel_page(request, run_id: int):
    require_engineer(request.user, what="Training runs")
    run = run_cancel(run=_run_or_404(request.user, run_id))
    messages.info(request, f"Cancel requested for run {run.pk} ({run.status}).")
    return redirect("training:run_detail", run_id=run.pk)


@login_required
@require_POST
def run_retry_page(request, run_id: int):
    require_engineer(request.user, what="Training runs")
    try:
        run = run_retry(run=_run_or_404(request.user, run_id), user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("training:run_detail", run_id=run_id)
    return redirect("training:run_detail", run_id=run.pk)


@login_required
def reward_model_list_page(request):
    require_engineer(request.user, what="Training runs")
    models = list(reward_model_list(projects=visible_projects(request.user))[:200])
    for m in models:
        latest = evaluation_for(m, m.snapshot_id)
        m.test_metrics = latest.metrics if latest else {}
    return render(request, "training/runs/reward_models.html", {"models": models})


@login_required
def reward_model_detail_page(request, model_id: int):
    require_engineer(request.user, what="Training runs")
    rm = _model_or_404(request.user, model_id)
    evaluations = list(reward_model_evaluations(rm))
    chosen = next((e for e in evaluations if str(e.pk) == request.GET.get("evaluation")), None)
    chosen = chosen or next((e for e in evaluations if e.snapshot_id == rm.snapshot_id), None)
    chosen = chosen or (evaluations[0] if evaluations else None)
    snapshots = snapshot_list(user=request.user).filter(status=JobStatus.SUCCEEDED)[:100]
    return render(
        request,
        "training/runs/reward_model.html",
        {
            "rm": rm,
            "evaluations": evaluations,
            "evaluation": chosen,
            "charts": evaluation_charts(chosen.metrics) if chosen else {},
            "promotions": promotion_list(project=rm.project).filter(reward_model=rm),
            "agreements": list(live_agreement_history(rm, limit=20)),
            "gate": PromotionGate(),
            "snapshots": snapshots,
            "others": reward_model_list(projects=visible_projects(request.user)).exclude(pk=rm.pk)[:50],
            "show_paths": is_admin(request.user),  # server paths are for admins (as in the API)
        },
    )


@login_required
@require_POST
def reward_model_live_agreement_page(request, model_id: int):
    """Measure the model's live agreement now (the periodic job does the same) and show the page again."""
    require_engineer(request.user, what="Training runs")
    rm = _model_or_404(request.user, model_id)
    row = live_agreement_record(reward_model=rm)
    messages.success(request, f"Live agreement measured on {row.n} new votes.")
    return redirect(reverse("training:reward_model_detail", args=[rm.pk]) + "#live-agreement")


@login_required
@require_POST
def reward_model_promote_page(request, model_id: int):
    require_engineer(request.user, what="Training runs")
    rm = _model_or_404(request.user, model_id)
    try:
        gate = PromotionGate(
            min_accuracy=float(request.POST.get("min_accuracy") or PromotionGate.min_accuracy),
            tolerance=float(request.POST.get("tolerance") or PromotionGate.tolerance),
        )
        promotion = reward_model_promote(
            reward_model=rm,
            user=request.user,
            gate=gate,
            force=request.POST.get("force") == "on",
            reason=request.POST.get("reason", ""),
        )
    except PromotionRefused as exc:
        messages.error(request, f"The gate refused v{rm.version}: {'; '.join(exc.gate['reasons'])}")
    except (ValidationError, ValueError) as exc:
        messages.error(request, f"Not promoted: {exc}")
    else:
        note = " (forced override recorded)" if promotion.forced else ""
        messages.success(request, f"v{rm.version} is now the active reward model of {rm.project}{note}.")
    return redirect("training:reward_model_detail", model_id=rm.pk)


@login_required
@require_POST
def reward_model_evaluate_page(request, model_id: int):
    require_engineer(request.user, what="Training runs")
    rm = _model_or_404(request.user, model_id)
    snapshot = _snapshot_or_none(request.user, request.POST.get("snapshot"))
    if snapshot is None or snapshot.status != JobStatus.SUCCEEDED:
        raise Http404("No such snapshot.")
    try:
        evaluation = reward_model_evaluate(
            reward_model=rm, snapshot=snapshot, split=request.POST.get("split", "test")
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("training:reward_model_detail", model_id=rm.pk)
    return redirect(f"{reverse('training:reward_model_detail', args=[rm.pk])}?evaluation={evaluation.pk}")


@login_required
def reward_model_compare_page(request):
    """Two reward models side by side, on the first model's snapshot test split where both have one."""
    require_engineer(request.user, what="Training runs")
    a = _model_or_404(request.user, request.GET.get("a"))
    b = _model_or_404(request.user, request.GET.get("b"))
    columns = []
    for rm in (a, b):
        evaluation = evaluation_for(rm, a.snapshot_id) or evaluation_for(rm)
        columns.append(
            {
                "rm": rm,
                "evaluation": evaluation,
                "same_split": bool(evaluation and evaluation.snapshot_id == a.snapshot_id),
                "charts": evaluation_charts(evaluation.metrics) if evaluation else {},
            }
        )
    keys = ("accuracy", "mean_margin", "ece", "length_correlation", "reward_mean", "reward_std", "n")
    rows = [(k, [c["evaluation"].metrics.get(k) if c["evaluation"] else None for c in columns]) for k in keys]
    return render(request, "training/runs/compare.html", {"a": a, "b": b, "columns": columns, "rows": rows})
