"""Lineage API: per artefact kind, its chain (``GET .../lineage/``) and its JSON card as a download
(``GET .../lineage/card/``). Each view takes the permissions and the lookup of the artefact's own API
(snapshots: scope ``export``; reward models and policy runs: scope ``train``; engineers and admins, and
only artefacts of the caller's projects: 404 otherwise)."""

from __future__ import annotations

from django.utils.http import content_disposition_header
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from training.datasets.api import SnapshotApi
from training.lineage.card import CARD_FILE
from training.lineage.selectors import lineage_card, lineage_chain
from training.policy.api import PolicyApi
from training.rewardmodels.api import TrainApi


class LineageNodeSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="``<kind>:<id>``, e.g. ``snapshot:3``; inputs name nodes by it.")
    kind = serializers.CharField(help_text="judgments, snapshot, reward_model, run (or a registered kind).")
    id = serializers.IntegerField()
    title = serializers.CharField()
    page = serializers.CharField(allow_null=True, help_text="The artefact's page on this site.")
    restricted = serializers.BooleanField(help_text="True: not visible to you (only kind and id are shown).")
    hashes = serializers.DictField(child=serializers.CharField(), help_text="Full SHA-256 hex digests.")
    facts = serializers.DictField(help_text="Short values: status, version, counts, dates, base model.")
    config = serializers.DictField(help_text="What produced it: a snapshot spec, a run's config.")
    sections = serializers.DictField(
        help_text="Longer parts: pseudonymous annotators, evaluations, promotions with gate verdicts, the "
        "reward source, the gate record."
    )
    inputs = serializers.ListField(
        child=serializers.CharField(), help_text="Keys of the nodes it was made from."
    )


class LineageRelationSerializer(serializers.Serializer):
    relation = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField(help_text="Exact number of rows you may see.")
    items = serializers.ListField(child=serializers.DictField(), help_text="At most 50 (newest first).")
    truncated = serializers.BooleanField()


class LineageCardStateSerializer(serializers.Serializer):
    content_hash = serializers.CharField(help_text="Content hash of the card of this view of the chain.")
    file_name = serializers.CharField()
    file = serializers.ChoiceField(
        choices=["current", "differs", "missing", "none"],
        help_text="The card file in the artefact directory: holds this card, holds another (older chain or a "
        "view with hidden parts), is missing, or this artefact has none (snapshots, reward runs).",
    )
    intact = serializers.BooleanField(allow_null=True, help_text="The file's own content hash checks out.")


class LineageSerializer(serializers.Serializer):
    schema = serializers.CharField()
    schema_version = serializers.IntegerField()
    artefact = serializers.CharField(help_text="Key of the artefact (the last node).")
    nodes = LineageNodeSerializer(many=True, help_text="The chain, inputs first, the artefact last.")
    derived = LineageRelationSerializer(many=True, help_text="What was built from the artefact.")
    truncated = serializers.BooleanField(help_text="The chain was cut at 40 nodes.")
    card = LineageCardStateSerializer()


class LineageCardSerializer(serializers.Serializer):
    schema = serializers.CharField()
    schema_version = serializers.IntegerField()
    artefact = serializers.CharField()
    nodes = LineageNodeSerializer(many=True)
    content_hash = serializers.CharField(
        help_text="SHA-256 of the card's canonical JSON without this field (keys sorted, no whitespace, UTF-8)."
    )


def _card_download(card: dict, name: str) -> Response:
    response = Response(card)
    response["Content-Disposition"] = content_disposition_header(True, f"{name}-{CARD_FILE}")
    return response


class SnapshotLineageApi(SnapshotApi):
    @extend_schema(
        summary="A snapshot's lineage: its judgments and what was built from it", responses=LineageSerializer
    )
    def get(self, request, snapshot_id: int):
        snapshot = self.get_snapshot(snapshot_id)
        return Response(lineage_chain(kind="snapshot", obj=snapshot, user=request.user))


class SnapshotLineageCardApi(SnapshotApi):
    @extend_schema(summary="A snapshot's lineage card (JSON download)", responses=LineageCardSerializer)
    def get(self, request, snapshot_id: int):
        snapshot = self.get_snapshot(snapshot_id)
        return _card_download(
            lineage_card(kind="snapshot", obj=snapshot, user=request.user), f"snapshot-{snapshot.pk}"
        )


class RewardModelLineageApi(TrainApi):
    @extend_schema(
        summary="A reward model's lineage: judgments -> snapshot -> run -> evaluations and promotions, and the "
        "policy runs it rewarded",
        responses=LineageSerializer,
    )
    def get(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        return Response(lineage_chain(kind="reward_model", obj=rm, user=request.user))


class RewardModelLineageCardApi(TrainApi):
    @extend_schema(
        summary="A reward model's lineage card (JSON download; the file preflab_lineage.json beside its weights)",
        responses=LineageCardSerializer,
    )
    def get(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        return _card_download(
            lineage_card(kind="reward_model", obj=rm, user=request.user), f"reward-model-{rm.pk}"
        )


class PolicyRunLineageApi(PolicyApi):
    @extend_schema(
        summary="A policy run's lineage: SFT/base model, reward model version and its chain, gate record",
        responses=LineageSerializer,
    )
    def get(self, request, run_id: int):
        run = self.get_run(run_id)
        return Response(lineage_chain(kind="run", obj=run, user=request.user))


class PolicyRunLineageCardApi(PolicyApi):
    @extend_schema(
        summary="A policy run's lineage card (JSON download; the file preflab_lineage.json in its model folder)",
        responses=LineageCardSerializer,
    )
    def get(self, request, run_id: int):
        run = self.get_run(run_id)
        return _card_download(lineage_card(kind="run", obj=run, user=request.user), f"policy-run-{run.pk}")
