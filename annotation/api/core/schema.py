"""OpenAPI description of PrefLab's token authentication (drf-spectacular extension; imported by the
core API package so every view that uses the token authenticator documents it)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PrefLabTokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotation.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-user API token with scopes: 'Authorization: Bearer pl_...'. "
            "Create one at /api/v1/tokens/ or with `manage.py create_token`.",
        }
