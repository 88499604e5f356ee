"""Reward-model sweep API for ML engineers (token scope ``train``; engineer or admin): create (202, the
config checked first: a 400 names the field and writes nothing), list, detail with the trials, cancel,
resume."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from annotation.api.errors import error_response
from annotation.auth import visible_projects
from training.models import SEED_MAX, RewardModelSweep, SweepTrial
from training.rewardmodels.api import TrainApi
from training.rewardmodels.sweeps.selectors import sweep_list, sweep_trials
from training.rewardmodels.sweeps.services import sweep_cancel, sweep_create, sweep_resume


class SweepOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RewardModelSweep
        fields = [
            "id",
            "project",
            "snapshot",
            "base_model",
            "config",
            "seed",
            "study_name",
            "status",
            "status_reason",
            "cancel_requested",
            "best_trial_number",
            "best_value",
            "chosen_config",
            "final_run",
            "test_result",
            "test_evaluations",
            "created_at",
            "finished_at",
        ]
        ref_name = "RewardModelSweep"


class TrialOutputSerializer(serializers.ModelSerializer):
    run_status = serializers.CharField(source="run.status", read_only=True)

    class Meta:
        model = SweepTrial
        fields = ["number", "run", "run_status", "params", "state", "value", "validation", "created_at"]
        ref_name = "SweepTrial"


class SweepApi(TrainApi):
    def get_sweep(self, sweep_id: int) -> RewardModelSweep:
        sweep = sweep_list(projects=visible_projects(self.request.user)).filter(pk=sweep_id).first()
        if sweep is None:
            raise Http404("No such sweep.")
        return sweep


class SweepListCreateApi(SweepApi, ListAPIView):
    """List sweeps (filter: ``status``) or start one on a ready snapshot."""

    serializer_class = SweepOutputSerializer

    class InputSerializer(serializers.Serializer):
        snapshot_id = serializers.IntegerField()
        base_model = serializers.CharField(max_length=500, default="minilm")
        config = serializers.DictField(
            required=False,
            default=dict,
            help_text="The sweep (SweepConfig): space {parameter: {low, high, log} or {choices}} over "
            "learning_rate, num_train_epochs, max_length, truncate_prompt_left, use_margin, lora_r, "
            "weight_decay; n_trials (at most PREFLAB_MAX_SWEEP_TRIALS), parallelism, objective "
            "(accuracy|loss, on the validation split), sampler (tpe|random), n_startup_trials, base (the "
            "RewardRunConfig every trial shares). A bad value, an unknown key or parameter, an empty or "
            "inverted range, or a count over its limit is a 400 naming 'config.<path>'; nothing is written.",
        )
        seed = serializers.IntegerField(required=False, default=42, min_value=0, max_value=SEED_MAX)

    def get_queryset(self):
        return sweep_list(
            projects=visible_projects(self.request.user), status=self.request.query_params.get("status")
        ).order_by("-id")

    @extend_schema(request=InputSerializer, responses={202: SweepOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = self.get_snapshot(data.validated_data["snapshot_id"])
        sweep = sweep_create(
            snapshot=snapshot,
            base_model=data.validated_data["base_model"],
            config=data.validated_data["config"],
            seed=data.validated_data["seed"],
            user=request.user,
        )
        return Response(SweepOutputSerializer(sweep).data, status=status.HTTP_202_ACCEPTED)


class SweepDetailApi(SweepApi):
    class OutputSerializer(SweepOutputSerializer):
        trials = serializers.SerializerMethodField()

        class Meta(SweepOutputSerializer.Meta):
            fields = [*SweepOutputSerializer.Meta.fields, "trials"]
            ref_name = "RewardModelSweepDetail"

        @extend_schema_field(TrialOutputSerializer(many=True))
        def get_trials(self, sweep) -> list[dict]:
            return TrialOutputSerializer(sweep_trials(sweep), many=True).data

    @extend_schema(responses=OutputSerializer)
    def get(self, request, sweep_id: int):
        return Response(self.OutputSerializer(self.get_sweep(sweep_id)).data)


class SweepCancelApi(SweepApi):
    """No new trial starts; the running trial stops at its next step (the ordinary run cancel)."""

    @extend_schema(request=None, responses={202: SweepOutputSerializer})
    def post(self, request, sweep_id: int):
        sweep = self.get_sweep(sweep_id)
        if sweep.status not in ("queued", "running"):
            return error_response(
                "conflict", f"sweep {sweep.pk} is already {sweep.status}", status.HTTP_409_CONFLICT
            )
        return Response(
            SweepOutputSerializer(sweep_cancel(sweep=sweep)).data, status=status.HTTP_202_ACCEPTED
        )


class SweepResumeApi(SweepApi):
    """Go on with a cancelled, failed or stalled sweep: the same Optuna study, trial numbers go on."""

    @extend_schema(request=None, responses={202: SweepOutputSerializer})
    def post(self, request, sweep_id: int):
        sweep = self.get_sweep(sweep_id)
        try:
            sweep = sweep_resume(sweep=sweep)
        except ValidationError as exc:
            return error_response("conflict", "; ".join(exc.messages), status.HTTP_409_CONFLICT)
        return Response(SweepOutputSerializer(sweep).data, status=status.HTTP_202_ACCEPTED)
