"""Suite-wide fixtures: artifact dirs in tmp, the shared hh-rlhf file, tiny models built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # Small, deterministic thread use: the machine has 2 cores shared by the DB, workers and the tests.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 at production cost dominates user-heavy tests on 2 cores; the hasher is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _artifact_dir(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.ARTIFACT_DIR.mkdir()
    return settings.ARTIFACT_DIR


@pytest.fixture
def is_postgres() -> bool:
    return django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def require_postgres(is_postgres):
    if not is_postgres:
        if os.environ.get("CI"):
            pytest.fail("CI must run this test on PostgreSQL (set DATABASE_URL)")
        pytest.skip("needs PostgreSQL (DATABASE_URL)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("PREFLAB_TEST_REDIS_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run this test against Redis (PREFLAB_TEST_REDIS_URL)")
        pytest.skip("needs Redis (PREFLAB_TEST_REDIS_URL)")
    return url


@pytest.fixture(scope="session")
def hh_rlhf_path() -> Path:
    """The shared hh-rlhf harmless dev file (read in place, never copied)."""
    path = Path(os.environ.get("PREFLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    path = path / "hh-rlhf-harmless-dev.jsonl.gz"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data missing at {path}")
        pytest.skip("shared hh-rlhf data not present")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from training.tiny_models import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tmp_path_factory) -> Path:
    """A `save_pretrained` dir of a tiny random reward model + tokenizer (built once per session)."""
    from training.tiny_models import save_tiny_reward_model

    return save_tiny_reward_model(tmp_path_factory.mktemp("tiny-rm") / "model")


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory) -> Path:
    from training.tiny_models import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model")
