"""Routes of the annotator API (next task, submit, skip, undo, rank, dashboard, review) under /api/v1/."""

from django.urls import path

from annotation.api import assignment as views

urlpatterns = [
    path("projects/<int:project_id>/tasks/next", views.TaskNextApi.as_view(), name="api-task-next"),
    path("tasks/<int:task_id>/submit", views.TaskSubmitApi.as_view(), name="api-task-submit"),
    path("tasks/<int:task_id>/skip", views.TaskSkipApi.as_view(), name="api-task-skip"),
    path("tasks/<int:task_id>/adjudicate", views.TaskAdjudicateApi.as_view(), name="api-task-adjudicate"),
    path("judgments/<int:judgment_id>/undo", views.JudgmentUndoApi.as_view(), name="api-judgment-undo"),
    path("prompts/<int:prompt_id>/rank", views.PromptRankApi.as_view(), name="api-prompt-rank"),
    path("review/queue", views.ReviewQueueApi.as_view(), name="api-review-queue"),
    path("me/dashboard", views.MyDashboardApi.as_view(), name="api-my-dashboard"),
]
