"""OpenAPI schema generation tuned to the house style: serializers nest inside the view that owns them
(``TaskSubmitApi.InputSerializer``), so component names take the owning class as a prefix
(``TaskSubmitApiInput``) instead of colliding as ``Input`` across views."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema


class PrefLabAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        cls = serializer.__class__
        parts = cls.__qualname__.split(".")
        if len(parts) > 1 and "<locals>" not in parts:
            return "".join(parts[-2:])
        return cls.__name__
