"""``POST /api/v1/projects/{id}/import``: import a file upload or a Hugging Face dataset into a project.

Importing is a lead's action (it creates work for annotators), so the endpoint takes the rule every project
write takes, ``ProjectAccess.can_manage`` (the project's engineers and admins, by global role or
membership; the browser import page uses the same rule), and, for API tokens, the ``train`` scope: the scope
engineers' tools already hold for changing projects and training. A user who cannot see the project gets
404, one who sees it without managing it 403.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, parsers, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import error_response
from annotation.api.parsers import JSONParser
from annotation.auth import MANAGE_SCOPES, TokenScopes, visible_projects
from annotation.importing import FORMATS, SHAPES, ImportFileError, ImportTooLarge
from annotation.models import PairingStrategy
from annotation.selectors.projects import project_access_for_user
from annotation.services.imports import items_import


def _too_large(reason: str) -> Response:
    limit = settings.PREFLAB_MAX_IMPORT_BYTES
    return error_response(
        "too_large",
        f"{reason}; the import limit is {limit} bytes (PREFLAB_MAX_IMPORT_BYTES).",
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        {"file": [f"larger than {limit} bytes"]},
    )


# datasets.load_dataset options that pick files of their own; never passed on, and refused when sent.
REFUSED_LOADER_OPTIONS = ("data_files", "data_dir", "builder", "path", "cache_dir")


class ProjectImportApi(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    read_scopes = write_scopes = MANAGE_SCOPES
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(required=False, help_text="A .jsonl/.jsonl.gz/.json/.csv/.parquet file.")
        source = serializers.CharField(
            required=False,
            max_length=500,
            help_text="A file or saved-dataset path under an import root (PREFLAB_IMPORT_ROOTS), or a Hugging "
            "Face hub dataset id 'owner/name'. Builder names ('json', 'csv', ...) are refused.",
        )
        format = serializers.ChoiceField(choices=FORMATS, required=False, help_text="Override detection.")
        shape = serializers.ChoiceField(choices=SHAPES, required=False, help_text="Override detection.")
        pairing = serializers.ChoiceField(choices=PairingStrategy.choices, required=False)
        pairs_per_prompt = serializers.IntegerField(min_value=1, max_value=1000, required=False)
        prior_judgments = serializers.BooleanField(default=False)
        seed = serializers.IntegerField(default=0)
        split = serializers.CharField(required=False, max_length=100)
        limit = serializers.IntegerField(min_value=1, required=False)

        class Meta:
            ref_name = "ImportInput"

        def validate(self, attrs):
            for name in REFUSED_LOADER_OPTIONS:  # would let datasets read files the source rule never saw
                if name in self.initial_data:
                    raise serializers.ValidationError(
                        {name: ["not accepted: name the files as 'source' (a path under an import root)"]}
                    )
            if bool(attrs.get("file")) == bool(attrs.get("source")):
                raise serializers.ValidationError(
                    {"file": ["give exactly one of 'file' (upload) or 'source'"]}
                )
            return attrs

    class SourceInputSerializer(InputSerializer):
        """The JSON body: a ``source`` only (a file can only be uploaded as multipart/form-data)."""

        file = None
        source = serializers.CharField(
            max_length=500, help_text="A Hugging Face dataset name or a saved-dataset path."
        )

        class Meta:
            ref_name = "ImportSourceInput"

    @extend_schema(
        summary="Import prompts, candidates and preferences (engineers; token scope 'train')",
        request={"multipart/form-data": InputSerializer, "application/json": SourceInputSerializer},
        responses={
            201: inline_serializer(
                "ImportReport",
                {
                    "batch_id": serializers.IntegerField(),
                    "records": serializers.IntegerField(),
                    "prompts_created": serializers.IntegerField(),
                    "candidates_created": serializers.IntegerField(),
                    "tasks_created": serializers.IntegerField(),
                    "judgments_created": serializers.IntegerField(),
                },
            )
        },
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        if not project_access_for_user(request.user).can_manage(project.pk):
            raise exceptions.PermissionDenied(
                "Only the project's engineers and admins can import into it.", code="role_required"
            )
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.PREFLAB_MAX_IMPORT_BYTES:
            return _too_large(f"The upload is {length} bytes")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("file")
        if upload is not None and upload.size > settings.PREFLAB_MAX_IMPORT_BYTES:
            return _too_large(f"The upload is {upload.size} bytes")
        try:
            report = items_import(
                project=project,
                source=upload if upload is not None else data["source"],
                source_roots=settings.PREFLAB_IMPORT_ROOTS,
                format=data.get("format"),
                shape=data.get("shape"),
                pairing=data.get("pairing"),
                pairs_per_prompt=data.get("pairs_per_prompt"),
                prior_judgments=data["prior_judgments"],
                seed=data["seed"],
                created_by=request.user,
                split=data.get("split"),
                limit=data.get("limit"),
                # An upload may not expand past the limit either (a gzip bomb); local sources are the
                # server's own files.
                max_bytes=settings.PREFLAB_MAX_IMPORT_BYTES if upload is not None else None,
            )
        except ImportTooLarge as exc:
            return _too_large(f"The upload is too large: {exc.message}")
        except ImportFileError as exc:
            return error_response(
                "invalid_import",
                exc.message,
                status.HTTP_400_BAD_REQUEST,
                {exc.field or "file": [exc.message]},
            )
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)
