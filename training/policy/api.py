"""Policy-loop API for ML engineers (token scope ``train``; engineer or admin): create SFT / PPO / GRPO /
RLOO / DPO runs (202, queued on the ``training`` queue), list them, read one with its live extras (sample
responses, failure-detector warnings, evaluation-gate verdict), start a battle among finished policy runs of
one SFT model, and export a PPO run to OpenRLHF.

Status, progress, metric series, cancel and retry are the generic run routes (``training-run-*``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import error_response
from annotation.auth import MANAGE_SCOPES, HasRole, TokenScopes, visible_projects
from annotation.models import Role
from training.datasets.selectors import snapshot_get
from training.models import SEED_MAX, TrainingRun
from training.policy.openrlhf import DEFAULT_REWARD_SERVER_URL, OpenRLHFCluster
from training.policy.selectors import (
    POLICY_KINDS,
    battle_verdict,
    policy_run_list,
    policy_run_state,
    policy_version_of_run,
    spot_check_counts,
)
from training.policy.services import policy_battle_create, policy_openrlhf_export, policy_run_create
from training.rewardmodels.api import RunOutputSerializer


def _validation_error(exc: ValidationError) -> Response:
    fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    first = next(iter(fields.values()))
    message = first[0] if isinstance(first, list) else str(first)
    return error_response("invalid", message, status.HTTP_400_BAD_REQUEST, fields)


class PolicyApi(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, HasRole]
    read_scopes = write_scopes = MANAGE_SCOPES
    required_roles = (Role.ENGINEER, Role.ADMIN)

    def get_run(self, run_id: int) -> TrainingRun:
        run = policy_run_list(projects=visible_projects(self.request.user)).filter(pk=run_id).first()
        if run is None:
            raise Http404("No such policy run.")
        return run


class PolicyRunListCreateApi(PolicyApi, ListAPIView):
    """List policy runs (filter ``kind``) or create one.

    ``config``: ``{"algorithm": {...}, "reward": {...}, "prompts": {...}, "battle": {...}}`` — see
    docs/policy-loop.md. ``base_model`` is the starting model (for PPO/GRPO/RLOO: the SFT model, which is also
    the frozen reference)."""

    serializer_class = RunOutputSerializer

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[k.value for k in POLICY_KINDS])
        base_model = serializers.CharField(max_length=500)
        project_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        snapshot_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        config = serializers.DictField(
            required=False,
            default=dict,
            help_text="Typed and strict: the run kind's algorithm settings and the reward, prompts and battle sub-configs (PolicyRunSpec); a value of the wrong type or an unknown key is a 400 "
            "naming 'config.<path>' (docs/api.md).",
        )
        seed = serializers.IntegerField(required=False, default=42, min_value=0, max_value=SEED_MAX)

    def get_queryset(self):
        return policy_run_list(
            projects=visible_projects(self.request.user), kind=self.request.query_params.get("kind")
        ).order_by("-id")

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        projects = visible_projects(request.user)
        project = snapshot = None
        if v["project_id"] is not None:
            project = projects.filter(pk=v["project_id"]).first()
            if project is None:
                raise Http404("No such project.")
        if v["snapshot_id"] is not None:
            snapshot = snapshot_get(user=request.user, snapshot_id=v["snapshot_id"])
            if snapshot is None:
                raise Http404("No such snapshot.")
        try:
            run = policy_run_create(
                kind=v["kind"],
                base_model=v["base_model"],
                config=v["config"],
                project=project,
                snapshot=snapshot,
                seed=v["seed"],
                user=request.user,
            )
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PolicyBattleCreateApi(PolicyApi):
    """Start a battle among finished policy runs (PPO, GRPO, RLOO, DPO) of one SFT model: a run of kind
    ``battle`` (202) that writes one blind battle project with every policy, the SFT model and (when known)
    the base model. ``config``: ``{"prompts": {"source": "held_out" | "list", "items": [...]},
    "battle": {...}, "reward": {...}}`` (docs/policy-loop.md). Runs of different SFT models: 400 naming
    ``run_ids``."""

    class InputSerializer(serializers.Serializer):
        run_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False)
        config = serializers.DictField(required=False, default=dict)

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            run = policy_battle_create(run_ids=v["run_ids"], config=v["config"], user=request.user)
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PolicyRunDetailApi(PolicyApi):
    """A policy run with its live state: progress, latest metrics, samples, warnings, battle verdict, the
    reviewers' spot-check verdict counts and the policy version it was registered as (id or null)."""

    @extend_schema(responses=dict)
    def get(self, request, run_id: int):
        run = self.get_run(run_id)
        state = policy_run_state(run)
        state.pop("series", None)
        version = policy_version_of_run(run)
        return Response(
            {
                "run": RunOutputSerializer(run).data,
                "state": state,
                "battle_verdict": battle_verdict(run),
                "spot_check_verdicts": spot_check_counts(run),
                "policy_version": version.pk if version else None,
            }
        )


class PolicyRunOpenRLHFApi(PolicyApi):
    """Export a PPO run as an OpenRLHF ``ray job submit`` command scoring through our ``/get_reward`` route.

    Writes the training prompts as JSONL under the artifact dir; the reward token stays a shell variable
    (``$PREFLAB_REWARD_TOKEN``)."""

    class InputSerializer(serializers.Serializer):
        reward_server_url = serializers.RegexField(
            r"^https?://[^\s/]+(/\S*)?$", max_length=500, required=False, default=DEFAULT_REWARD_SERVER_URL
        )
        save_path = serializers.CharField(required=False, default="", allow_blank=True)
        nodes = serializers.IntegerField(required=False, default=1, min_value=1)
        gpus_per_node = serializers.IntegerField(required=False, default=8, min_value=1)
        vllm_num_engines = serializers.IntegerField(required=False, default=2, min_value=0)

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request, run_id: int):
        run = self.get_run(run_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        cluster = OpenRLHFCluster(
            nodes=v["nodes"], gpus_per_node=v["gpus_per_node"], vllm_num_engines=v["vllm_num_engines"]
        )
        try:
            out = policy_openrlhf_export(
                run=run, reward_server_url=v["reward_server_url"], save_path=v["save_path"], cluster=cluster
            )
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(out)
