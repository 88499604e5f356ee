"""Shared pieces of the core API views: project-access helpers and filters (the scope permission,
``TokenScopes``, lives in ``annotation.auth`` with the other access rules)."""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django.http import Http404
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, permissions

from annotation.auth import MANAGE_SCOPES, READ_SCOPES, TokenScopes, visible_projects
from annotation.models import Project
from annotation.selectors.projects import ProjectAccess, project_access_for_user

# The largest id a PostgreSQL bigint primary key can hold: larger "ids" are a 400, not a lookup.
MAX_ID = 2**63 - 1


class NotFoundMixin:
    """Raise DRF's NotFound (not Django's Http404) so the error body carries the code "not_found"."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404 as exc:
            raise exceptions.NotFound() from exc


class ProjectAccessMixin(NotFoundMixin):
    """Helpers for views whose objects belong to a project (used by the core viewsets)."""

    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    read_scopes: tuple[str, ...] = READ_SCOPES
    write_scopes: tuple[str, ...] = MANAGE_SCOPES

    @property
    def access(self) -> ProjectAccess:
        request = self.request
        cached = getattr(request, "_preflab_access", None)
        if cached is None:
            cached = project_access_for_user(request.user)
            request._preflab_access = cached
        return cached

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if getattr(self, "request", None) is not None and not getattr(self, "swagger_fake_view", False):
            context["access"] = self.access
        return context

    def visible_project(self, project_id, *, manage: bool = False) -> Project:
        """The project with this id if the user sees it (else 404); with ``manage``, 403 unless an engineer."""
        project = visible_projects(self.request.user).filter(pk=project_id).first()
        if project is None:
            raise exceptions.NotFound("No such project.")
        if manage:
            self.require_manage(project.pk)
        return project

    def require_manage(self, project_id: int) -> None:
        if not self.access.can_manage(project_id):
            raise exceptions.PermissionDenied(
                "Only the project's engineers and admins can change it.", code="role_required"
            )


class _UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 datetime normalised to UTC: offsets such as ``-18:15`` are valid ISO but PostgreSQL
    refuses them, and a year-9999 value can overflow on conversion; both become a 400, not a 500."""

    def clean(self, value):
        parsed = super().clean(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Datetime out of range once converted to UTC.") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _UtcIsoDateTimeField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object id in a query parameter: a whole number from 1 to ``MAX_ID``, else a 400 naming the
    parameter. (django-filter's NumberFilter is a decimal: ``project=1.5e300`` passed the schema's
    "number" and was then refused, and ``project=1.5`` matched nothing.)"""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class _StrictNullBooleanField(forms.NullBooleanField):
    """true/false (or 1/0) or empty for "not given"; anything else is an error, not "not given". (The
    default select widget maps unknown values to None before the field sees them.)"""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in (True, "True", "true", "1"):
            return True
        if value in (False, "False", "false", "0"):
            return False
        raise forms.ValidationError("Must be true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    """A boolean query parameter that refuses ``active=maybe`` with a 400 (django-filter's ignores it and
    returns everything, so a typo silently widens the result)."""

    field_class = _StrictNullBooleanField
