"""The shape of the code: data flows one way (annotation -> training -> rewardsvc -> demo, all may use config)
and no two project modules import each other, directly or round a longer loop.

The graph is read from the source with ``ast`` (nothing is imported), counting imports inside functions
too: a deferred import still ties two modules together. Run ``python tests/test_architecture.py`` to print
the graph's cycles and stage violations.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "annotation", "training", "rewardsvc", "demo")
# A stage may import only from stages before it in this order (``config`` is below everything).
STAGES = {"config": 0, "annotation": 1, "training": 2, "rewardsvc": 3, "demo": 4}
# ``config`` wires the apps together (urls, celery autodiscovery): it may import any app.
STAGE_EXEMPT = {"config"}
# Cycles that a planned step removes (issue 15): each entry must still exist, so the list only shrinks.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` names (``a.b.c`` may be the module ``a.b``'s attribute)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at top level or inside functions)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # ``from pkg import sub`` names the sub-module; ``from mod import name`` names ``mod``
                targets = [f"{stem}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _resolve(target, modules)
                if found and found != name:
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def stage_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, edges in sorted(graph.items()):
        top = name.split(".")[0]
        if top in STAGE_EXEMPT:
            continue
        for target in sorted(edges):
            if STAGES[target.split(".")[0]] > STAGES[top]:
                bad.append(f"{name} imports {target}")
    return bad


def test_the_graph_sees_known_edges():
    """A guard for the reader itself: if it saw nothing, the other tests would pass vacuously."""
    graph = import_graph()
    assert "annotation.models" in graph["training.models.runs"]
    assert "rewardsvc.scoring" in graph["rewardsvc.services"]


def test_no_import_cycles_among_project_modules():
    found = {tuple(c) for c in cycles(import_graph())}
    assert found - KNOWN_CYCLES == set()
    assert KNOWN_CYCLES - found == set(), "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_a_stage_never_imports_a_later_one():
    """annotation never imports training or rewardsvc; training never imports rewardsvc; nothing imports demo."""
    assert stage_violations(import_graph()) == []


# Inside ``training`` the subdomains build on each other in this order: a dataset package never imports the
# reward-model or policy packages, and reward models never import policy. The shared layer (jobs, runs,
# models, configs, limits, access) is below all three.
SUBDOMAINS = {"datasets": 0, "rewardmodels": 1, "policy": 2}
SUBDOMAIN_EXCEPTIONS = {
    # the snapshot page offers "train a reward model on it" with the reward run's default config
    ("training.datasets.views", "training.rewardmodels.trainer"),
    # ... and "sweep reward-model settings on it" with the sweep's default search space
    ("training.datasets.views", "training.rewardmodels.sweeps.config"),
    # a decoder RM backbone (``smollm2``, a ``.gguf``) is the GGUF the policy loop converts, converted alike
    ("training.rewardmodels.trainer", "training.policy.gguf"),
}


def _subdomain(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "training" and len(parts) > 2 and parts[1] in SUBDOMAINS else None


def test_training_subdomains_import_only_earlier_ones():
    bad = set()
    for name, edges in import_graph().items():
        here = _subdomain(name)
        for target in edges:
            there = _subdomain(target)
            if here and there and SUBDOMAINS[there] > SUBDOMAINS[here]:
                bad.add((name, target))
    assert bad == SUBDOMAIN_EXCEPTIONS


def test_the_training_shared_layer_imports_no_subdomain():
    """``jobs`` runs executors named in its map, never imported: the shared layer stays below the packages."""
    graph = import_graph()
    shared = [m for m in graph if m.startswith("training.") and _subdomain(m) is None and m.count(".") == 1]
    shared = [
        m
        for m in shared
        if m not in ("training.tasks", "training.urls", "training.api_urls", "training.admin")
    ]
    bad = {(m, t) for m in shared for t in graph[m] if _subdomain(t)}
    assert bad == set()


def test_the_reward_model_encoding_is_django_free():
    """Training, evaluation and the reward server share ``training.rm_encoding``: it must import without
    Django (and without any project module that needs it)."""

    def imports(name: str) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse((ROOT / "training" / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
        return found

    allowed = {"__future__", "math", "re", "collections.abc", "dataclasses", "typing", "torch"}
    # the prompt normaliser beside it, and the import rendering it renders to (plain Python)
    assert imports("rm_encoding.py") <= allowed | {"training.prompt_rendering"}
    assert imports("prompt_rendering.py") <= allowed | {"annotation.chat"}
    chat = ast.parse((ROOT / "annotation" / "chat.py").read_text(encoding="utf-8"))
    assert {n.module for n in ast.walk(chat) if isinstance(n, ast.ImportFrom)} <= {"__future__", "typing"}


# Environment reads outside config/settings.py, each with its reason (a setting belongs in settings).
ENV_READS_ALLOWED = {
    "training/policy/spec.py",  # reward.token_env names the variable holding a secret, read at run time
    "training/rewardmodels/launch.py",  # RANK / LOCAL_RANK are set per process by accelerate; settings bootstrap
    "rewardsvc/serving/config.py",  # the reward server's one env reader (ServerConfig.from_env, at app build)
    "rewardsvc/management/commands/serve_rewards.py",  # hands options to the server through its env
    "rewardsvc/verl.py",  # runs inside verl's workers, without Django
    "demo/pipeline.py",  # sets the demo's token variable for the policy run it starts
    "demo/server.py",  # passes the environment to a child process
    "training/tracking.py",  # sets transformers' TensorBoard / MLflow variables for one run, then restores them
}


def test_settings_are_read_from_the_environment_in_settings_only():
    readers = set()
    for name, path in project_modules().items():
        text = path.read_text(encoding="utf-8")
        if name != "config.settings" and ("os.environ" in text or "getenv(" in text):
            readers.add(str(path.relative_to(ROOT)))
    readers = {r for r in readers if not r.startswith("config/")}
    assert readers <= ENV_READS_ALLOWED


if __name__ == "__main__":
    g = import_graph()
    print(f"{len(g)} modules, {sum(len(e) for e in g.values())} import edges")
    for component in cycles(g):
        print("cycle:", " <-> ".join(component))
    for line in stage_violations(g):
        print("stage:", line)
