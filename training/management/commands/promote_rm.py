"""`manage.py promote_rm`: make a registered reward model its project's active (served) one, through the
promotion gate as the page and ``POST /api/v1/reward-models/{id}/promote/`` do.

manage.py promote_rm 7                                    # reward model id 7
manage.py promote_rm --project hh-harmless --rm-version 2    # or a project (id or name) and version
manage.py promote_rm 7 --force --reason "gate split too small, checked by hand"   # recorded override
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from training.models import RewardModel
from training.rewardmodels.registry import PromotionGate, PromotionRefused, reward_model_promote


class Command(BaseCommand):
    help = "Promote a reward model to active for its project, through the evaluation gate."

    def add_arguments(self, parser):
        parser.add_argument("reward_model", nargs="?", type=int, help="Reward model id.")
        parser.add_argument("--project", help="Project id or name (with --rm-version instead of an id).")
        parser.add_argument("--rm-version", type=int, help="Version within --project.")
        parser.add_argument("--min-accuracy", type=float, default=PromotionGate.min_accuracy)
        parser.add_argument("--tolerance", type=float, default=PromotionGate.tolerance)
        parser.add_argument("--force", action="store_true", help="Override a failed gate (needs --reason).")
        parser.add_argument("--reason", default="", help="Why (required with --force; recorded).")

    def handle(self, *args, **opts):
        reward_model = self._reward_model(opts)
        if opts["force"] and not opts["reason"].strip():
            raise CommandError("--force needs --reason (a forced promotion is recorded with it)")
        gate = PromotionGate(min_accuracy=opts["min_accuracy"], tolerance=opts["tolerance"])
        try:
            promotion = reward_model_promote(
                reward_model=reward_model, gate=gate, force=opts["force"], reason=opts["reason"]
            )
        except PromotionRefused as exc:
            raise CommandError(
                f"Not promoted, the gate refused v{reward_model.version}: {'; '.join(exc.gate['reasons'])}. "
                "Use --force --reason '...' to override (recorded)."
            ) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        forced = " (forced override recorded)" if promotion.forced else ""
        self.stdout.write(
            f"reward model {reward_model.pk} ({reward_model.project.name} v{reward_model.version}) is active"
            f"{forced}; previous: {promotion.previous_id or 'none'}"
        )
        if opts["verbosity"] > 1:
            self.stdout.write(json.dumps(promotion.gate, indent=2))

    @staticmethod
    def _reward_model(opts) -> RewardModel:
        if opts["reward_model"] is not None:
            if opts["project"] or opts["rm_version"] is not None:
                raise CommandError("give a reward model id, or --project with --rm-version, not both")
            found = RewardModel.objects.select_related("project").filter(pk=opts["reward_model"]).first()
            if found is None:
                raise CommandError(f"No reward model with id {opts['reward_model']}.")
            return found
        if not opts["project"] or opts["rm_version"] is None:
            raise CommandError("give a reward model id, or --project with --rm-version")
        value = opts["project"]
        project = Project.objects.filter(pk=int(value)).first() if value.isdigit() else None
        project = project or Project.objects.filter(name=value).first()
        if project is None:
            raise CommandError(f"No project with id or name {value!r}.")
        found = RewardModel.objects.filter(project=project, version=opts["rm_version"]).first()
        if found is None:
            raise CommandError(f"Project '{project.name}' has no reward model version {opts['rm_version']}.")
        return found
