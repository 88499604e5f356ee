"""Benchmark: every page and API read a reviewer, engineer or annotator opens, and the quality job, on a
1M-judgment PostgreSQL database and on one 10x smaller, in one run.

The databases are built (once; reused when present) by ``assignment_bench``'s set-based builder (1,000
annotators, 400k tasks, k = 3 for 1M judgments; everything / 10 for the small one). For each database a
child process:

1. migrates it, adds the three users (annotator, reviewer, engineer; global role and project membership)
   and puts some tasks in the review queue;
2. runs the quality job (``quality_report_compute``: agreement, annotator table, Dawid-Skene, leaderboard,
   flag rules) and reports its wall time and the process's peak RSS (``ru_maxrss``);
3. times each read ``--reps`` times through Django's test client as the logged-in user of its role
   (p50 / p95 / max), then makes ``--rss-views`` more page views and reports the RSS before and after.

    .venv/bin/python benchmarks/scale_bench.py [--rebuild] [--reps 20] [--rss-views 100]

Targets (issue 19): every read p95 < 1 s, the job < 60 s with peak memory < 1 GB, RSS flat over the views.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import assignment_bench  # noqa: E402 - the builder of the 1M-judgment database

SIZES = {
    # name: (database, judgments, open tasks, annotators)
    "1M": ("preflab_scale_1m", 1_000_000, 100_000, 1000),
    "100k": ("preflab_scale_100k", 100_000, 10_000, 100),
}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    return assignment_bench.percentile(values, q)


# ---------------------------------------------------------------------------------------------------------------
# One database, in its own process


def prepare(project):
    """Users of each role, and a review queue: 2,000 complete tasks marked as disagreeing. The builder's
    answers cycle A, B, tie on every task, so nobody agrees with anybody: the consensus rule is switched off,
    or every annotator would be quarantined and the leaderboard page would have nothing to show."""
    from django.contrib.auth.models import Group, User

    from annotation.models import AnnotatorFlag, ComparisonTask, ProjectMembership, Role, TaskStatus

    project.quality_settings = {"consensus_min": 0.0}
    project.save(update_fields=["quality_settings"])
    AnnotatorFlag.objects.filter(project=project).delete()

    users = {}
    for role in (Role.ANNOTATOR, Role.REVIEWER, Role.ENGINEER):
        if role == Role.ANNOTATOR:
            user = User.objects.filter(username__startswith="bench-").order_by("id").first()
        else:
            user, _ = User.objects.get_or_create(username=f"scale-{role}")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        ProjectMembership.objects.update_or_create(project=project, user=user, defaults={"role": role})
        users[role] = user
    if not ComparisonTask.objects.filter(project=project, status=TaskStatus.NEEDS_REVIEW).exists():
        ids = list(
            ComparisonTask.objects.filter(project=project, status=TaskStatus.COMPLETE)
            .order_by("id")
            .values_list("id", flat=True)[:2000]
        )
        ComparisonTask.objects.filter(pk__in=ids).update(status=TaskStatus.NEEDS_REVIEW)
    return users


def reads(project, users) -> list[tuple[str, str, str]]:
    """(role, label, url) of every read measured."""
    from django.urls import reverse

    from annotation.models import ComparisonTask, Judgment, TaskStatus

    p = project.pk
    a = users["annotator"].pk
    task = ComparisonTask.objects.filter(project=project, status=TaskStatus.COMPLETE).order_by("-id").first()
    j = Judgment.objects.filter(task=task).first()
    return [
        ("annotator", "home page", reverse("home")),
        ("annotator", "my dashboard page", reverse("annotation:dashboard")),
        ("annotator", "API my dashboard", reverse("api-my-dashboard")),
        ("annotator", "API tasks (own projects)", f"/api/v1/tasks/?project={p}"),
        ("annotator", "API judgments (own)", f"/api/v1/judgments/?project={p}"),
        ("reviewer", "home page", reverse("home")),
        ("reviewer", "quality page", reverse("annotation:quality-project", args=[p])),
        ("reviewer", "leaderboard page", reverse("annotation:quality-leaderboard", args=[p])),
        ("reviewer", "annotator quality page", reverse("annotation:quality-annotator", args=[p, a])),
        ("reviewer", "review queue page", reverse("annotation:review", args=[p])),
        ("reviewer", "API review queue", reverse("api-review-queue") + f"?project={p}"),
        ("reviewer", "API quality", reverse("api-quality-project", args=[p])),
        ("reviewer", "API leaderboard", reverse("api-quality-leaderboard", args=[p])),
        ("reviewer", "API reliability", reverse("api-quality-reliability", args=[p])),
        ("reviewer", "API annotator quality", reverse("api-quality-annotator", args=[p, a])),
        ("reviewer", "API flags", reverse("api-quality-flags", args=[p])),
        ("reviewer", "API tasks", f"/api/v1/tasks/?project={p}"),
        ("reviewer", "API tasks ?status=needs_review", f"/api/v1/tasks/?project={p}&status=needs_review"),
        ("reviewer", "API tasks ?kind=gold", f"/api/v1/tasks/?project={p}&kind=gold"),
        ("reviewer", "API tasks ?prompt=", f"/api/v1/tasks/?prompt={task.prompt_id}"),
        ("reviewer", "API judgments", f"/api/v1/judgments/?project={p}"),
        ("reviewer", "API judgments ?annotator=", f"/api/v1/judgments/?project={p}&annotator={a}"),
        ("reviewer", "API judgments ?choice=tie", f"/api/v1/judgments/?project={p}&choice=tie"),
        ("reviewer", "API judgments ?task=", f"/api/v1/judgments/?task={task.pk}"),
        ("reviewer", "API one judgment", f"/api/v1/judgments/{j.pk}/"),
        ("reviewer", "API prompts", f"/api/v1/prompts/?project={p}"),
        ("reviewer", "spot check page", reverse("rewardsvc:spot_check")),
        ("engineer", "home page", reverse("home")),
        ("engineer", "quality page", reverse("annotation:quality-project", args=[p])),
        ("engineer", "API projects", "/api/v1/projects/"),
        ("engineer", "API project", f"/api/v1/projects/{p}/"),
        ("engineer", "API candidates", f"/api/v1/candidates/?project={p}"),
        ("engineer", "task browser page", reverse("annotation:tasks", args=[p])),
        ("engineer", "task browser ?status=open", reverse("annotation:tasks", args=[p]) + "?status=open"),
        (
            "engineer",
            "task browser ?disagreement",
            reverse("annotation:tasks", args=[p]) + "?disagreement=on",
        ),
        ("engineer", "task browser ?annotator=", reverse("annotation:tasks", args=[p]) + f"?annotator={a}"),
        ("engineer", "task browser ?q=", reverse("annotation:tasks", args=[p]) + "?q=Answer+2+to+77"),
        ("engineer", "snapshot list page (spec form)", reverse("training:snapshot_list")),
        (
            "engineer",
            "snapshot spec live count",
            reverse("training:snapshot_count")
            + f"?projects={p}&exclude_gold=on&exclude_flagged=on&ties=drop&both_bad=drop&combine=majority&name=s",
        ),
        ("engineer", "API snapshots", reverse("snapshot-list")),
        ("engineer", "run list page", reverse("training:run_list")),
        ("engineer", "API runs", reverse("training-run-list")),
        ("engineer", "reward model list page", reverse("training:reward_model_list")),
        ("engineer", "policy list page", reverse("training:policy_list")),
        ("engineer", "spot check page", reverse("rewardsvc:spot_check")),
    ]


def measure_one(size: str, reps: int, rss_views: int) -> dict:
    database = SIZES[size][0]
    assignment_bench.django_setup(f"{ARGS.pg}/{database}")
    import logging

    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from annotation.models import Judgment, Project
    from annotation.services.quality_report import quality_report_compute

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    settings.ALLOWED_HOSTS = ["*"]
    setup_test_environment(debug=False)  # the test client's hooks; DEBUG off: no query log to grow
    call_command("migrate", verbosity=0)
    project = Project.objects.get(name="bench")
    users = prepare(project)
    n_judgments = Judgment.objects.filter(task__project=project).count()

    base_rss = rss_mib()
    t0 = time.perf_counter()
    report = quality_report_compute(project=project, raise_flags=True)
    job_s = time.perf_counter() - t0
    job = {
        "seconds": round(job_s, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        "rss_before_mib": round(base_rss),
    }
    job["report_judgments"] = report.judgment_count

    clients = {}
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    results = []
    for role, label, url in reads(project, users):
        c = clients[role]
        t = time.perf_counter()
        first = c.get(url)
        first_ms = (time.perf_counter() - t) * 1000
        status = first.status_code
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            resp = c.get(url)
            times.append((time.perf_counter() - t) * 1000)
            status = resp.status_code
        results.append(
            {
                "role": role,
                "read": label,
                "url": url,
                "status": status,
                "first_ms": round(first_ms, 1),
                "p50_ms": round(percentile(times, 50), 1),
                "p95_ms": round(percentile(times, 95), 1),
                "max_ms": round(max(times), 1),
            }
        )
        print(f"  [{size}] {role:9s} {label:34s} {status} p95={results[-1]['p95_ms']:.0f} ms", flush=True)

    # Memory of the web process across page views: the heaviest pages in turn.
    pages = [
        r for r in reads(project, users) if r[1] in ("quality page", "leaderboard page", "review queue page")
    ]
    rss_before = rss_mib()
    for k in range(rss_views):
        role, _, url = pages[k % len(pages)]
        clients[role].get(url)
    rss_after = rss_mib()
    return {
        "size": size,
        "judgments": n_judgments,
        "job": job,
        "reads": results,
        "rss_views": rss_views,
        "rss_before_mib": round(rss_before, 1),
        "rss_after_mib": round(rss_after, 1),
    }


# ---------------------------------------------------------------------------------------------------------------
# The run


def build(size: str, rebuild: bool) -> None:
    database, judgments, open_tasks, users = SIZES[size]
    must_fill = assignment_bench.ensure_database(f"{ARGS.pg}/postgres", database, rebuild)
    if must_fill:
        print(f"building {database} ({judgments:,} judgments)...", flush=True)
        paths = [str(REPO), str(REPO / "benchmarks")]
        code = (
            f"import sys; sys.path[:0] = {paths!r}; import assignment_bench as b;"
            f" b.django_setup({ARGS.pg + '/' + database!r});"
            f" b.fill(judgments={judgments}, open_tasks={open_tasks}, users={users})"
        )
        subprocess.run([sys.executable, "-c", code], check=True)


def table(results: list[dict]) -> str:
    small, big = results
    lines = [
        f"| Role | Read | {small['size']} first / p50 / p95 ms | {big['size']} first / p50 / p95 ms | p95 ratio |",
        "|---|---|---|---|---|",
    ]
    for s, b in zip(small["reads"], big["reads"], strict=True):
        ratio = b["p95_ms"] / s["p95_ms"] if s["p95_ms"] else float("nan")
        flag = "" if b["p95_ms"] < 1000 and b["status"] == s["status"] == 200 else " **!**"
        status = "" if b["status"] == 200 else f" (HTTP {b['status']})"
        lines.append(
            f"| {s['role']} | {s['read']}{status} | {s['first_ms']:.0f} / {s['p50_ms']:.0f} / {s['p95_ms']:.0f} |"
            f" {b['first_ms']:.0f} / {b['p50_ms']:.0f} / {b['p95_ms']:.0f}{flag} | {ratio:.1f} |"
        )
    for r in (small, big):
        lines.append("")
        lines.append(
            f"- {r['size']} ({r['judgments']:,} judgments): quality job {r['job']['seconds']} s, peak RSS"
            f" {r['job']['peak_rss_mib']} MiB (process at {r['job']['rss_before_mib']} MiB before the job);"
            f" web RSS {r['rss_before_mib']} -> {r['rss_after_mib']} MiB over {r['rss_views']} page views"
        )
    return "\n".join(lines)


def main() -> None:
    if ARGS.one:
        out = measure_one(ARGS.one, ARGS.reps, ARGS.rss_views)
        Path(ARGS.out).write_text(json.dumps(out, indent=1))
        return
    results = []
    for size in ("100k", "1M"):
        build(size, ARGS.rebuild)
        out = Path(f"/tmp/scale_bench_{size}.json")
        cmd = [sys.executable, __file__, "--one", size, "--out", str(out), "--pg", ARGS.pg]
        cmd += ["--reps", str(ARGS.reps), "--rss-views", str(ARGS.rss_views)]
        subprocess.run(cmd, check=True)
        results.append(json.loads(out.read_text()))
    print()
    print(f"load average after the run: {os.getloadavg()}")
    print(table(results))


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="server URL, no db name")
parser.add_argument("--rebuild", action="store_true", help="drop and regenerate both databases")
parser.add_argument("--reps", type=int, default=20, help="timed requests per read")
parser.add_argument("--rss-views", type=int, default=100, help="page views between the two RSS readings")
parser.add_argument("--one", choices=sorted(SIZES), help=argparse.SUPPRESS)
parser.add_argument("--out", help=argparse.SUPPRESS)
ARGS = parser.parse_args()

if __name__ == "__main__":
    main()
