"""`manage.py bootstrap_demo`: demo users and a demo project, once (re-running changes nothing)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from annotation import demo


class Command(BaseCommand):
    help = "Create demo users (admin, annotator, reviewer, engineer) and a demo project with data."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=300, help="Max preference records to import.")

    def handle(self, *args, limit: int, **options):
        password = settings.PREFLAB_DEMO_PASSWORD
        users = {}
        for username, role in [
            ("admin", "admin"),
            ("annotator", "annotator"),
            ("annotator2", "annotator"),
            ("reviewer", "reviewer"),
            ("engineer", "engineer"),
        ]:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = role == "admin"
                user.is_superuser = role == "admin"
                user.save()
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            users[username] = user
        project, report = demo.demo_project_ensure(users=users, limit=limit)
        self.stdout.write(f"Demo project '{project.name}': {report}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo logins: admin / annotator / reviewer / engineer, password '{password}'."
            )
        )
