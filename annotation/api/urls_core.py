"""Routes of the core API (projects, prompts, candidates, tasks, judgments, tokens) under /api/v1/."""

from rest_framework.routers import SimpleRouter

from annotation.api.core.content import CandidateViewSet, PromptViewSet, TaskViewSet
from annotation.api.core.judgments import JudgmentViewSet
from annotation.api.core.projects import ProjectViewSet
from annotation.api.core.tokens import ApiTokenViewSet

router = SimpleRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("prompts", PromptViewSet, basename="prompt")
router.register("candidates", CandidateViewSet, basename="candidate")
router.register("tasks", TaskViewSet, basename="task")
router.register("judgments", JudgmentViewSet, basename="judgment")
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = router.urls
