"""Password guessing has one door, and it is rate limited.

``/accounts/login/`` counts failed attempts per client address (``tests/config/test_ops.py`` checks the
limit itself). Django's admin has a login form of its own that counts nothing, so ``/admin/login/`` sends
the browser to the limited view instead of checking passwords itself.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from annotation.models import Role
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
