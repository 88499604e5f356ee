"""Import benchmark: N generated prompt/chosen/rejected pairs from a JSONL file into PostgreSQL.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/import_bench.py --pairs 100000 [--prior-judgments]

Migrates the database named by DATABASE_URL, imports into a fresh project through the same service the API
and `manage.py import_items` use (read + validate + hash + bulk insert, one transaction), prints the
seconds and rates, then deletes the benchmark project's rows again. Needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def write_pairs(path: Path, n: int, seed: int = 0) -> None:
    """Distinct prompts of realistic length (a few hundred characters per side)."""
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "model",
        "answer",
        "helpful",
        "harmless",
        "please",
        "explain",
        "why",
        "how",
        "step",
        "first",
        "then",
        "finally",
        "data",
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            body = " ".join(rng.choices(words, k=40))
            fh.write(
                json.dumps(
                    {
                        "id": f"bench-{i}",
                        "prompt": f"Question {i}: {body}?",
                        "chosen": f"A careful answer to {i}: " + " ".join(rng.choices(words, k=60)),
                        "rejected": f"A sloppy answer to {i}: " + " ".join(rng.choices(words, k=30)),
                        "chosen_model": "model-good",
                        "rejected_model": "model-bad",
                    }
                )
                + "\n"
            )


def delete_project_rows(project_id: int) -> None:
    from django.db import connection, transaction

    from annotation.models import Candidate, ComparisonTask, ImportBatch, Judgment, Project, Prompt

    t = {
        m.__name__: m._meta.db_table
        for m in (Candidate, ComparisonTask, ImportBatch, Judgment, Project, Prompt)
    }
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"DELETE FROM {t['Judgment']} WHERE task_id IN "
            f"(SELECT id FROM {t['ComparisonTask']} WHERE project_id = %s)",
            [project_id],
        )
        cur.execute(f"DELETE FROM {t['ComparisonTask']} WHERE project_id = %s", [project_id])
        cur.execute(
            f"DELETE FROM {t['Candidate']} WHERE prompt_id IN (SELECT id FROM {t['Prompt']} WHERE project_id = %s)",
            [project_id],
        )
        for name in ("Prompt", "ImportBatch"):
            cur.execute(f"DELETE FROM {t[name]} WHERE project_id = %s", [project_id])
        cur.execute(f"DELETE FROM {t['Project']} WHERE id = %s", [project_id])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument(
        "--prior-judgments", action="store_true", help="Also write one prior judgment per pair."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark project afterwards.")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Project
    from annotation.services.imports import items_import

    if connection.vendor != "postgresql":
        sys.exit("import_bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.jsonl"
        write_pairs(path, args.pairs)
        size_mb = path.stat().st_size / 1e6
        project = Project.objects.create(name=f"import-bench-{uuid.uuid4().hex[:8]}")
        try:
            started = time.perf_counter()
            report = items_import(project=project, source=path, prior_judgments=args.prior_judgments)
            seconds = time.perf_counter() - started
        finally:
            if not args.keep:
                delete_project_rows(project.pk)
    rows = (
        report.prompts_created + report.candidates_created + report.tasks_created + report.judgments_created
    )
    print(f"PostgreSQL {connection.pg_version // 10000}, file {size_mb:.1f} MB JSONL, {report.records} pairs")
    print(
        f"prompts {report.prompts_created}, candidates {report.candidates_created}, tasks {report.tasks_created}, "
        f"prior judgments {report.judgments_created}: {rows} rows"
    )
    print(f"import: {seconds:.1f} s, {report.records / seconds:,.0f} pairs/s, {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
