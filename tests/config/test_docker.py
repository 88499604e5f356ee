"""The docker/ files are valid: `docker compose config` when the client has compose, else a structural
check of the compose file, and a syntax check of the Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def _compose_has_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def test_compose_file_defines_the_services_with_health_checks_and_volumes():
    if _compose_has_plugin():
        result = subprocess.run(
            ["docker", "compose", "-f", str(DOCKER / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            env={"SECRET_KEY": "x", "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = spec["services"]
    for name in ("web", "worker", "worker-training", "beat", "reward", "postgres", "redis"):
        assert name in services, name
    for name in ("web", "worker", "worker-training", "reward", "postgres", "redis"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert (
        "-Q" in services["worker-training"]["command"]
        and "training" in services["worker-training"]["command"]
    )
    assert services["worker"]["command"][services["worker"]["command"].index("-Q") + 1] == "default"
    assert set(spec["volumes"]) >= {"artifacts", "pgdata", "redisdata"}
    assert services["web"]["environment"]["DEBUG"] == "0"
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["CELERY_BROKER_URL"].startswith("redis://")


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        out.append((keyword.upper(), rest))
    return out


def test_dockerfile_syntax_multistage_non_root_and_variants():
    instructions = _instructions((DOCKER / "Dockerfile").read_text())
    unknown = [k for k, _ in instructions if k not in INSTRUCTIONS]
    assert not unknown, f"unknown instructions: {unknown}"
    first_non_arg = next(k for k, _ in instructions if k != "ARG")
    assert first_non_arg == "FROM"
    stages = [rest for k, rest in instructions if k == "FROM"]
    assert len(stages) >= 3, "multi-stage build expected"
    assert any("runtime-cpu" in s for s in stages) and any("runtime-cuda" in s for s in stages)
    final = stages[-1]
    assert "${VARIANT}" in final
    after_final = instructions[[i for i, (k, _) in enumerate(instructions) if k == "FROM"][-1] :]
    users = [rest for k, rest in after_final if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(k == "HEALTHCHECK" for k, _ in after_final)
