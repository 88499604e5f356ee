"""Your own API tokens: list, create (the key is shown once, in the create response) and revoke.

A request authenticated by a token may create tokens only with scopes that token has itself, expiring no
later than it and with a rate limit no higher than its own, so a token can never mint a stronger one.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.response import Response

from annotation.api.core.base import NotFoundMixin, StrictBooleanFilter
from annotation.auth import TokenScopes
from annotation.models import DB_INT_MAX, ApiToken, TokenScope
from annotation.selectors.projects import api_token_list_for_user
from annotation.services.projects import api_token_create, api_token_revoke

TOKEN_FIELDS = [
    "id",
    "name",
    "key_prefix",
    "scopes",
    "rate_limit_per_minute",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
]


class ApiTokenFilter(django_filters.FilterSet):
    active = StrictBooleanFilter(field_name="revoked_at", lookup_expr="isnull", label="Not revoked")

    class Meta:
        model = ApiToken
        fields = ["active"]


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (never their keys)"),
    retrieve=extend_schema(summary="One of your API tokens"),
    destroy=extend_schema(summary="Revoke one of your API tokens (it stops working at once)"),
)
class ApiTokenViewSet(
    NotFoundMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. The key is shown once, in the create response; revoking takes effect at once."""

    queryset = ApiToken.objects.none()
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    # Any token may manage its owner's tokens; escalation is refused in ``create``.
    read_scopes: tuple[str, ...] = ()
    write_scopes: tuple[str, ...] = ()
    filterset_class = ApiTokenFilter

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=TokenScope.choices), min_length=1
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        rate_limit_per_minute = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=DB_INT_MAX
        )

        class Meta:
            ref_name = "ApiTokenInput"

    class OutputSerializer(serializers.ModelSerializer):
        """An API token (never its key)."""

        scopes = serializers.ListField(child=serializers.CharField())

        class Meta:
            model = ApiToken
            fields = TOKEN_FIELDS
            ref_name = "ApiToken"

    class CreatedSerializer(OutputSerializer):
        """A new API token with its key, shown only in this response."""

        key = serializers.CharField(help_text="The secret; shown only in this response. Send 'Bearer <key>'.")

        class Meta:
            model = ApiToken
            fields = [*TOKEN_FIELDS, "key"]
            ref_name = "ApiTokenCreated"

    def get_queryset(self):
        return api_token_list_for_user(user=self.request.user)

    def get_serializer_class(self):
        return self.InputSerializer if self.action == "create" else self.OutputSerializer

    @extend_schema(
        summary="Create an API token; the response holds its key, shown only once",
        request=InputSerializer,
        responses={201: CreatedSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        minted_by = request.auth if isinstance(request.auth, ApiToken) else None
        if minted_by is not None:
            self._refuse_escalation(parent=minted_by, data=data)
        token, raw = api_token_create(user=request.user, minted_by=minted_by, **data)
        body = dict(self.OutputSerializer(token).data)
        body["key"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    @staticmethod
    def _refuse_escalation(*, parent: ApiToken, data: dict) -> None:
        """A token-authenticated request may not mint a token that outlives, outpaces or outranks it."""
        extra = sorted(set(data["scopes"]) - set(parent.scopes or []))
        if extra:
            raise exceptions.PermissionDenied(
                f"A token cannot create a token with scopes it lacks: {', '.join(extra)}.",
                code="missing_scope",
            )
        errors: dict[str, list[str]] = {}
        for name, parent_value, what, above in (
            ("expires_at", parent.expires_at, "expiry", "later"),
            ("rate_limit_per_minute", parent.rate_limit_per_minute, "rate limit per minute", "higher"),
        ):
            if parent_value is None:
                continue
            value = data.get(name)
            shown = parent_value.isoformat() if hasattr(parent_value, "isoformat") else parent_value
            if value is None:
                errors[name] = [
                    f"Required: this token has a {what} ({shown}), so the new token needs one too."
                ]
            elif value > parent_value:
                errors[name] = [f"Must be no {above} than this token's {what} ({shown})."]
        if errors:
            raise exceptions.PermissionDenied(errors)

    def destroy(self, request, *args, **kwargs):
        api_token_revoke(token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
