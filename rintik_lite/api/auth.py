"""The `X-Auth-Token` check, as a bottle plugin on every route but the public ones.

`[auth] strategy` names one or two ways to accept a token, tried in this order:

* `private_key`: the token equals `[auth] private_key`, compared in constant time;
* `keystone`: Keystone v3 accepts it with one of `[keystone] roles` (KeystoneAuth, in
  rintik_lite/api/keystone.py, caches the answer).

A missing or refused token gets 401 with a JSON body; Keystone unreachable gets 503. The
token itself is never logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, Protocol

import bottle

from rintik_lite.api.errors import error
from rintik_lite.errors import SettingsError
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

HEADER = "X-Auth-Token"


class TokenValidator(Protocol):
    """What the API needs from Keystone (rintik_lite.api.keystone.KeystoneAuth)."""

    def validate(self, token: str) -> bool: ...

    def project_name(self, project_id: str) -> str | None: ...


def strategies(settings: Settings) -> list[str]:
    return [s.strip() for s in str(settings["auth.strategy"]).split(",") if s.strip()]


def _raw(text: str) -> bytes:
    """The bytes a client sent: WSGI hands header values over decoded as latin-1."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


class TokenCheck:
    """Accepts a token by the configured strategies."""

    def __init__(self, settings: Settings, keystone: TokenValidator | None = None) -> None:
        names = strategies(settings)
        unknown = [n for n in names if n not in ("private_key", "keystone")]
        if unknown or not names:
            raise SettingsError(f"bad value for auth.strategy: {settings['auth.strategy']!r}")
        self.private_key: bytes | None = None
        if "private_key" in names:
            self.private_key = str(settings["auth.private_key"]).encode("utf-8")
            if not self.private_key:
                raise SettingsError("auth.private_key is empty: set a long random token")
            if settings["auth.private_key"] == "change-me":
                log.warning("auth.private_key is the default 'change-me': set a random token")
        self.keystone = keystone if "keystone" in names else None
        if "keystone" in names and keystone is None:
            raise SettingsError("auth.strategy includes keystone but Keystone is not set up")

    def accepts(self, token: str | None) -> bool:
        """True when one strategy accepts the token; ServiceUnavailable when the private key
        refused it and Keystone cannot be reached."""
        if not token:
            return False
        if self.private_key is not None and hmac.compare_digest(_raw(token), self.private_key):
            return True
        if self.keystone is not None:
            return self.keystone.validate(token)
        return False


class AuthPlugin:
    """Wraps every route whose config does not say `public=True`."""

    name = "rintik_auth"
    api = 2

    def __init__(self, check: TokenCheck) -> None:
        self.check = check

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        if route.config.get("public"):
            return callback
        check = self.check

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = bottle.request
            token = request.environ.get("HTTP_X_AUTH_TOKEN")
            if not check.accepts(token):
                log.info(
                    "refused %s %s from %s: %s",
                    request.method,
                    request.path,
                    request.remote_addr or "?",
                    "invalid X-Auth-Token" if token else "no X-Auth-Token",
                )
                raise error(401, f"missing or invalid {HEADER} header")
            return callback(*args, **kwargs)

        return wrapper
