"""Policy registry API for ML engineers (token scope ``train``; engineer or admin): register a succeeded
PPO / GRPO / RLOO / DPO run as a policy version, list and read versions (card, lineage, latest gate verdict,
promotion history), check the gate, promote through it (409 naming the failed checks) or override it with a
recorded reason, and read a project's active policy."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from annotation.api.errors import error_response
from annotation.auth import visible_projects
from training.access import ArtifactDirForAdmins
from training.configs import ConfigError
from training.models import PolicyPromotion, PolicyVersion
from training.policy.api import PolicyApi, _validation_error
from training.policy.gate import PolicyGateConfig
from training.policy.registry import (
    PolicyPromotionRefused,
    policy_gate_check,
    policy_version_promote,
    policy_version_register,
)
from training.policy.selectors import policy_promotion_list, policy_version_list

GATE_HELP = (
    "Gate tolerances and thresholds (PolicyGateConfig, docs/policy-loop.md); omitted keys take their "
    "defaults; a wrong type, an unknown key or a value out of range is a 400 naming 'gate.<field>'."
)


class PolicyVersionOutputSerializer(ArtifactDirForAdmins, serializers.ModelSerializer):
    class Meta:
        model = PolicyVersion
        fields = [
            "id",
            "project",
            "version",
            "run",
            "kind",
            "artifact_dir",
            "card",
            "config",
            "lineage",
            "gate",
            "gate_checked_at",
            "is_active",
            "registered_by",
            "created_at",
        ]
        extra_kwargs = {
            "artifact_dir": {"help_text": "Server path of the policy files; shown to admins only."}
        }


class PolicyPromotionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PolicyPromotion
        fields = ["id", "policy", "previous", "promoted_by", "forced", "reason", "gate", "created_at"]


def _parse_gate(data) -> PolicyGateConfig:
    try:
        return PolicyGateConfig.from_dict(data)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("gate")) from exc


class PolicyRegistryApi(PolicyApi):
    def get_policy(self, policy_id: int) -> PolicyVersion:
        policy = (
            policy_version_list(projects=visible_projects(self.request.user)).filter(pk=policy_id).first()
        )
        if policy is None:
            raise Http404("No such policy version.")
        return policy


class PolicyRunRegisterApi(PolicyRegistryApi):
    """Register a succeeded policy run as its project's next policy version; writes the card
    (``preflab_policy_card.json``: config, lineage, file hashes) into the run's model directory. 400 for an
    SFT, unfinished or failed run, a run already registered, or a missing model directory."""

    @extend_schema(request=None, responses={201: PolicyVersionOutputSerializer})
    def post(self, request, run_id: int):
        run = self.get_run(run_id)
        try:
            policy = policy_version_register(run=run, user=request.user)
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(
            PolicyVersionOutputSerializer(policy, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class PolicyVersionListApi(PolicyRegistryApi, ListAPIView):
    """Registered policy versions (filters: ``project``, ``active``)."""

    serializer_class = PolicyVersionOutputSerializer

    class FilterSerializer(serializers.Serializer):
        project = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
        active = serializers.BooleanField(required=False, allow_null=True, default=None)

    def get_queryset(self):
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        v = filters.validated_data
        qs = policy_version_list(projects=visible_projects(self.request.user)).order_by("-id")
        if v.get("project"):
            qs = qs.filter(project_id=v["project"])
        if v.get("active") is not None:
            qs = qs.filter(is_active=v["active"])
        return qs

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PolicyVersionDetailApi(PolicyRegistryApi):
    class OutputSerializer(PolicyVersionOutputSerializer):
        promotions = PolicyPromotionOutputSerializer(many=True, read_only=True)

        class Meta(PolicyVersionOutputSerializer.Meta):
            fields = [*PolicyVersionOutputSerializer.Meta.fields, "promotions"]

    @extend_schema(responses=OutputSerializer)
    def get(self, request, policy_id: int):
        """A version with its card, lineage, latest gate verdict and its promotions."""
        policy = self.get_policy(policy_id)
        return Response(self.OutputSerializer(policy, context={"request": request}).data)


class GateInputSerializer(serializers.Serializer):
    gate = serializers.DictField(required=False, default=dict, help_text=GATE_HELP)


class GateVerdictSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    failed = serializers.ListField(child=serializers.CharField(), help_text="Names of the failed checks.")
    checks = serializers.ListField(
        child=serializers.DictField(), help_text="Each check: {check, passed, detail, values}."
    )
    config = serializers.DictField()


class PolicyGateCheckApi(PolicyRegistryApi):
    """Evaluate the promotion gate without promoting; the verdict is kept on the version."""

    @extend_schema(request=GateInputSerializer, responses=GateVerdictSerializer)
    def post(self, request, policy_id: int):
        policy = self.get_policy(policy_id)
        data = GateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            gate = _parse_gate(data.validated_data["gate"])
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(policy_gate_check(policy=policy, gate=gate))


class PolicyPromoteApi(PolicyRegistryApi):
    """Promote through the gate (409 ``gate_failed`` naming each failed check, with the verdict); ``force``
    with a ``reason`` overrides a failed gate and is recorded as a forced promotion."""

    class InputSerializer(GateInputSerializer):
        force = serializers.BooleanField(required=False, default=False)
        reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)

    @extend_schema(request=InputSerializer, responses=PolicyPromotionOutputSerializer)
    def post(self, request, policy_id: int):
        policy = self.get_policy(policy_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            promotion = policy_version_promote(
                policy=policy,
                user=request.user,
                gate=_parse_gate(v["gate"]),
                force=v["force"],
                reason=v["reason"],
            )
        except PolicyPromotionRefused as exc:
            response = error_response("gate_failed", exc.messages[0], status.HTTP_409_CONFLICT)
            response.data["error"]["gate"] = exc.gate
            return response
        except ValidationError as exc:
            return _validation_error(exc)
        return Response(PolicyPromotionOutputSerializer(promotion).data)


class ProjectActivePolicyApi(PolicyRegistryApi):
    """The project's active policy version (404 when none is active)."""

    @extend_schema(responses=PolicyVersionOutputSerializer)
    def get(self, request, project_id: int):
        policy = (
            policy_version_list(projects=visible_projects(request.user))
            .filter(project_id=project_id, is_active=True)
            .first()
        )
        if policy is None:
            raise Http404("No active policy in this project.")
        return Response(PolicyVersionOutputSerializer(policy, context={"request": request}).data)


class PolicyPromotionListApi(PolicyRegistryApi, ListAPIView):
    """The promotion history of a version's project (newest first)."""

    serializer_class = PolicyPromotionOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator: no request, no version
            return PolicyPromotion.objects.none()
        return policy_promotion_list(policy=self.get_policy(self.kwargs["policy_id"]))
