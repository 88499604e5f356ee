"""`manage.py create_project NAME`: create an annotation project and print its id (only the id, on stdout, so
a script can keep it: ``PROJECT=$(manage.py create_project hh-harmless)``).

manage.py create_project hh-harmless
manage.py create_project battles --owner engineer --pairing random_k --set pairs_per_prompt=2 --set overlap_k=3
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import PairingStrategy, ServingOrder
from annotation.services.projects import PROJECT_EDITABLE_FIELDS, project_create


def _setting(item: str) -> tuple[str, object]:
    """``field=value``; the value is read as JSON when it parses (numbers, booleans, lists), else as text."""
    name, sep, raw = item.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--set takes FIELD=VALUE, got {item!r}")
    name = name.strip()
    if name not in PROJECT_EDITABLE_FIELDS:
        raise CommandError(
            f"--set {name}: not a project setting; choose from {', '.join(PROJECT_EDITABLE_FIELDS)}"
        )
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


class Command(BaseCommand):
    help = "Create an annotation project (settings as in the web form) and print its id."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Project name (unique).")
        parser.add_argument("--description", default="")
        parser.add_argument("--guidelines-file", help="Markdown file shown to annotators as the guidelines.")
        parser.add_argument("--owner", help="Username made an engineer member of the project (optional).")
        parser.add_argument("--pairing", choices=PairingStrategy.values, help="How candidates become pairs.")
        parser.add_argument("--overlap-k", type=int, help="Judgments wanted per task (default 1).")
        parser.add_argument("--serving-order", choices=ServingOrder.values)
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Any other project setting (repeatable), e.g. --set allow_tie=false --set gold_rate=0.05.",
        )

    def handle(self, *args, name: str, **opts):
        settings: dict[str, object] = dict(_setting(item) for item in opts["set"])
        for option, field in (("pairing", "pairing_strategy"), ("overlap_k", "overlap_k")):
            if opts[option] is not None:
                settings[field] = opts[option]
        if opts["serving_order"]:
            settings["serving_order"] = opts["serving_order"]
        if opts["description"]:
            settings["description"] = opts["description"]
        if opts["guidelines_file"]:
            try:
                settings["guidelines"] = Path(opts["guidelines_file"]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--guidelines-file: {exc}") from exc
        owner = None
        if opts["owner"]:
            owner = get_user_model().objects.filter(username=opts["owner"]).first()
            if owner is None:
                raise CommandError(f"--owner: no user named {opts['owner']!r}")
        try:
            project = project_create(created_by=owner, name=name, **settings)
        except ValidationError as exc:
            reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(f"Project not created: {reasons}") from exc
        self.stderr.write(f"Project '{project.name}' created (id {project.pk}).")
        self.stdout.write(str(project.pk))
