"""Keystone v3 token validation and project names, for the API's `keystone` strategy.

rintik-lite authenticates as its own service user (`[keystone]` username, password, project)
with keystoneauth1's v3 Password plugin, then asks Keystone about each client token:
`GET /v3/auth/tokens` with the client's token in `X-Subject-Token` and the service token in
`X-Auth-Token` (added by the session). The service user needs a role that Keystone's policy
lets validate tokens (`admin` or `service`) and, for project names, `admin`.

Answers are cached, keyed by the SHA-256 of the token (never the token itself):

* an accepted token until min(its `expires_at`, now + `keystone.cache_seconds`), so a
  revoked token is refused at most `cache_seconds` later and an expired one at once;
* a refused token (unknown, expired, revoked or without an accepted role) for
  min(REFUSED_SECONDS, `cache_seconds`): a token never becomes valid again, and this keeps
  a client that retries a bad token from costing one Keystone call per request;
* a project's name (or its absence) for `keystone.cache_seconds`.

`keystone.cache_seconds = 0` turns every cache off. Each cache holds at most MAX_ENTRIES;
the oldest entry goes first. Failures that are not the token's fault (Keystone unreachable,
a 5xx, the service credentials refused) raise ServiceUnavailable, which the API answers
with 503; they are never cached. Tokens and passwords are never logged nor put in a
message: a log line names a token by the first 8 hex digits of its SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from rintik_lite import __version__
from rintik_lite.errors import ServiceUnavailable, SettingsError
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
REFUSED_SECONDS = 30
MAX_ENTRIES = 10_000
MAX_TOKEN_LENGTH = 8192

V = TypeVar("V")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    """The SHA-256 of a token, in hex: the cache key, and (its first 8 digits) its log name."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _plausible(token: str) -> bool:
    """False for what no Keystone token looks like (and what would break an HTTP header)."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable()


def _shown(url: str) -> str:
    """The URL for a message: without any user:password@ part."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _socket_error(exc: BaseException) -> str | None:
    """The operating system's words for the failure under `exc` ("connection refused")."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return None


class _ExpiringCache(Generic[V]):
    """Values valid until a given time, at most `max_entries` of them. Not locked: the
    caller holds its lock."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, tuple[datetime, V]] = OrderedDict()
        self._max_entries = max_entries

    def lookup(self, key: str, now: datetime) -> tuple[V] | None:
        """`(value,)` while it is valid, None when absent or stale (a value may be None)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, value = entry
        if now >= until:
            del self._entries[key]
            return None
        return (value,)

    def store(self, key: str, value: V, until: datetime, now: datetime) -> None:
        if until <= now:
            return
        self._entries[key] = (until, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class KeystoneAuth:
    """Validates client tokens and looks up project names with Keystone v3. Thread-safe."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _utcnow) -> None:
        auth_url = str(settings["keystone.auth_url"]).strip().rstrip("/")
        if not auth_url:
            raise SettingsError(
                "keystone.auth_url is empty: set it to Keystone's v3 URL, "
                "e.g. http://127.0.0.1:5000/v3"
            )
        if urlsplit(auth_url).scheme not in ("http", "https") or not urlsplit(auth_url).netloc:
            raise SettingsError(
                f"bad value for keystone.auth_url: {_shown(auth_url)!r} is not an http(s) URL"
            )
        for key in ("username", "password"):
            if not settings[f"keystone.{key}"]:
                raise SettingsError(f"keystone.{key} is empty: set the service user's {key}")
        self.roles = {str(role).casefold() for role in settings["keystone.roles"]}
        if not self.roles:
            raise SettingsError("keystone.roles is empty: no Keystone token could be accepted")
        self.cache_seconds = timedelta(seconds=int(settings["keystone.cache_seconds"]))
        self.refused_seconds = min(self.cache_seconds, timedelta(seconds=REFUSED_SECONDS))
        self.username = str(settings["keystone.username"])
        # keystoneauth's v3 plugins add /v3 to an auth_url that lacks it; so do we.
        self.auth_url = auth_url if auth_url.endswith("/v3") else f"{auth_url}/v3"
        self._clock = clock
        self._auth = v3.Password(
            auth_url=self.auth_url,
            username=self.username,
            password=str(settings["keystone.password"]),
            project_name=str(settings["keystone.project_name"]) or None,
            user_domain_name=str(settings["keystone.user_domain_name"]) or None,
            project_domain_name=str(settings["keystone.project_domain_name"]) or None,
            include_catalog=False,
        )
        self._session = ksa_session.Session(
            auth=self._auth,
            timeout=TIMEOUT_SECONDS,
            app_name="rintik-lite",
            app_version=__version__,
        )
        self._lock = threading.Lock()
        self._tokens: _ExpiringCache[bool] = _ExpiringCache()
        self._projects: _ExpiringCache[str | None] = _ExpiringCache()

    # -- the interface -------------------------------------------------------------------

    def validate(self, token: str) -> bool:
        """True when Keystone says the token is valid and it carries one of `keystone.roles`.

        An unknown, expired or revoked token is False. Raises ServiceUnavailable when
        Keystone cannot answer (or refuses our service credentials)."""
        if not _plausible(token):
            return False
        digest = token_digest(token)
        now = self._clock()
        with self._lock:
            cached = self._tokens.lookup(digest, now)
        if cached is not None:
            return cached[0]
        expires_at = self._ask_about_token(token, digest[:8])
        accepted = expires_at is not None
        if expires_at is not None:
            until = min(expires_at, now + self.cache_seconds)
        else:
            until = now + self.refused_seconds
        with self._lock:
            self._tokens.store(digest, accepted, until, now)
        return accepted

    def project_name(self, project_id: str) -> str | None:
        """The name of a Keystone project, None when Keystone does not know the id."""
        if not project_id or not _plausible(project_id):
            return None
        now = self._clock()
        with self._lock:
            cached = self._projects.lookup(project_id, now)
        if cached is not None:
            return cached[0]
        url = f"{self.auth_url}/projects/{quote(project_id, safe='')}"
        response = self._get(url, "look up a project")
        name: str | None
        if response.status_code == 200:
            name = self._json(response, "project").get("project", {}).get("name")
            if not isinstance(name, str):
                raise ServiceUnavailable(
                    f"Keystone at {_shown(self.auth_url)} answered a project without a name"
                )
        elif response.status_code == 404:
            name = None
        elif response.status_code in (401, 403):
            raise ServiceUnavailable(
                f"Keystone refuses to show projects to rintik-lite's service user "
                f"(HTTP {response.status_code}); give it the admin role"
            )
        else:
            raise self._bad_status(response.status_code, "look up a project")
        with self._lock:
            self._projects.store(project_id, name, now + self.cache_seconds, now)
        return name

    def check(self) -> None:
        """Authenticate the service user once (for `rintik-lite config check`).

        Raises SettingsError when Keystone refuses the credentials, ServiceUnavailable
        when it cannot be reached or answers with an error."""
        self._auth.invalidate()
        try:
            access = self._auth.get_access(self._session)
        except ksa_exceptions.Unauthorized:
            raise SettingsError(
                f"Keystone at {_shown(self.auth_url)} refused the service user "
                f"{self.username!r} (HTTP 401): check keystone.username, keystone.password, "
                "keystone.project_name and the two domain settings"
            ) from None
        except ksa_exceptions.ClientException as exc:
            raise self._unavailable(exc, "authenticate the service user") from None
        log.info(
            "Keystone at %s accepted service user %s (roles: %s)",
            _shown(self.auth_url),
            self.username,
            ", ".join(sorted(access.role_names or [])) or "none",
        )

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._tokens.clear()
            self._projects.clear()

    # -- talking to Keystone -------------------------------------------------------------

    def _ask_about_token(self, token: str, name: str) -> datetime | None:
        """The token's expiry when Keystone accepts it with one of our roles, else None."""
        response = self._get(
            f"{self.auth_url}/auth/tokens?nocatalog",
            "validate a token",
            headers={"X-Subject-Token": token},
        )
        status = response.status_code
        if status in (400, 404):
            log.debug("Keystone refused token %s… (HTTP %s)", name, status)
            return None
        if status in (401, 403):
            raise ServiceUnavailable(
                f"Keystone does not let rintik-lite's service user validate tokens "
                f"(HTTP {status}); give it the admin or service role"
            )
        if status != 200:
            raise self._bad_status(status, "validate a token")
        body = self._json(response, "token").get("token")
        try:
            if not isinstance(body, dict):
                raise TypeError
            expires_at = datetime.fromisoformat(str(body["expires_at"]))
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
            roles = {str(role["name"]).casefold() for role in body.get("roles") or []}
        except (KeyError, TypeError, ValueError):
            raise ServiceUnavailable(
                f"Keystone at {_shown(self.auth_url)} answered an unreadable token validation"
            ) from None
        if roles & self.roles:
            log.debug("Keystone accepted token %s… until %s", name, expires_at.isoformat())
            return expires_at
        log.debug("token %s… carries none of the roles %s", name, ", ".join(sorted(self.roles)))
        return None

    def _get(self, url: str, doing: str, headers: dict[str, str] | None = None) -> Any:
        """GET with the service token; HTTP errors are returned, connection errors raised
        as ServiceUnavailable."""
        try:
            return self._session.get(url, headers=headers or {}, raise_exc=False, log=False)
        except ksa_exceptions.ClientException as exc:
            raise self._unavailable(exc, doing) from None

    def _json(self, response: Any, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ServiceUnavailable(
                f"Keystone at {_shown(self.auth_url)} answered a {what} that is not JSON"
            )
        return body

    def _bad_status(self, status: int, doing: str) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Keystone at {_shown(self.auth_url)} answered HTTP {status} when asked to {doing}"
        )

    def _unavailable(self, exc: Exception, doing: str) -> ServiceUnavailable:
        """A one-line reason built from the exception's class (its text may carry URLs
        with query strings or server bodies; never a password, but we do not echo it)."""
        where = _shown(self.auth_url)
        if isinstance(exc, ksa_exceptions.Unauthorized):
            return ServiceUnavailable(
                f"Keystone at {where} refused rintik-lite's service credentials (HTTP 401); "
                "run `rintik-lite config check`"
            )
        if isinstance(exc, ksa_exceptions.HttpError):
            return self._bad_status(int(exc.http_status or 0), doing)
        if isinstance(exc, ksa_exceptions.ConnectTimeout):
            reason = f"no answer within {TIMEOUT_SECONDS:.0f} s"
        elif isinstance(exc, ksa_exceptions.SSLError):
            reason = "TLS failed"
        elif isinstance(exc, ksa_exceptions.ConnectionError):
            reason = _socket_error(exc) or "connection failed"
        else:
            reason = type(exc).__name__
        return ServiceUnavailable(f"Keystone at {where} cannot be reached to {doing}: {reason}")
