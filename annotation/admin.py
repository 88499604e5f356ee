"""Django admin for every annotation model."""

from django.contrib import admin

from annotation import models as m


@admin.register(m.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "overlap_k", "pairing_strategy", "created_at")
    search_fields = ("name",)


@admin.register(m.ProjectMembership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("project", "user", "role")
    list_filter = ("role", "project")


@admin.register(m.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "key_prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_prefix", "key_hash", "created_at", "last_used_at")


@admin.register(m.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "short_text", "created_at")
    list_filter = ("project",)
    search_fields = ("text", "external_id")

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


@admin.register(m.Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("id", "prompt_id", "model_name", "created_at")
    list_filter = ("model_name",)
    raw_id_fields = ("prompt",)


@admin.register(m.ComparisonTask)
class ComparisonTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "status", "judgment_count", "created_at")
    list_filter = ("project", "kind", "status")
    raw_id_fields = ("prompt", "candidate_a", "candidate_b", "repeat_of")


@admin.register(m.Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("id", "task_id", "annotator", "choice", "strength", "source", "is_extra", "created_at")
    list_filter = ("choice", "source", "is_extra")
    raw_id_fields = ("task", "ranking")


@admin.register(m.Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = ("id", "prompt_id", "annotator", "created_at")
    raw_id_fields = ("prompt",)


@admin.register(m.TaskLease)
class TaskLeaseAdmin(admin.ModelAdmin):
    list_display = ("task_id", "annotator", "expires_at")
    raw_id_fields = ("task",)


@admin.register(m.TaskSkip)
class TaskSkipAdmin(admin.ModelAdmin):
    list_display = ("task_id", "annotator", "reason", "created_at")
    raw_id_fields = ("task",)


@admin.register(m.Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("task_id", "reviewer", "choice", "created_at")
    raw_id_fields = ("task",)


@admin.register(m.SpotCheckVerdict)
class SpotCheckVerdictAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "candidate_id", "reviewer", "verdict", "run_id", "updated_at")
    list_filter = ("verdict",)
    raw_id_fields = ("task", "candidate")


@admin.register(m.AnnotatorFlag)
class AnnotatorFlagAdmin(admin.ModelAdmin):
    list_display = ("project", "annotator", "reason", "status", "created_at")
    list_filter = ("status", "reason")


@admin.register(m.ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "source", "format", "shape", "created_at")


@admin.register(m.ProjectInvite)
class ProjectInviteAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "role",
        "created_by",
        "created_at",
        "expires_at",
        "used_at",
        "revoked_at",
    )
    list_filter = ("role",)
    exclude = ("token_hash",)  # only the hash is stored; nothing to show or edit


@admin.register(m.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "file_name", "status", "created_at")
    list_filter = ("status",)


@admin.register(m.ProjectQualityReport)
class ProjectQualityReportAdmin(admin.ModelAdmin):
    list_display = ("project", "computed_at", "judgment_count", "duration_ms")
    readonly_fields = ("payload",)
