"""Export benchmark: N judgments in PostgreSQL exported to TRL JSONL, against COPY of the same query.

    .venv/bin/python benchmarks/export_bench.py --database-url postgres://postgres@127.0.0.1:5432/preflab_bench_d \
        --judgments 1000000 --generate

``--generate`` migrates the (benchmark-only) database and fills it with bulk SQL: one project, 50
annotators, one two-candidate task per prompt and three judgments per task (A/B/tie with strengths), texts of
a few hundred characters. Then, in one run: (1) ``COPY (<the export's own SELECT>) TO STDOUT`` into a file,
(2) the export (``training.datasets.export.export_snapshot_files``, TRL format only, the code path of
``manage.py export_dataset --out``) in a fresh child process whose peak RSS is read from ``getrusage``.
Prints wall times, the ratio, peak memory and output sizes as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
ANNOTATORS = 50
VOTES_PER_TASK = 3


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def generate(n_judgments: int) -> int:
    """Fill the benchmark database; returns the project id."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    if "bench" not in connection.settings_dict["NAME"]:
        raise SystemExit("refusing to generate into a database whose name lacks 'bench'")
    call_command("migrate", verbosity=0)
    n_tasks = -(-n_judgments // VOTES_PER_TASK)
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE annotation_judgment, annotation_comparisontask, annotation_candidate, annotation_prompt,"
            " annotation_annotatorflag, annotation_project RESTART IDENTITY CASCADE"
        )
        User.objects.filter(username__startswith="bench-annotator-").delete()
        users = User.objects.bulk_create(
            [User(username=f"bench-annotator-{i}", password="!") for i in range(ANNOTATORS)]
        )
        user_ids = "ARRAY[" + ",".join(str(u.pk) for u in users) + "]"
        cur.execute(
            "INSERT INTO annotation_project (name, description, guidelines, overlap_k, pairing_strategy,"
            " pairs_per_prompt, allow_tie, allow_both_bad, ask_strength, rationale_required, extra_criteria,"
            " gold_rate, gold_feedback, swap_repeat_rate, lease_seconds, undo_grace_seconds, quality_settings,"
            " created_at) VALUES ('bench', '', '', 3, 'all_pairs', 3, true, true, true, false, '[]', 0, true, 0,"
            " 600, 30, '{}', now()) RETURNING id"
        )
        project_id = cur.fetchone()[0]
        steps = [
            (
                "prompts",
                "INSERT INTO annotation_prompt (id, project_id, text, metadata, external_id, content_hash,"
                " created_at) SELECT i, %s, 'Question ' || i || ': please explain, step by step, ' ||"
                " repeat(md5(i::text) || ' ', 4), '{}', '', md5(i::text), now() FROM generate_series(1, %s) i",
                [project_id, n_tasks],
            ),
            (
                "candidates",
                "INSERT INTO annotation_candidate (id, prompt_id, text, model_name, generation_params,"
                " content_hash, created_at) SELECT 2 * i - 1 + s, i, 'Answer ' || s || ' to ' || i || ': ' ||"
                " repeat(md5((2 * i + s)::text) || ' and so on, ', 6), 'model-' || s, '{}',"
                " md5((2 * i + s)::text), now() FROM generate_series(1, %s) i, generate_series(0, 1) s",
                [n_tasks],
            ),
            (
                "tasks",
                "INSERT INTO annotation_comparisontask (id, project_id, prompt_id, candidate_a_id,"
                " candidate_b_id, kind, gold_choice, gold_explanation, status, judgment_count, priority,"
                " metadata, created_at) SELECT i, %s, i, CASE WHEN i %% 2 = 0 THEN 2 * i - 1 ELSE 2 * i END,"
                " CASE WHEN i %% 2 = 0 THEN 2 * i ELSE 2 * i - 1 END, 'standard', '', '', 'complete', 3, 0,"
                " '{}', now() FROM generate_series(1, %s) i",
                [project_id, n_tasks],
            ),
            (
                "judgments",
                "INSERT INTO annotation_judgment (task_id, annotator_id, choice, strength, rationale, criteria,"
                " time_spent_ms, source, is_extra, created_at) SELECT t, ("
                + user_ids
                + ")[1 + (t + 7 * k) %% "
                f"{ANNOTATORS}], CASE WHEN (t * 31 + k * 17) %% 10 < 6 THEN 'A' WHEN (t * 31 + k * 17) %% 10 < 9"
                " THEN 'B' ELSE 'tie' END, 1 + (t + k) %% 3, '', '{}', 1000, 'human', false,"
                " now() - make_interval(secs => t) FROM generate_series(1, %s) t, generate_series(0, 2) k"
                " ORDER BY t, k LIMIT %s",
                [n_tasks, n_judgments],
            ),
        ]
        for label, sql, params in steps:
            started = time.perf_counter()
            cur.execute(sql, params)
            print(f"generated {label} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        for table in ("annotation_prompt", "annotation_candidate", "annotation_comparisontask"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        cur.execute("ANALYZE")
    return project_id


def bench_spec(project_id: int, extra: dict):
    from training.datasets.spec import SnapshotSpec

    return SnapshotSpec.from_dict({"projects": [project_id], **extra})


def run_copy(spec, out: Path, formats: str) -> tuple[float, int]:
    """COPY the export's own SELECT (same columns, filters and order) to a file; returns (seconds, bytes).

    ``created_at`` is selected only when the export selects it (the per-vote format), as the export does."""
    from django.db import connection
    from psycopg import ClientCursor

    from training.datasets.selectors import snapshot_vote_queryset

    qs = snapshot_vote_queryset(spec, with_created_at="votes" in formats.split(","))
    sql, params = qs.query.sql_with_params()
    connection.ensure_connection()
    with ClientCursor(connection.connection) as client:
        bound = client.mogrify(sql, params)
    started = time.perf_counter()
    size = 0
    with (
        connection.cursor() as cur,
        cur.cursor.copy(f"COPY ({bound}) TO STDOUT") as copy,
        out.open("wb") as fh,
    ):
        for block in copy:
            fh.write(block)
            size += len(block)
    return time.perf_counter() - started, size


def child_export(args) -> None:
    setup_django(args.database_url)
    from training.datasets.export import export_snapshot_files

    spec = bench_spec(args.project, json.loads(args.spec_json))
    out = Path(args.out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    result = export_snapshot_files(spec, out, formats=tuple(args.formats.split(",")))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": result.counts["rows"], "counts": result.counts}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/preflab_bench_d")
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--generate", action="store_true", help="(Re)fill the benchmark database first.")
    parser.add_argument("--spec-json", default="{}", help="Extra SnapshotSpec fields.")
    parser.add_argument("--formats", default="trl", help="Formats the export writes (default: TRL JSONL).")
    parser.add_argument("--workdir", default=None, help="Where output files go (default: a temp dir).")
    parser.add_argument("--child-export", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        return child_export(args)

    setup_django(args.database_url)
    from annotation.models import Judgment, Project

    project_id = generate(args.judgments) if args.generate else Project.objects.get(name="bench").pk
    total = Judgment.objects.filter(task__project_id=project_id).count()
    spec = bench_spec(project_id, json.loads(args.spec_json))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        copy_seconds, copy_bytes = run_copy(spec, Path(tmp) / "copy.tsv", args.formats)
        (Path(tmp) / "copy.tsv").unlink()
        cmd = [sys.executable, __file__, "--child-export", "--database-url", args.database_url]
        cmd += [
            "--project",
            str(project_id),
            "--out",
            str(Path(tmp) / "export"),
            "--spec-json",
            args.spec_json,
        ]
        cmd += ["--formats", args.formats]
        started = time.perf_counter()
        child = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        report = json.loads(child.stdout.strip().splitlines()[-1])
        out_bytes = sum(p.stat().st_size for p in (Path(tmp) / "export").rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "judgments": total,
                "spec": json.loads(args.spec_json),
                "formats": args.formats,
                "copy_seconds": round(copy_seconds, 2),
                "copy_mb": round(copy_bytes / 1e6, 1),
                "export_seconds": round(report["seconds"], 2),
                "export_process_wall_seconds": round(wall, 2),
                "ratio_export_to_copy": round(report["seconds"] / copy_seconds, 2),
                "peak_rss_mb": round(peak_kib / 1024, 1),
                "rows": report["rows"],
                "output_mb": round(out_bytes / 1e6, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
