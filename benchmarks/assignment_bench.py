"""Benchmark: the `next task` + `submit` round trip, measured server side, on a large PostgreSQL queue.

Builds (once; reused when present) a database with --judgments historic judgments and --open-tasks open
tasks using set-based SQL (INSERT ... SELECT generate_series), then runs --annotators worker processes,
each with its own connection, that loop ``task_next_for_annotator`` -> ``judgment_submit`` (the service
calls the API and the pages make) and time each round trip with ``perf_counter``. Prints p50/p95/p99 and
checks afterwards that no task holds more than k counted judgments.

    .venv/bin/python benchmarks/assignment_bench.py --judgments 1000000 --open-tasks 100000 \
        --annotators 50 --duration 60 [--think-ms 0] [--rebuild]

``--serving-order uncertainty|mix`` measures the reward-model-guided order instead of queue order: open tasks
without a ``priority_score`` get a deterministic pseudo-random one (one set-based UPDATE, kept), and the
project's serving order is set for the run and put back to ``queue`` afterwards. Several orders
(``--serving-order queue uncertainty --rounds 2``) are measured in the same process, interleaved
(queue, uncertainty, queue, uncertainty) so that drifting machine load hits each alike, and each order's
percentiles are printed with their ratio to the first order's (the baseline).

Each worker process makes one untimed round trip before the measured phase starts, as a long-lived server
process has before the requests one measures; that cold first round trip (lazy imports, the database session's
first plans) is printed on its own. ``--no-warm-up`` times it with the rest, as runs before 2026-12-01 11:00 did:
with 50 processes and a few round trips each it is about one sample in twelve, i.e. it sets the p95.

Not a test: numbers depend on the machine. Uses its own database (default preflab_bench_c).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

K = 3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")
    )


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PREFLAB_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database(admin_url: str, name: str, rebuild: bool) -> bool:
    """Create the database if missing; return True when it must be (re)filled."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    return rebuild


def fill(*, judgments: int, open_tasks: int, users: int) -> None:
    """Set-based data generation. Layout: 1 project (k=3), ``users`` annotators, prompts with 3 candidates
    and 2 tasks each. Complete tasks carry 3 judgments; open tasks carry 0, 1 or 2 (cycling)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    open_judgments = sum(i % K for i in range(open_tasks))
    complete = max(0, (judgments - open_judgments) // K)
    total_tasks = complete + open_tasks
    prompts = (total_tasks + 1) // 2
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute(
            "INSERT INTO annotation_project (name, description, guidelines, overlap_k, pairing_strategy,"
            " pairs_per_prompt, allow_tie, allow_both_bad, ask_strength, rationale_required, extra_criteria,"
            " gold_rate, gold_feedback, swap_repeat_rate, lease_seconds, undo_grace_seconds, quality_settings,"
            " max_ranking_length, created_at) VALUES ('bench', '', '', %s, 'all_pairs', 3, true, true, false,"
            " false, '[]', 0, false, 0, 600, 30, '{}', %s, now()) RETURNING id",
            [K, settings.PREFLAB_RANKING_LENGTH_DEFAULT],
        )
        project_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined) SELECT '!', false, 'bench-' || g, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) g",
            [users],
        )
        cur.execute(
            "INSERT INTO annotation_projectmembership (project_id, user_id, role, created_at)"
            " SELECT %s, id, 'annotator', now() FROM auth_user WHERE username LIKE 'bench-%%'",
            [project_id],
        )
        cur.execute(
            "INSERT INTO annotation_prompt (project_id, text, metadata, external_id, content_hash, created_at)"
            " SELECT %s, 'Prompt ' || g, '{}', '', md5('p' || g), now() FROM generate_series(1, %s) g",
            [project_id, prompts],
        )
        cur.execute(
            "INSERT INTO annotation_candidate (prompt_id, text, model_name, generation_params, content_hash,"
            " created_at) SELECT p.id, 'Answer ' || c || ' to ' || p.id, 'm' || c, '{}', md5(p.id || '-' || c),"
            " now() FROM annotation_prompt p CROSS JOIN generate_series(1, 3) c WHERE p.project_id = %s"
            " ORDER BY p.id, c",
            [project_id],
        )
        print(f"  prompts/candidates: {time.perf_counter() - t0:.0f}s", flush=True)
        # Task n (1-based) uses prompt (n+1)/2 and candidates (1,2) or (2,3). The first `complete` tasks
        # are complete, the rest are open with n % 3 judgments.
        cur.execute(
            "CREATE TEMP TABLE cand AS SELECT prompt_id, min(id) AS c1 FROM annotation_candidate"
            " GROUP BY prompt_id"
        )
        cur.execute(
            "CREATE TEMP TABLE pnum AS SELECT id AS prompt_id, row_number() OVER (ORDER BY id) AS rn"
            " FROM annotation_prompt WHERE project_id = %s",
            [project_id],
        )
        cur.execute(
            "INSERT INTO annotation_comparisontask (project_id, prompt_id, candidate_a_id, candidate_b_id, kind,"
            " gold_choice, gold_explanation, status, judgment_count, priority, metadata, created_at)"
            " SELECT %s, p.prompt_id, c.c1 + (n %% 2), c.c1 + (n %% 2) + 1, 'standard', '', '',"
            " CASE WHEN n <= %s THEN 'complete' ELSE 'open' END,"
            " CASE WHEN n <= %s THEN %s ELSE n %% %s END, 0, '{}', now()"
            " FROM generate_series(1, %s) n JOIN pnum p ON p.rn = (n + 1) / 2 JOIN cand c USING (prompt_id)",
            [project_id, complete, complete, K, K, total_tasks],
        )
        print(f"  tasks: {time.perf_counter() - t0:.0f}s", flush=True)
        cur.execute("SELECT min(id) FROM auth_user WHERE username LIKE 'bench-%%'")
        first_user = cur.fetchone()[0]
        # Judgment j of a task goes to user (task_id * 7 + j * 101) mod users: distinct for j < 3.
        cur.execute(
            "INSERT INTO annotation_judgment (task_id, annotator_id, choice, rationale, criteria, time_spent_ms,"
            " source, is_extra, created_at)"
            " SELECT t.id, %s + ((t.id * 7 + j * 101) %% %s), (ARRAY['A','B','tie'])[1 + (t.id + j) %% 3], '',"
            " '{}', 5000, 'human', false, now() - interval '1 day'"
            " FROM annotation_comparisontask t CROSS JOIN generate_series(0, %s) j"
            " WHERE t.project_id = %s AND j < t.judgment_count",
            [first_user, users, K - 1, project_id],
        )
        print(f"  judgments: {time.perf_counter() - t0:.0f}s", flush=True)
        cur.execute("ANALYZE")
    print(f"filled in {time.perf_counter() - t0:.0f}s", flush=True)


def worker(
    url: str,
    user_ids: list[int],
    project_id: int,
    start_at: float,
    deadline: float,
    think_ms: int,
    warm_up: bool,
    out,
):
    django_setup(url)
    from django.contrib.auth.models import User
    from django.db import OperationalError, connection

    from annotation.models import Project
    from annotation.services.assignment import task_next_for_annotator
    from annotation.services.judgments import judgment_submit

    project = Project.objects.get(pk=project_id)
    rng = random.Random(user_ids[0])
    samples: list[tuple[float, float, float]] = []  # wall round trip, wall next, client CPU round trip
    errors = 0
    users = list(User.objects.filter(pk__in=user_ids))
    connection.ensure_connection()
    # One untimed round trip first, as a long-lived server process has done before any request we measure:
    # the first call in a fresh process pays for lazy imports and the database session's first plans. With many
    # processes and few round trips each, that one-off cost would otherwise land in the p95. It is measured
    # and reported on its own ("cold first round trip").
    cold = None
    if warm_up:
        t0, c0 = time.perf_counter(), time.process_time()
        task = task_next_for_annotator(project=project, annotator=users[0])
        if task is not None:
            judgment_submit(task=task, annotator=users[0], choice="A", idempotency_key=os.urandom(8).hex())
        cold = ((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000)
    # Start together (connections open, code imported), staggered over one think time like real people.
    time.sleep(max(0.0, start_at - time.time()) + (rng.uniform(0, think_ms / 1000) if think_ms else 0))
    while time.time() < deadline:
        user = rng.choice(users)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            task = task_next_for_annotator(project=project, annotator=user)
            t1 = time.perf_counter()
            if task is None:
                break
            judgment_submit(
                task=task, annotator=user, choice=rng.choice("AB"), idempotency_key=os.urandom(8).hex()
            )
        except OperationalError:
            errors += 1
            continue
        t2 = time.perf_counter()
        samples.append(((t2 - t0) * 1000, (t1 - t0) * 1000, (time.process_time() - c0) * 1000))
        if think_ms:
            time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
    connection.close()
    out.put((samples, errors, cold))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="server URL, no db name")
    parser.add_argument("--database", default="preflab_bench_c")
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--open-tasks", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000, help="annotators in the history")
    parser.add_argument("--annotators", type=int, default=50, help="concurrent worker processes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measurement")
    parser.add_argument("--think-ms", type=int, default=0, help="mean pause between round trips")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the data")
    parser.add_argument(
        "--serving-order", nargs="+", default=["queue"], choices=["queue", "uncertainty", "mix"]
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of the orders")
    parser.add_argument("--random-share", type=float, default=0.1, help="with --serving-order mix")
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="measure each process's first round trip too (by default it is untimed and reported apart)",
    )
    args = parser.parse_args()

    url = f"{args.pg}/{args.database}"
    must_fill = ensure_database(f"{args.pg}/postgres", args.database, args.rebuild)
    django_setup(url)
    if must_fill:
        fill(judgments=args.judgments, open_tasks=args.open_tasks, users=args.users)
    from django.contrib.auth.models import User
    from django.db import connection, connections

    from annotation.models import ComparisonTask, Judgment, Project, TaskLease

    project = Project.objects.get(name="bench")
    n_judgments = Judgment.objects.count()
    n_open = ComparisonTask.objects.filter(project=project, status="open").count()
    print(f"data: {n_judgments:,} judgments, {n_open:,} open tasks, k={project.overlap_k}", flush=True)
    if set(args.serving_order) != {"queue"}:
        with connection.cursor() as cur:
            # Knuth's multiplicative hash of the id: a fixed, well-spread score per task.
            cur.execute(
                "UPDATE annotation_comparisontask SET priority_score = ((id * 2654435761) %% 1000003) / 1000003.0"
                " WHERE project_id = %s AND status = 'open' AND priority_score IS NULL",
                [project.pk],
            )
            print(f"scored {cur.rowcount:,} open tasks", flush=True)
    user_ids = list(
        User.objects.filter(username__startswith="bench-").order_by("id").values_list("pk", flat=True)
    )
    groups = [user_ids[i :: args.annotators] for i in range(args.annotators)]
    samples: dict[str, list] = {order: [] for order in args.serving_order}
    colds: dict[str, list] = {order: [] for order in args.serving_order}
    errors = 0
    for _round in range(args.rounds):
        for order in args.serving_order:
            TaskLease.objects.all().delete()
            Project.objects.filter(pk=project.pk).update(serving_order=order, random_share=args.random_share)
            connections.close_all()
            try:
                results = _measure(url, groups, project.pk, args.duration, args.think_ms, not args.no_warm_up)
            finally:
                Project.objects.filter(pk=project.pk).update(serving_order="queue")
            samples[order] += [s for r in results for s in r[0]]
            colds[order] += [r[2] for r in results if r[2] is not None]
            errors += sum(r[1] for r in results)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM annotation_comparisontask t WHERE t.judgment_count > %s OR t.judgment_count"
            " <> (SELECT count(*) FROM annotation_judgment j WHERE j.task_id = t.id AND NOT j.is_extra)"
            " AND t.id IN (SELECT task_id FROM annotation_judgment WHERE created_at > now() - interval '1 hour')",
            [project.overlap_k],
        )
        broken = cur.fetchone()[0]
    print(
        f"annotators={args.annotators} think_ms={args.think_ms} rounds={args.rounds} x {args.duration:.0f}s "
        f"errors={errors} over_k_or_miscounted={broken}"
    )
    print(f"load average (1, 5, 15 min) after the run: {os.getloadavg()}")
    baseline = args.serving_order[0]
    for order, rows in samples.items():
        print(f"serving_order={order}: {len(rows)} round trips")
        for i, name in enumerate(("next+submit", "next only", "python CPU")):
            values = [row[i] for row in rows]
            base = [row[i] for row in samples[baseline]]
            ratio = percentile(values, 95) / percentile(base, 95) if base else float("nan")
            print(
                f"  {name:12s} p50={percentile(values, 50):.1f} ms  p95={percentile(values, 95):.1f} ms  "
                f"p99={percentile(values, 99):.1f} ms  mean={statistics.fmean(values) if values else 0:.1f} ms"
                f"  p95 ratio to {baseline}={ratio:.2f}"
            )
        if colds[order]:
            wall, cpu = [c[0] for c in colds[order]], [c[1] for c in colds[order]]
            print(
                f"  cold first round trip per process (untimed above, {len(wall)} processes): "
                f"wall p50={percentile(wall, 50):.1f} ms p95={percentile(wall, 95):.1f} ms, "
                f"python CPU p50={percentile(cpu, 50):.1f} ms p95={percentile(cpu, 95):.1f} ms"
            )


def _measure(
    url: str, groups: list[list[int]], project_id: int, duration: float, think_ms: int, warm_up: bool
) -> list:
    """One measured phase: a worker process per group of annotators, started together."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 10  # time for the workers to start and connect; not measured
    deadline = start_at + duration
    procs = [
        ctx.Process(target=worker, args=(url, g, project_id, start_at, deadline, think_ms, warm_up, out))
        for g in groups
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results


if __name__ == "__main__":
    main()
