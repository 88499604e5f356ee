"""Password guessing has one door, and it is rate limited.

``/accounts/login/`` counts failed attempts per client address (``tests/config/test_ops.py`` checks the
limit itself). Django's admin has a login form of its own that counts nothing, so ``/admin/login/`` sends
the browser to the limited view instead of checking passwords itself.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache

from annotation.models import Role
from config.views import LOGIN_ATTEMPTS_PER_WINDOW
from tests.factories import make_user


@pytest.fixture
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_admin_login_form_checks_no_passwords_and_sends_to_the_limited_login(client, db, empty_cache):
    admin = make_user(Role.ADMIN, password="right-password-1")
    for _ in range(15):
        response = client.post(
            "/admin/login/?next=/admin/", {"username": admin.username, "password": "wrong"}
        )
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/admin/"
    # Had the admin form counted or checked anything, the right password would now behave differently.
    response = client.post("/admin/login/", {"username": admin.username, "password": "right-password-1"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_guessing_through_the_site_login_is_stopped_for_the_admin_too(client, db, empty_cache):
    admin = make_user(Role.ADMIN, password="right-password-1")
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": admin.username, "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": admin.username, "password": "right-password-1"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def _fail(client, n: int, forwarded: str) -> list[int]:
    return [
        client.post(
            "/accounts/login/", {"username": "nobody", "password": "wrong"}, HTTP_X_FORWARDED_FOR=forwarded
        ).status_code
        for _ in range(n)
    ]


def test_behind_a_trusted_proxy_the_limit_counts_each_client_not_the_proxy(db, empty_cache, settings):
    """``PREFLAB_TRUSTED_PROXIES=1``: every request comes from the balancer's address (REMOTE_ADDR), and the
    address it appended to X-Forwarded-For is the client. One guessing client is stopped, others are not,
    and a client cannot dodge the count by writing its own X-Forwarded-For."""
    from django.test import Client

    settings.TRUSTED_PROXIES = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    assert _fail(proxy, 10, "203.0.113.5") == [200] * 10
    assert _fail(proxy, 1, "203.0.113.5") == [429]
    # a forged entry to the left of what our proxy appended changes nothing
    assert _fail(proxy, 1, "198.51.100.1, 203.0.113.5") == [429]
    # another client behind the same balancer still gets the form
    assert _fail(proxy, 1, "203.0.113.6") == [200]
    # a request without the header (straight to the app) counts by the socket's address
    assert proxy.post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 200
    assert cache.get("login-fail:10.0.0.2") == 1
    # garbage in the header falls back to the socket's address too
    assert _fail(proxy, 1, "not-an-ip") == [200]
    assert cache.get("login-fail:10.0.0.2") == 2


def test_without_trusted_proxies_the_forwarded_header_is_ignored(db, empty_cache, settings):
    from django.test import Client

    settings.TRUSTED_PROXIES = 0
    direct = Client(REMOTE_ADDR="192.0.2.9")
    # a client rotating a made-up X-Forwarded-For is still one address
    assert [_fail(direct, 1, f"203.0.113.{i}")[0] for i in range(11)] == [200] * 10 + [429]


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast) that counts password checks. Each check waits until more checks than the limit are in
    flight (or a few seconds pass): a view that counts attempts only after checking passwords then lets
    every concurrent guess through to a check, so a race cannot hide behind a lucky schedule."""

    checks = 0
    lock = threading.Lock()
    crowd = threading.Event()

    def verify(self, password, encoded):
        with CountingHasher.lock:
            CountingHasher.checks += 1
            if CountingHasher.checks > LOGIN_ATTEMPTS_PER_WINDOW:
                CountingHasher.crowd.set()
        CountingHasher.crowd.wait(timeout=3)
        return super().verify(password, encoded)


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(
    transactional_db, empty_cache, settings
):
    from django.db import connection
    from django.test import Client

    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.checks = 0
    CountingHasher.crowd.clear()
    victim = make_user(Role.ADMIN, password="right-password-1")
    n = 40
    start = threading.Barrier(n)
    statuses: list[int] = []

    def guess() -> None:
        try:
            client = Client(REMOTE_ADDR="198.51.100.40")
            start.wait()
            resp = client.post("/accounts/login/", {"username": victim.username, "password": "wrong"})
            statuses.append(resp.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [200] * LOGIN_ATTEMPTS_PER_WINDOW + [429] * (n - LOGIN_ATTEMPTS_PER_WINDOW)
    assert CountingHasher.checks == LOGIN_ATTEMPTS_PER_WINDOW
    # The window is spent: the right password is not even checked now.
    right = Client(REMOTE_ADDR="198.51.100.40").post(
        "/accounts/login/", {"username": victim.username, "password": "right-password-1"}
    )
    assert right.status_code == 429 and CountingHasher.checks == LOGIN_ATTEMPTS_PER_WINDOW


def test_successful_logins_do_not_use_up_the_allowance(client, db, empty_cache):
    user = make_user(Role.ANNOTATOR, password="right-password-1")
    for _ in range(LOGIN_ATTEMPTS_PER_WINDOW + 5):
        resp = client.post("/accounts/login/", {"username": user.username, "password": "right-password-1"})
        assert resp.status_code == 302
        client.logout()
