"""Load test: N concurrent simulated annotators against gunicorn + PostgreSQL on loopback.

Each annotator loops `POST /api/v1/projects/{id}/tasks/next` -> `POST /api/v1/tasks/{id}/submit` (with an
idempotency key; a share of submits is sent twice, as a client retry would) until the time is up or the
queue is empty. Afterwards the database is counted: every acknowledged judgment exists exactly once, no
task holds more than k counted judgments, and each task's denormalised count matches its rows.

    .venv/bin/python benchmarks/load_test.py --annotators 200 --duration 300

Loopback only; bounded in time and count. Uses its own database (``--database``, default
``preflab_bench_load``: dropped and recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def setup_database(args) -> tuple[int, list[str]]:
    """Fresh database, migrated, with one project, its tasks and one token per annotator."""
    if "bench" not in args.database:
        raise SystemExit("refusing to drop a database whose name lacks 'bench'")
    base = args.pg_url.rsplit("/", 1)[0]
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", args.database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
    os.environ["DATABASE_URL"] = f"{base}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import Group, User

    from annotation.models import (
        ApiToken,
        Candidate,
        ComparisonTask,
        Project,
        ProjectMembership,
        Prompt,
        content_hash,
    )

    project = Project.objects.create(name="load-test", overlap_k=args.k, undo_grace_seconds=0)
    group = Group.objects.get(name="annotator")
    users = User.objects.bulk_create([User(username=f"load-{i}") for i in range(args.annotators)])
    group.user_set.add(*users)
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="annotator") for u in users]
    )
    keys = [ApiToken.generate_key() for _ in users]
    ApiToken.objects.bulk_create(
        [
            ApiToken(
                user=u, name="load", key_prefix=k[:8], key_hash=ApiToken.hash_key(k), scopes=["annotate"]
            )
            for u, k in zip(users, keys, strict=True)
        ]
    )
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(project=project, text=f"prompt {i}", content_hash=content_hash(f"prompt {i}"))
            for i in range(args.tasks)
        ]
    )
    cands = Candidate.objects.bulk_create(
        [
            Candidate(prompt=p, text=f"{side} answer to {p.text}", content_hash=content_hash(f"{side}{p.pk}"))
            for p in prompts
            for side in ("left", "right")
        ]
    )
    ComparisonTask.objects.bulk_create(
        [
            ComparisonTask(project=project, prompt=p, candidate_a=cands[2 * i], candidate_b=cands[2 * i + 1])
            for i, p in enumerate(prompts)
        ]
    )
    return project.pk, keys


def start_server(args) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "60",
            "--keep-alive",  # as in docker/compose.yaml: longer than any client's idle reuse (httpx: 5 s)
            "75",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    import httpx

    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{args.port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


async def annotator(client, key, project_id, deadline, stats, acked, rng, retry_rate):
    headers = {"Authorization": f"Bearer {key}"}
    empty_polls = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            response = await client.post(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
        except Exception as exc:  # noqa: BLE001 - count every failure as an error
            stats["errors"].append(f"next: {exc!r}")
            continue
        stats["next"].append(time.perf_counter() - t0)
        if response.status_code != 200:
            stats["errors"].append(f"next {response.status_code}: {response.text[:200]}")
            continue
        task = response.json()["task"]
        if task is None:
            empty_polls += 1
            if empty_polls >= 3:
                return
            await asyncio.sleep(0.5)
            continue
        empty_polls = 0
        key_id = uuid.uuid4().hex
        body = {"choice": rng.choice(["A", "B", "tie"]), "strength": rng.randint(1, 3), "time_spent_ms": 1500}
        sends = 2 if rng.random() < retry_rate else 1
        first_id = None
        for _ in range(sends):
            t0 = time.perf_counter()
            try:
                response = await client.post(
                    f"/api/v1/tasks/{task['id']}/submit",
                    json=body,
                    headers={**headers, "Idempotency-Key": key_id},
                )
            except Exception as exc:  # noqa: BLE001
                stats["errors"].append(f"submit: {exc!r}")
                continue
            stats["submit"].append(time.perf_counter() - t0)
            if response.status_code not in (200, 201):
                stats["errors"].append(f"submit {response.status_code}: {response.text[:200]}")
                continue
            judgment_id = response.json()["judgment"]
            if first_id is not None and judgment_id != first_id:
                stats["errors"].append(f"retry returned another judgment {judgment_id} != {first_id}")
            first_id = judgment_id
        if first_id is not None:
            acked.add(first_id)


async def run_load(args, project_id, keys) -> tuple[dict, set[int], float]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)

    stats: dict[str, list] = defaultdict(list)
    acked: set[int] = set()
    limits = httpx.Limits(max_connections=args.annotators, max_keepalive_connections=args.annotators)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{args.port}", timeout=30, limits=limits
    ) as client:
        deadline = time.monotonic() + args.duration
        start = time.perf_counter()
        await asyncio.gather(
            *[
                annotator(client, key, project_id, deadline, stats, acked, random.Random(i), args.retry_rate)
                for i, key in enumerate(keys)
            ]
        )
        elapsed = time.perf_counter() - start
    return stats, acked, elapsed


def verify(project_id: int, acked: set[int], k: int) -> dict:
    from django.db.models import Count, Q

    from annotation.models import ComparisonTask, Judgment

    judgments = Judgment.objects.filter(task__project_id=project_id)
    ids = set(judgments.values_list("id", flat=True))
    over_k = (
        ComparisonTask.objects.filter(project_id=project_id)
        .annotate(counted=Count("judgments", filter=Q(judgments__is_extra=False)))
        .filter(counted__gt=k)
        .count()
    )
    mismatched = (
        ComparisonTask.objects.filter(project_id=project_id)
        .annotate(counted=Count("judgments", filter=Q(judgments__is_extra=False)))
        .exclude(counted=models_f("judgment_count"))
        .count()
    )
    pairs = judgments.values("task_id", "annotator_id").distinct().count()
    return {
        "judgments_in_db": len(ids),
        "acknowledged": len(acked),
        "lost": len(acked - ids),
        "unacknowledged_rows": len(ids - acked),
        "duplicate_task_annotator_pairs": len(ids) - pairs,
        "tasks_over_k": over_k,
        "tasks_with_wrong_count": mismatched,
    }


def models_f(name: str):
    from django.db.models import F

    return F(name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--duration", type=float, default=300, help="seconds")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--retry-rate", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument(
        "--database",
        default="preflab_bench_load",
        help="dropped and recreated; its name must contain 'bench'",
    )
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    args.duration = min(args.duration, 900)  # bounded whatever is asked

    project_id, keys = setup_database(args)
    server = start_server(args)
    try:
        stats, acked, elapsed = asyncio.run(run_load(args, project_id, keys))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    integrity = verify(project_id, acked, args.k)
    requests = len(stats["next"]) + len(stats["submit"])
    print(
        f"annotators={args.annotators} duration={elapsed:.1f}s gunicorn={args.workers}x{args.threads} threads"
    )
    print(
        f"requests={requests} ({requests / elapsed:.1f}/s), judgments acknowledged={len(acked)} "
        f"({len(acked) / elapsed:.1f}/s), errors={len(stats['errors'])}"
    )
    for name in ("next", "submit"):
        values = [v * 1000 for v in stats[name]]
        if values:
            print(
                f"  {name:6s} n={len(values)} p50={statistics.median(values):.1f}ms "
                f"p95={percentile(values, 95):.1f}ms p99={percentile(values, 99):.1f}ms"
            )
    for line in stats["errors"][:10]:
        print("  error:", line)
    print("integrity:", integrity)
    ok = not stats["errors"] and integrity["lost"] == 0 and integrity["duplicate_task_annotator_pairs"] == 0
    ok = ok and integrity["tasks_over_k"] == 0 and integrity["tasks_with_wrong_count"] == 0
    print("RESULT:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
