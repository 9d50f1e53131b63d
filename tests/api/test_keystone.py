"""KeystoneAuth against a real Keystone (tests/keystone_server.py): no mocks.

Calls to Keystone are counted in Keystone's own access log; time is a clock the test moves.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rintik_lite.api.keystone import REFUSED_SECONDS, KeystoneAuth
from rintik_lite.errors import ServiceUnavailable, SettingsError
from rintik_lite.settings import Settings, defaults
from tests.keystone_server import (
    SERVICE_PASSWORD,
    KeystoneServer,
    free_port,
    keystone_server,
)

__all__ = ["keystone_server"]  # the session fixture, imported for pytest

TOKENS = "/v3/auth/tokens"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def settings_for(server: KeystoneServer, **changes: Any) -> Settings:
    name, password, project = server.service
    values: dict[str, Any] = {
        "keystone__auth_url": server.url,
        "keystone__username": name,
        "keystone__password": password,
        "keystone__project_name": project,
    }
    return defaults().replace(**{**values, **changes})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(keystone_server: KeystoneServer, clock: Clock) -> KeystoneAuth:
    return KeystoneAuth(settings_for(keystone_server), clock=clock)


def test_admin_token_is_accepted(keystone_server: KeystoneServer, auth: KeystoneAuth) -> None:
    assert auth.validate(keystone_server.issue_token(keystone_server.admin)) is True


def test_member_only_token_is_refused(
    keystone_server: KeystoneServer, auth: KeystoneAuth, clock: Clock
) -> None:
    token = keystone_server.issue_token(keystone_server.member)
    assert auth.validate(token) is False
    # The same token passes once its role is one we accept (role names compare
    # case-insensitively, as in oslo.policy): the role, not the token, was refused.
    member_ok = KeystoneAuth(settings_for(keystone_server, keystone__roles=["MEMBER"]), clock)
    assert member_ok.validate(token) is True


@pytest.mark.parametrize(
    "token",
    ["garbage", "gAAAAABp" + "x" * 175, "", "two\nlines", "tøken", "x" * 10_000],
)
def test_garbage_token_is_refused(auth: KeystoneAuth, token: str) -> None:
    assert auth.validate(token) is False


def test_implausible_token_never_reaches_keystone(
    keystone_server: KeystoneServer, auth: KeystoneAuth
) -> None:
    before = keystone_server.requests_seen("GET", TOKENS)
    for token in ("", "two\nlines", "tøken", "x" * 10_000):
        assert auth.validate(token) is False
    assert keystone_server.requests_seen("GET", TOKENS) == before


def test_revoked_token_is_refused_once_the_cache_expires(
    keystone_server: KeystoneServer, clock: Clock
) -> None:
    auth = KeystoneAuth(settings_for(keystone_server, keystone__cache_seconds=60), clock)
    token = keystone_server.issue_token(keystone_server.admin)
    assert auth.validate(token) is True
    keystone_server.revoke_token(token)
    # A fresh validator asks Keystone, which refuses the revoked token at once...
    assert KeystoneAuth(settings_for(keystone_server), clock).validate(token) is False
    # ...while the cached acceptance holds for at most cache_seconds.
    clock.advance(59)
    assert auth.validate(token) is True
    clock.advance(1)
    assert auth.validate(token) is False


def test_cached_acceptance_ends_at_the_token_expiry(
    keystone_server: KeystoneServer, clock: Clock
) -> None:
    auth = KeystoneAuth(settings_for(keystone_server, keystone__cache_seconds=10**6), clock)
    token = keystone_server.issue_token(keystone_server.admin)
    before = keystone_server.requests_seen("GET", TOKENS)
    assert auth.validate(token) is True
    expires_at = keystone_server.token_expiry(token)
    assert expires_at - clock.now < timedelta(seconds=10**6)  # the expiry is the bound

    clock.now = expires_at - timedelta(seconds=1)
    assert auth.validate(token) is True
    assert keystone_server.requests_seen("GET", TOKENS) == before + 1  # from the cache

    clock.now = expires_at
    # Past its expiry the cached answer is gone and Keystone is asked again (Keystone's own
    # clock has not moved, so it still accepts the token).
    assert auth.validate(token) is True
    assert keystone_server.requests_seen("GET", TOKENS) == before + 2


def test_cache_avoids_a_second_call(keystone_server: KeystoneServer, auth: KeystoneAuth) -> None:
    token = keystone_server.issue_token(keystone_server.admin)
    before = keystone_server.requests_seen("GET", TOKENS)
    assert all(auth.validate(token) for _ in range(5))
    assert keystone_server.requests_seen("GET", TOKENS) == before + 1


def test_refused_token_is_remembered_briefly(
    keystone_server: KeystoneServer, auth: KeystoneAuth, clock: Clock
) -> None:
    token = keystone_server.issue_token(keystone_server.member)
    before = keystone_server.requests_seen("GET", TOKENS)
    assert not any(auth.validate(token) for _ in range(5))
    assert keystone_server.requests_seen("GET", TOKENS) == before + 1
    clock.advance(REFUSED_SECONDS)
    assert auth.validate(token) is False
    assert keystone_server.requests_seen("GET", TOKENS) == before + 2


def test_zero_cache_seconds_asks_every_time(keystone_server: KeystoneServer, clock: Clock) -> None:
    auth = KeystoneAuth(settings_for(keystone_server, keystone__cache_seconds=0), clock)
    token = keystone_server.issue_token(keystone_server.admin)
    before = keystone_server.requests_seen("GET", TOKENS)
    assert auth.validate(token) and auth.validate(token)
    assert keystone_server.requests_seen("GET", TOKENS) == before + 2


def test_project_name(keystone_server: KeystoneServer, auth: KeystoneAuth, clock: Clock) -> None:
    demo_id = keystone_server.project_ids["demo"]
    path = f"/v3/projects/{demo_id}"
    before = keystone_server.requests_seen("GET", path)
    assert auth.project_name(demo_id) == "demo"
    assert auth.project_name(demo_id) == "demo"
    assert keystone_server.requests_seen("GET", path) == before + 1
    clock.advance(300)
    assert auth.project_name(demo_id) == "demo"
    assert keystone_server.requests_seen("GET", path) == before + 2

    unknown = "0" * 32
    before = keystone_server.requests_seen("GET", f"/v3/projects/{unknown}")
    assert auth.project_name(unknown) is None
    assert auth.project_name(unknown) is None
    assert keystone_server.requests_seen("GET", f"/v3/projects/{unknown}") == before + 1
    assert auth.project_name("") is None
    assert auth.project_name("../users") is None  # quoted: one path segment, unknown


def test_threads_share_one_validator(keystone_server: KeystoneServer, auth: KeystoneAuth) -> None:
    admin = keystone_server.issue_token(keystone_server.admin)
    member = keystone_server.issue_token(keystone_server.member)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                results.append(("admin", auth.validate(admin)))
                results.append(("member", auth.validate(member)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(results) == 160
    assert all(ok == (who == "admin") for who, ok in results)


def test_tokens_and_passwords_stay_out_of_the_log(
    keystone_server: KeystoneServer, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = KeystoneAuth(settings_for(keystone_server), clock)  # keystoneauth logs too
    admin = keystone_server.issue_token(keystone_server.admin)
    member = keystone_server.issue_token(keystone_server.member)
    auth.check()
    assert auth.validate(admin) and not auth.validate(member)
    assert caplog.records
    for secret in (admin, member, SERVICE_PASSWORD):
        assert secret not in caplog.text


def test_check_authenticates_the_service_user(keystone_server: KeystoneServer) -> None:
    KeystoneAuth(settings_for(keystone_server)).check()


def test_wrong_service_password(keystone_server: KeystoneServer) -> None:
    wrong = "not-the-password-42"
    auth = KeystoneAuth(settings_for(keystone_server, keystone__password=wrong))
    with pytest.raises(SettingsError, match="refused the service user 'rintik'") as checked:
        auth.check()
    token = keystone_server.issue_token(keystone_server.admin)
    with pytest.raises(ServiceUnavailable, match="refused rintik-lite's service") as validated:
        auth.validate(token)
    for message in (str(checked.value), str(validated.value)):
        assert wrong not in message and token not in message and "\n" not in message


def test_unreachable_keystone(keystone_server: KeystoneServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v3"  # nothing listens there
    auth = KeystoneAuth(settings_for(keystone_server, keystone__auth_url=closed))
    token = keystone_server.issue_token(keystone_server.admin)
    calls = [
        lambda: auth.validate(token),
        lambda: auth.project_name(keystone_server.project_ids["demo"]),
        auth.check,
    ]
    for call in calls:
        with pytest.raises(ServiceUnavailable) as raised:
            call()
        message = str(raised.value)
        assert message.startswith(f"Keystone at {closed} cannot be reached")
        assert message.endswith(": connection refused")
        assert SERVICE_PASSWORD not in message and token not in message
        assert "\n" not in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keystone__auth_url": ""}, "keystone.auth_url is empty"),
        ({"keystone__auth_url": "127.0.0.1:5000"}, "not an http"),
        ({"keystone__username": ""}, "keystone.username is empty"),
        ({"keystone__password": ""}, "keystone.password is empty"),
        ({"keystone__roles": []}, "keystone.roles is empty"),
    ],
)
def test_bad_settings(
    keystone_server: KeystoneServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        KeystoneAuth(settings_for(keystone_server, **changes))


def test_auth_url_without_v3(keystone_server: KeystoneServer) -> None:
    """Like keystoneauth's plugins, an auth_url without /v3 gets it added."""
    bare = keystone_server.url.removesuffix("/v3") + "/"
    plain = KeystoneAuth(settings_for(keystone_server, keystone__auth_url=bare))
    assert plain.validate(keystone_server.issue_token(keystone_server.admin)) is True
