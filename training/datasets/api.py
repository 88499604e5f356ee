"""Dataset snapshot API for ML engineers: create (202 + job id), poll, list, card, download each format.

Needs the ``export`` token scope and the engineer or admin role; a user sees only snapshots whose projects
are all visible to them, and may only snapshot projects they can see.
"""

from __future__ import annotations

import dataclasses
import tarfile
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import error_response
from annotation.auth import EXPORT_SCOPES, HasRole, TokenScopes
from annotation.models import Role
from training.datasets.selectors import snapshot_card, snapshot_get, snapshot_list
from training.datasets.services import snapshot_create, snapshot_job_id
from training.datasets.spec import SPLIT_NAMES, SnapshotSpec
from training.models import DatasetSnapshot, JobStatus

# Download formats: per-split files, whole-snapshot files, and the HF directory as a streamed tar.
SPLIT_FILES = {
    "trl": ("trl", ".jsonl", "application/jsonl"),
    "trl_conversational": ("trl_conversational", ".jsonl", "application/jsonl"),
    "meta": ("meta", ".jsonl", "application/jsonl"),
    "parquet": ("parquet", ".parquet", "application/vnd.apache.parquet"),
}
WHOLE_FILES = {
    "votes": ("votes.jsonl", "application/jsonl"),
    "judgment_ids": ("judgment_ids.txt", "text/plain"),
    "card": ("card.json", "application/json"),
}
DOWNLOAD_FORMATS = (*SPLIT_FILES, *WHOLE_FILES, "hf")
DOWNLOAD_MEDIA_TYPES = sorted(
    {media for *_, media in SPLIT_FILES.values()}
    | {media for _, media in WHOLE_FILES.values()}
    | {"application/x-tar"}
)


class SnapshotApi(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, HasRole]
    read_scopes = write_scopes = EXPORT_SCOPES
    required_roles = (Role.ENGINEER, Role.ADMIN)

    def get_snapshot(self, snapshot_id: int) -> DatasetSnapshot:
        snapshot = snapshot_get(user=self.request.user, snapshot_id=snapshot_id)
        if snapshot is None:
            raise Http404("No such snapshot.")
        return snapshot


class SnapshotOutputSerializer(serializers.ModelSerializer):
    projects = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    job_id = serializers.SerializerMethodField()
    card_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "name",
            "version",
            "status",
            "error",
            "projects",
            "spec",
            "counts",
            "class_balance",
            "content_hash",
            "judgment_ids_hash",
            "code_version",
            "created_at",
            "completed_at",
            "job_id",
            "card_url",
        ]

    def get_job_id(self, obj: DatasetSnapshot) -> str:
        return snapshot_job_id(obj)

    def get_card_url(self, obj: DatasetSnapshot) -> str:
        return reverse("snapshot-card", args=[obj.pk])


# The JSON types of SnapshotSpec's fields (its annotations are strings: ``from __future__ import annotations``).
_SPEC_TYPES: dict[str, dict] = {
    "list[int]": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    "str | None": {"type": "string", "nullable": True},
    "float | None": {"type": "number", "nullable": True},
    "float": {"type": "number"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "dict[str, float]": {"type": "object", "additionalProperties": {"type": "number"}},
}


def snapshot_spec_schema() -> dict:
    """SnapshotSpec as a JSON schema: its field names and types, nothing else (``from_dict`` refuses
    unknown keys; value rules such as a split summing to 1 are its ``validate``)."""
    fields = dataclasses.fields(SnapshotSpec)
    return {
        "type": "object",
        "description": "Filter spec: the fields of training.datasets.spec.SnapshotSpec.",
        "properties": {f.name: dict(_SPEC_TYPES[str(f.type)]) for f in fields},
        "required": ["projects"],
        "additionalProperties": False,
    }


@extend_schema_field(snapshot_spec_schema())
class SnapshotSpecField(serializers.DictField):
    pass


class SnapshotListCreateApi(SnapshotApi, ListAPIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        spec = SnapshotSpecField(help_text="Filter spec (training.datasets.spec.SnapshotSpec fields).")

    serializer_class = SnapshotOutputSerializer

    def get_queryset(self):
        return snapshot_list(user=self.request.user)

    @extend_schema(
        summary="Create a snapshot; the build runs as a job (202). Poll the returned status URL.",
        request=InputSerializer,
        responses={202: SnapshotOutputSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = snapshot_create(
            user=request.user, spec=data.validated_data["spec"], name=data.validated_data["name"]
        )
        body = SnapshotOutputSerializer(snapshot).data
        body["status_url"] = reverse("snapshot-detail", args=[snapshot.pk])
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class SnapshotDetailApi(SnapshotApi):
    @extend_schema(summary="A snapshot's status, counts and hashes", responses=SnapshotOutputSerializer)
    def get(self, request, snapshot_id: int):
        return Response(SnapshotOutputSerializer(self.get_snapshot(snapshot_id)).data)


class SnapshotCardApi(SnapshotApi):
    @extend_schema(summary="A snapshot's card: spec, counts, class balance, hashes, lineage", responses=dict)
    def get(self, request, snapshot_id: int):
        return Response(snapshot_card(self.get_snapshot(snapshot_id)))


class SnapshotDownloadApi(SnapshotApi):
    @extend_schema(
        summary="Download one format of a ready snapshot (streamed)",
        parameters=[
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(DOWNLOAD_FORMATS)),
            OpenApiParameter("split", str, enum=list(SPLIT_NAMES), default="train"),
        ],
        responses={
            **{
                (200, media): OpenApiTypes.OBJECT if media == "application/json" else OpenApiTypes.BINARY
                for media in DOWNLOAD_MEDIA_TYPES
            },
            409: OpenApiResponse(description="The snapshot is not built (yet): code not_ready."),
        },
    )
    def get(self, request, snapshot_id: int, fmt: str):
        snapshot = self.get_snapshot(snapshot_id)
        if fmt not in DOWNLOAD_FORMATS:
            return error_response(
                "invalid",
                f"Unknown format '{fmt}'; one of {', '.join(DOWNLOAD_FORMATS)}.",
                status.HTTP_400_BAD_REQUEST,
            )
        split = request.query_params.get("split") or "train"  # empty means not given
        if split not in SPLIT_NAMES:  # refused for every format, as the schema says
            return error_response(
                "invalid",
                f"Unknown split '{split}'; one of {', '.join(SPLIT_NAMES)}.",
                status.HTTP_400_BAD_REQUEST,
            )
        if snapshot.status != JobStatus.SUCCEEDED:
            return error_response("not_ready", f"Snapshot is {snapshot.status}.", status.HTTP_409_CONFLICT)
        root = Path(snapshot.artifact_dir)
        stem = f"{snapshot.name}-v{snapshot.version}"
        if fmt == "hf":
            response = StreamingHttpResponse(
                tar_stream(root / "hf", arcname="hf"), content_type="application/x-tar"
            )
            # RFC 6266/5987 encoding (a name may hold quotes, newlines, non-ASCII), as FileResponse does.
            response["Content-Disposition"] = content_disposition_header(True, f"{stem}-hf.tar")
            return response
        if fmt in SPLIT_FILES:
            folder, suffix, content_type = SPLIT_FILES[fmt]
            path, filename = root / folder / f"{split}{suffix}", f"{stem}-{fmt}-{split}{suffix}"
        else:
            name, content_type = WHOLE_FILES[fmt]
            path, filename = root / name, f"{stem}-{name}"
        response = FileResponse(path.open("rb"), as_attachment=True, filename=filename)
        response["Content-Type"] = content_type
        return response


def tar_stream(folder: Path, *, arcname: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """A tar archive of ``folder`` as a byte stream: headers and file chunks are yielded as they are read,
    so memory stays flat for any folder size."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        info = tarfile.TarInfo(f"{arcname}/{path.relative_to(folder).as_posix()}")
        stat = path.stat()
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o444
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk
        if info.size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
