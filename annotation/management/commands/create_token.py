"""Create an API token for a user and print its key (shown only this once).

manage.py create_token alice ci-export export annotate
manage.py create_token alice trainer --scopes train,export --expires-days 30
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from annotation.models import TokenScope
from annotation.services.projects import api_token_create


class Command(BaseCommand):
    help = "Create a scoped API token for a user and print its key (only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("name", help="A label for the token, e.g. 'ci-export'.")
        parser.add_argument(
            "scopes", nargs="*", help=f"Scopes, space- or comma-separated: {', '.join(TokenScope.values)}."
        )
        parser.add_argument("--scopes", dest="scopes_opt", default="", help="Comma-separated scopes.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after this many days.")

    def handle(self, *args, username: str, name: str, scopes: list[str], scopes_opt: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        wanted = [s.strip() for item in [*scopes, scopes_opt] for s in item.split(",") if s.strip()]
        expires_at = None
        if options["expires_days"] is not None:
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        try:
            token, raw = api_token_create(user=user, name=name, scopes=wanted, expires_at=expires_at)
        except ValidationError as exc:
            reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(reasons) from exc
        self.stderr.write(f"Token '{token.name}' for {user.username} with scopes {', '.join(token.scopes)}.")
        self.stdout.write(raw)
