"""Capability gate API (engineer or admin, token scope ``train``): start the gate for a finished PPO /
GRPO / RLOO / DPO run (202, a ``gate`` run on the training queue) and list its results per model and set.

Progress and cancel of the gate run are the generic run routes (``training-run-*``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from training.policy.api import PolicyApi, _validation_error
from training.policy.capability.models import CapabilityResult
from training.policy.capability.selectors import capability_results
from training.policy.capability.services import gate_run_create
from training.policy.capability.tasksets import TASK_SET_NAMES
from training.rewardmodels.api import RunOutputSerializer


class CapabilityResultSerializer(serializers.ModelSerializer):
    gate_run_id = serializers.IntegerField(source="run_id", read_only=True)

    class Meta:
        model = CapabilityResult
        fields = [
            "id",
            "gate_run_id",
            "model_role",
            "model_path",
            "task_set",
            "score",
            "ci_low",
            "ci_high",
            "n",
            "details",
            "created_at",
        ]


class CapabilityGateApi(PolicyApi):
    """``POST``: queue the capability gate for a succeeded policy run (body: the gate config, every field
    optional). ``GET``: the run's ``summary["capability"]`` and its result rows (``?gate_run_id=`` for one
    gate run; default: all, newest first)."""

    class InputSerializer(serializers.Serializer):
        sets = serializers.ListField(
            child=serializers.CharField(max_length=64),
            required=False,
            help_text=f"Task sets by name: {', '.join(TASK_SET_NAMES)} (default: all).",
        )
        max_items = serializers.IntegerField(required=False, help_text="Items per set (default 12).")
        max_new_tokens = serializers.IntegerField(required=False, help_text="Answer token limit (48).")
        batch_size = serializers.IntegerField(required=False, help_text="Prompts per generate call (8).")
        bootstrap_samples = serializers.IntegerField(required=False, help_text="Bootstrap resamples (1000).")
        seed = serializers.IntegerField(required=False, help_text="Seed of the bootstrap (0).")

    class OutputSerializer(serializers.Serializer):
        capability = serializers.DictField(allow_null=True)
        results = CapabilityResultSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request, run_id: int):
        policy_run = self.get_run(run_id)
        if not isinstance(request.data, dict):
            return _validation_error(ValidationError({"gate": "expected a JSON object"}))
        try:
            gate = gate_run_create(policy_run=policy_run, config=dict(request.data), user=request.user)
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(RunOutputSerializer(gate).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, run_id: int):
        policy_run = self.get_run(run_id)
        raw = request.query_params.get("gate_run_id")
        gate_run_id = int(raw) if raw and raw.isdigit() else None
        rows = capability_results(policy_run=policy_run, gate_run_id=gate_run_id)[:500]
        return Response(
            {
                "capability": (policy_run.summary or {}).get("capability"),
                "results": CapabilityResultSerializer(rows, many=True).data,
            }
        )
