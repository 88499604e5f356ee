"""Capability gate API (engineer or admin, token scope ``train``): start the gate for a finished PPO /
GRPO / RLOO / DPO run (202, a ``gate`` run on the training queue) and list its results per model and set.

Progress and cancel of the gate run are the generic run routes (``training-run-*``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.models import DB_INT_MAX
from training.models import CapabilityResult
from training.policy.api import PolicyApi, _validation_error
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
    """``POST``: queue the capability gate for a succeeded policy run. ``GET``: the run's
    ``summary["capability"]`` and its result rows (``?gate_run_id=`` for one gate run; default: all, newest
    first)."""

    class InputSerializer(serializers.Serializer):
        gate = serializers.DictField(
            required=False,
            default=dict,
            help_text="The gate config (GateConfig), every key optional: sets (of "
            f"{', '.join(TASK_SET_NAMES)}), max_items, max_new_tokens, batch_size, bootstrap_samples, seed, "
            "harness_tasks (lm-evaluation-harness task names, rows 'harness:<task>'), harness_include_path, "
            "harness_include_defaults. "
            "Typed and strict: a wrong type, an unknown key or set, or a value out of range is a 400 naming "
            "'gate.<field>' (docs/api.md).",
        )

    class QuerySerializer(serializers.Serializer):
        gate_run_id = serializers.IntegerField(required=False, min_value=1, max_value=DB_INT_MAX)

    class OutputSerializer(serializers.Serializer):
        capability = serializers.DictField(allow_null=True)
        results = CapabilityResultSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request, run_id: int):
        policy_run = self.get_run(run_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            gate = gate_run_create(
                policy_run=policy_run, config=data.validated_data["gate"], user=request.user
            )
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(RunOutputSerializer(gate).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[QuerySerializer], responses=OutputSerializer)
    def get(self, request, run_id: int):
        policy_run = self.get_run(run_id)
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = capability_results(policy_run=policy_run, gate_run_id=query.validated_data.get("gate_run_id"))
        return Response(
            {
                "capability": (policy_run.summary or {}).get("capability"),
                "results": CapabilityResultSerializer(rows[:500], many=True).data,
            }
        )
