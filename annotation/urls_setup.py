"""A lead's pages: project settings, imports, members and invites, the task browser (namespace
``annotation``)."""

from django.urls import path

from annotation.ui import import_views, members, setup_views, tasks_browser

urlpatterns = [
    path("projects/new", setup_views.project_new, name="project-new"),
    path("projects/guidelines-preview", setup_views.markdown_preview, name="guidelines-preview"),
    path("projects/<int:project_id>/settings", setup_views.project_edit, name="project-edit"),
    path("projects/<int:project_id>/import", import_views.import_page, name="import"),
    path("projects/<int:project_id>/import/upload", import_views.import_upload, name="import-upload"),
    path("projects/<int:project_id>/import/<int:import_id>", import_views.import_job_page, name="import-job"),
    path(
        "projects/<int:project_id>/import/<int:import_id>/status",
        import_views.import_job_status,
        name="import-job-status",
    ),
    path(
        "projects/<int:project_id>/import/<int:import_id>/start",
        import_views.import_job_start_page,
        name="import-job-start",
    ),
    path("projects/<int:project_id>/members", members.members_page, name="members"),
    path("projects/<int:project_id>/members/invite", members.invite_new, name="invite-new"),
    path(
        "projects/<int:project_id>/members/invites/<int:invite_id>/revoke",
        members.invite_revoke_page,
        name="invite-revoke",
    ),
    path("projects/<int:project_id>/members/<int:user_id>", members.member_change, name="member-change"),
    path("invite/<str:token>", members.invite_accept_page, name="invite-accept"),
    path("projects/<int:project_id>/tasks", tasks_browser.task_browser, name="tasks"),
    path("projects/<int:project_id>/tasks/bulk", tasks_browser.task_bulk_action, name="tasks-bulk"),
]
