"""Write (or rewrite) the lineage cards ``preflab_lineage.json`` of reward models and finished policy runs:
the ones named, or all of them (a deployment that had artefacts before lineage cards existed, or a folder
restored from a backup)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from training.lineage.services import lineage_cards_refresh
from training.models import JobStatus, RewardModel, RunKind, TrainingRun


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--reward-model", type=int, action="append", default=[], help="a reward model id")
        parser.add_argument("--run", type=int, action="append", default=[], help="a policy run id")

    def handle(self, *args, **opts):
        rm_ids, run_ids = opts["reward_model"], opts["run"]
        if not rm_ids and not run_ids:
            rm_ids = list(RewardModel.objects.order_by("pk").values_list("pk", flat=True))
            run_ids = list(
                TrainingRun.objects.filter(status=JobStatus.SUCCEEDED)
                .exclude(kind=RunKind.REWARD)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        written = lineage_cards_refresh(reward_model_ids=rm_ids, run_ids=run_ids)
        self.stdout.write(f"{written} lineage card(s) written")
