"""Django admin for dataset snapshots, runs and the model registry."""

from django.contrib import admin

from training import models as m


@admin.register(m.DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    """View-only: a snapshot never changes after it is made, and one made here would never be built (create
    them with the API or ``manage.py export_dataset``). Delete stays available; runs,
    reward models and evaluations made from a snapshot protect it (``on_delete=PROTECT``)."""

    list_display = ("id", "name", "version", "status", "content_hash", "created_at")
    list_filter = ("status",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(m.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "base_model", "step", "total_steps", "created_at")
    list_filter = ("kind", "status")


@admin.register(m.RunMetric)
class RunMetricAdmin(admin.ModelAdmin):
    list_display = ("run", "step", "created_at")


@admin.register(m.RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "version", "is_active", "base_model", "created_at")
    list_filter = ("project", "is_active")


@admin.register(m.ModelEvaluation)
class ModelEvaluationAdmin(admin.ModelAdmin):
    list_display = ("id", "reward_model", "snapshot", "split", "created_at")


@admin.register(m.Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "reward_model", "forced", "created_at")


@admin.register(m.TaskScoringJob)
class TaskScoringJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "reward_model", "status", "scored", "total", "created_at")
    list_filter = ("status",)


@admin.register(m.PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """View-only: versions are registered from a run (its card is written then) and promoted through the
    gate, so that every promotion is recorded with its verdict."""

    list_display = ("id", "project", "version", "kind", "run", "is_active", "created_at")
    list_filter = ("kind", "is_active")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(m.PolicyPromotion)
class PolicyPromotionAdmin(admin.ModelAdmin):
    list_display = ("id", "policy", "previous", "promoted_by", "forced", "created_at")
    list_filter = ("forced",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: rows written by jobs (measurements, studies, gate results), never by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(m.LiveAgreement)
class LiveAgreementAdmin(_ReadOnlyAdmin):
    list_display = ("id", "reward_model", "n", "accuracy", "baseline", "computed_at")


@admin.register(m.RewardModelSweep)
class RewardModelSweepAdmin(_ReadOnlyAdmin):
    list_display = ("id", "project", "snapshot", "status", "best_trial_number", "best_value", "created_at")
    list_filter = ("status",)


@admin.register(m.SweepTrial)
class SweepTrialAdmin(_ReadOnlyAdmin):
    list_display = ("id", "sweep", "number", "run", "state", "value")


@admin.register(m.CapabilityResult)
class CapabilityResultAdmin(_ReadOnlyAdmin):
    list_display = ("id", "policy_run", "run", "model_role", "task_set", "score", "ci_low", "ci_high", "n")
    list_filter = ("task_set", "model_role")
