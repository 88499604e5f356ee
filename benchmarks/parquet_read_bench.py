"""Parquet reading cost of the import's bomb guard: PrefLab's reader (text leaves read as dictionaries and
measured before they are decoded) against a plain pyarrow read of the same file into Python rows, in the
same process. Prints both times and the ratio.

    .venv/bin/python benchmarks/parquet_read_bench.py --rows 100000 [--repeat 3]

The file is generated: distinct prompt/chosen/rejected texts of a few hundred characters, and a
responses-shaped variant (a list of {text, model} per prompt). No database is used.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("abcdefghij klmnop") for _ in range(rng.randint(lo, hi)))


def write_files(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    pairs = [
        {
            "prompt": f"{i} {_text(rng, 50, 300)}",
            "chosen": _text(rng, 100, 600),
            "rejected": _text(rng, 100, 600),
        }
        for i in range(rows)
    ]
    responses = [
        {
            "prompt": p["prompt"],
            "responses": [{"text": p["chosen"], "model": "m-a"}, {"text": p["rejected"], "model": "m-b"}],
        }
        for p in pairs
    ]
    paths = {"pairs": folder / "pairs.parquet", "responses": folder / "responses.parquet"}
    pq.write_table(pa.Table.from_pylist(pairs), paths["pairs"])
    pq.write_table(pa.Table.from_pylist(responses), paths["responses"])
    return paths


def plain_read(path: Path) -> int:
    import pyarrow.parquet as pq

    return sum(len(batch.to_pylist()) for batch in pq.ParquetFile(path).iter_batches(batch_size=4096))


def guarded_read(path: Path) -> int:
    from annotation.importing.readers import read_records

    return sum(1 for _ in read_records(str(path), "parquet", max_bytes=10**12))


def best_of(fn, path: Path, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn(path)
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), args.rows)
        for name, path in paths.items():
            plain, n_plain = best_of(plain_read, path, args.repeat)
            guarded, n_guarded = best_of(guarded_read, path, args.repeat)
            assert n_plain == n_guarded == args.rows, (n_plain, n_guarded)
            print(
                f"{name:9s} rows={args.rows} plain={plain:.3f}s guarded={guarded:.3f}s "
                f"ratio={guarded / plain:.2f} extra_per_100k={(guarded - plain) * 100_000 / args.rows:.2f}s"
            )


if __name__ == "__main__":
    main()
