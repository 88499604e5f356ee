"""API tokens and their scopes."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


class TokenScope(models.TextChoices):
    ANNOTATE = "annotate", "Annotate"
    EXPORT = "export", "Export datasets"
    TRAIN = "train", "Train models"
    SCORE = "score", "Score with reward models"


class ApiToken(models.Model):
    """A per-user API token with scopes. Only a sha256 of the secret is stored; the secret is shown once."""

    PREFIX = "pl_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # A token minted by another token draws on the rate-limit budget of the chain's first token as well as
    # its own, so minting cannot multiply a limited token's allowance (docs/security.md).
    budget_root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="budget_children"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @classmethod
    def generate_key(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def rate_buckets(self, default_limit: int) -> list[tuple[int, int]]:
        """The (bucket key, per-minute limit) pairs a request with this token is charged to: the chain's
        root first (shared by every token minted from it), then the token's own. A limit of 0 is none."""
        own = (self.pk, self.rate_limit_per_minute or default_limit)
        root = self.budget_root
        if root is None:
            return [own] if own[1] else []
        pairs = [(root.pk, root.rate_limit_per_minute or default_limit), own]
        return [pair for pair in pairs if pair[1]]
