"""Benchmark: key press to next pair painted on the annotate page, in headless Chromium.

Two paths in the same run, against the same server and database:

- ``prefetch``: the page as shipped. Enter queues the answer for the API and swaps in the pair prefetched
  from ``/annotate/next``.
- ``reload``: the same page in classic mode (``window.PREFLAB_CLASSIC``, what the page does without
  JavaScript): Enter posts the form, the server redirects, the next page is rendered and loaded.

Measured in the page: from the Enter keydown's ``event.timeStamp`` to a ``requestAnimationFrame`` (+ a
zero timeout, so the frame was produced) after the new pair is in the DOM (the ``preflab:shown`` event,
or DOMContentLoaded of the next page for the reload path). Before each key press the page waits until the
next pair is prefetched and earlier answers are stored, as an annotator taking a few seconds per pair
would leave it. Afterwards every answer is counted in the judgments table.

    .venv/bin/python benchmarks/annotate_browser_bench.py --judgments 200            # embedded SQLite
    .venv/bin/python benchmarks/annotate_browser_bench.py --database-url postgres://postgres@127.0.0.1/preflab_bench_c

The server is ``manage.py serve --no-worker`` (the embedded one-machine default: Django's server, DEBUG on,
static files served by Django). A PostgreSQL database must already exist (it is migrated, and a project
with its own tasks is added). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PASSWORD = "bench-pw-123"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]

# Installed in every document: records (path, ms) samples in sessionStorage so they survive navigations.
PROBE = """
(() => {
  const T0 = '__bench_t0', OUT = '__bench_samples';
  addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.repeat) sessionStorage.setItem(T0, String(performance.timeOrigin + e.timeStamp));
  }, true);
  function painted(kind) {
    requestAnimationFrame(() => setTimeout(() => {
      const t0 = Number(sessionStorage.getItem(T0));
      if (!t0) return;
      sessionStorage.removeItem(T0);
      const samples = JSON.parse(sessionStorage.getItem(OUT) || '[]');
      samples.push([kind, performance.timeOrigin + performance.now() - t0]);
      sessionStorage.setItem(OUT, JSON.stringify(samples));
    }, 0));
  }
  document.addEventListener('preflab:shown', e => { if (e.detail.task) painted('prefetch'); });
  document.addEventListener('DOMContentLoaded', () => painted('reload'));
})();
"""

TOPICS = ["sorting", "hash maps", "recursion", "HTTP caching", "SQL joins", "gradient descent", "regexes"]


def response_text(rng: random.Random, i: int, side: str) -> str:
    """A realistic response: prose, a code block, sometimes a table or LaTeX."""
    topic = rng.choice(TOPICS)
    prose = " ".join(
        rng.choice(["This", "The", "A", "Each"])
        + f" {topic} step {k} {'keeps' if side == 'A' else 'makes'} the result easy to check."
        for k in range(rng.randint(3, 8))
    )
    code = "\n".join(
        f"    total += item_{k} * {rng.randint(1, 99)}  # step {k}" for k in range(rng.randint(4, 12))
    )
    parts = [
        f"**{topic.title()}** ({side}{i}): {prose}",
        f"```python\ndef run(items):\n    total = 0\n{code}\n    return total\n```",
    ]
    if rng.random() < 0.4:
        parts.append("| n | cost |\n|---:|---|\n" + "\n".join(f"| {n} | O(n log n) |" for n in range(1, 5)))
    if rng.random() < 0.4:
        parts.append("The cost is $O(n \\log n)$ and in total $$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$")
    return "\n\n".join(parts)


def setup_data(n_tasks: int, seed: int = 0) -> tuple[int, str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from annotation.models import Candidate, ComparisonTask, Project, ProjectMembership, Prompt, content_hash

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    stamp = f"{int(time.time())}-{os.getpid()}"
    project = Project.objects.create(name=f"browser-bench-{stamp}", overlap_k=1, undo_grace_seconds=60)
    user = User.objects.create_user(f"bench-annotator-{stamp}", password=PASSWORD)
    Group.objects.get(name="annotator").user_set.add(user)
    ProjectMembership.objects.create(project=project, user=user, role="annotator")
    for i in range(n_tasks):
        text = f"Question {i}: explain {rng.choice(TOPICS)} to a new engineer, with code."
        prompt = Prompt.objects.create(project=project, text=text, content_hash=content_hash(text))
        a, b = response_text(rng, i, "A"), response_text(rng, i, "B")
        ca = Candidate.objects.create(prompt=prompt, text=a, model_name="m1", content_hash=content_hash(a))
        cb = Candidate.objects.create(prompt=prompt, text=b, model_name="m2", content_hash=content_hash(b))
        ComparisonTask.objects.create(project=project, prompt=prompt, candidate_a=ca, candidate_b=cb)
    return project.pk, user.username


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=120) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not start")


def rank(page, base: str, project_id: int, n: int, classic: bool) -> list[float]:
    """Answer n pairs by keyboard (1, W, Enter); return the Enter -> painted times in ms."""
    page.goto(f"{base}/projects/{project_id}/annotate")
    page.evaluate("() => sessionStorage.removeItem('__bench_samples')")
    for i in range(n):
        if classic:
            page.wait_for_selector("#judgment-form:not([hidden])")
        else:
            page.wait_for_selector("#task-view[data-upcoming='1']", state="attached")
            page.wait_for_selector("#send-status[data-waiting='0']", state="attached")
        page.keyboard.press("1")
        page.keyboard.press("w")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "n => JSON.parse(sessionStorage.getItem('__bench_samples') || '[]').length >= n", arg=i + 1
        )
    if not classic:
        page.wait_for_selector("#send-status[data-waiting='0']", state="attached", timeout=120_000)
    samples = json.loads(page.evaluate("() => sessionStorage.getItem('__bench_samples')"))
    kinds = {k for k, _ in samples}
    assert kinds == {"reload" if classic else "prefetch"}, kinds
    return [ms for _, ms in samples]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50), 1),
        "p95_ms": round(pct(values, 95), 1),
        "mean_ms": round(statistics.fmean(values), 1),
        "max_ms": round(max(values), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=200, help="pairs answered on each path")
    parser.add_argument(
        "--database-url", default="", help="an existing PostgreSQL database (default: SQLite)"
    )
    parser.add_argument("--chromium", default=os.environ.get("PREFLAB_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--warmup", type=int, default=5, help="pairs answered first on each path, not timed")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="preflab-browser-bench-")
    env = {**os.environ, "PREFLAB_DATA_DIR": data_dir, "PREFLAB_LOG_LEVEL": "WARNING", "DEBUG": "1"}
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    os.environ.clear()
    os.environ.update(env)
    per_path = args.judgments + args.warmup
    project_id, username = setup_data(2 * per_path + 10)
    port = free_port()
    server = start_server(port, env)
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            results = {}
            for path in ("prefetch", "reload"):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(PROBE)
                if path == "reload":
                    context.add_init_script("window.PREFLAB_CLASSIC = true;")
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", username)
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(lambda url: "/accounts/login" not in url)
                rank(page, base, project_id, args.warmup, classic=path == "reload")
                results[path] = rank(page, base, project_id, args.judgments, classic=path == "reload")
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    from annotation.models import Judgment

    stored = Judgment.objects.filter(task__project_id=project_id).count()
    expected = 2 * per_path
    fast, slow = summary(results["prefetch"]), summary(results["reload"])
    report = {
        "database": "postgresql" if args.database_url else "sqlite (embedded default)",
        "judgments_per_path": args.judgments,
        "prefetch": fast,
        "reload": slow,
        "speedup_p50": round(slow["p50_ms"] / fast["p50_ms"], 1),
        "speedup_p95": round(slow["p95_ms"] / fast["p95_ms"], 1),
        "judgments_stored": stored,
        "judgments_expected": expected,
    }
    print(json.dumps(report, indent=2))
    ok = fast["p95_ms"] < 100 and report["speedup_p95"] >= 4 and stored == expected
    print("RESULT:", "PASS" if ok else "FAIL", "(p95 < 100 ms, >= 4x the reload path, every answer stored)")
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / f"annotate_browser_{'pg' if args.database_url else 'sqlite'}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
