"""``PREFLAB_CACHE_URL``: with a Redis URL every web process shares one Django cache, so the login limiter's
count of failed attempts made through one process locks the login in another, and one set of API rate-limit
buckets, so requests made with a token in one process count against its limit in another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, override_settings

from tests.processes import manage_shell

REPO = Path(__file__).resolve().parents[2]
ADDRESS = "10.9.8.7"

# Run in another process: 10 failed logins from ADDRESS, through the real login view, with the settings
# built from the environment; prints the cache backend it got.
FAIL_TEN_TIMES = f"""
from django.core.cache import cache
from django.test import Client
client = Client(REMOTE_ADDR="{ADDRESS}")
codes = [client.post("/accounts/login/", {{"username": "nobody", "password": "wrong"}}).status_code
         for _ in range(10)]
assert codes == [200] * 10, codes
from django.core.cache import caches
print("backend:", type(caches["default"]).__name__)
"""


def _db_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_login_failures_are_counted_across_processes(redis_url, require_postgres):
    _forget(redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PREFLAB_CACHE"))}
    env.update(DATABASE_URL=_db_url(), PREFLAB_CACHE_URL=redis_url, DEBUG="1")
    assert "backend: RedisCache" in manage_shell(env, FAIL_TEN_TIMES)

    try:
        with override_settings(CACHES=_shared(redis_url)):
            this_process = Client(REMOTE_ADDR=ADDRESS)
            response = this_process.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
            assert response.status_code == 429  # the 11th attempt, the first made here
            other = Client(REMOTE_ADDR="10.9.8.8")  # another address is not affected
            assert other.post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 200
    finally:
        _forget(redis_url)


# Run in another process: 3 API requests with the token in PREFLAB_TEST_TOKEN (its limit is 3 per minute).
THREE_API_CALLS = """
import os
from rest_framework.test import APIClient
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Bearer " + os.environ["PREFLAB_TEST_TOKEN"])
codes = [api.get("/api/v1/projects/").status_code for _ in range(3)]
assert codes == [200] * 3, codes
print("ok")
"""


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_api_rate_limit_is_counted_across_processes(redis_url, require_postgres):
    from rest_framework.test import APIClient

    from annotation.api.throttling import reset_buckets
    from annotation.models import ApiToken, Role
    from tests.factories import make_token, make_user

    user = make_user(Role.ANNOTATOR)
    raw = make_token(user, ["annotate"], name="shared")
    ApiToken.objects.filter(name="shared").update(rate_limit_per_minute=3)
    with override_settings(CACHE_URL=redis_url):
        reset_buckets()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PREFLAB_CACHE"))}
    env.update(DATABASE_URL=_db_url(), PREFLAB_CACHE_URL=redis_url, PREFLAB_TEST_TOKEN=raw, DEBUG="1")
    manage_shell(env, THREE_API_CALLS)
    try:
        with override_settings(CACHE_URL=redis_url):
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
            response = api.get("/api/v1/projects/")
            assert response.status_code == 429  # the 4th request, the first made in this process
            assert 1 <= int(response["Retry-After"]) <= 20
        # without the shared store this process counts alone: its own fresh bucket lets the request through
        reset_buckets()
        assert api.get("/api/v1/projects/").status_code == 200
    finally:
        with override_settings(CACHE_URL=redis_url):
            reset_buckets()


def _shared(redis_url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "preflab",
        }
    }


def _forget(redis_url: str) -> None:
    with override_settings(CACHES=_shared(redis_url)):
        from django.core.cache import cache

        cache.delete_many([f"login-fail:{ADDRESS}", "login-fail:10.9.8.8"])


def test_a_cache_url_that_is_not_redis_is_refused():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["PREFLAB_CACHE_URL"] = "memcached://localhost:11211"
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "PREFLAB_CACHE_URL must be a redis:// URL" in done.stderr
