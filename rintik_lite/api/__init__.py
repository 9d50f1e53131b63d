"""The REST API: a Bottle application built by `create_app(settings)`.

Routes come from tables of `Operation` rows (almanach.OPERATIONS, ledger.OPERATIONS,
rintik.OPERATIONS under /api/, and the public ones below); the OpenAPI document at
/openapi.json is built from the same rows (`rintik.describe` adds what Field tables cannot
say: money and inventory bodies, enumerated path parameters).
Around every route, outermost first: JSON errors (and the body-size limit), the
X-Auth-Token check (skipped by the public routes /info, /healthz, /openapi.json), and the
database connection (one per server thread, kept open between requests).

`rintik_lite.api.server.ApiServer` serves the app in a thread (cheroot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import bottle
import peewee

from rintik_lite import __version__, services
from rintik_lite.api import almanach, ledger, openapi, rintik
from rintik_lite.api.auth import AuthPlugin, TokenCheck, TokenValidator, strategies
from rintik_lite.api.errors import ErrorPlugin, install_error_pages, json_text, reply
from rintik_lite.api.openapi import Operation
from rintik_lite.db import close_database, database, is_sqlite
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Health = Callable[[], dict[str, Any]]

PUBLIC_OPERATIONS = (
    Operation(
        "GET",
        "/info",
        "get_info",
        "Version, and counts of all and active resources (as Almanach).",
        response="Info",
        public=True,
        tag="service",
    ),
    Operation(
        "GET",
        "/healthz",
        "healthz",
        "Each thread alive, broker connected, database writable, age of the last event; "
        "200 when healthy, 503 otherwise.",
        response="Health",
        public=True,
        prefixes=("",),
        tag="service",
    ),
    Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This document.",
        response="OpenAPI",
        public=True,
        prefixes=("",),
        tag="service",
    ),
)


def operations() -> tuple[Operation, ...]:
    """Every endpoint of the API."""
    return PUBLIC_OPERATIONS + almanach.OPERATIONS + ledger.OPERATIONS + rintik.OPERATIONS


def openapi_document() -> dict[str, Any]:
    return rintik.describe(openapi.document(operations(), __version__))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_database() -> dict[str, Any]:
    """The default health check: the database answers."""
    services.ping()
    return {"healthy": True, "database": {"writable": True, "error": None}}


class ServiceRoutes:
    """Handlers of PUBLIC_OPERATIONS."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self.document = json_text(openapi_document())

    def get_info(self) -> str:
        counts = services.counts()
        return reply(
            {
                "info": {"version": __version__},
                "database": {
                    "all_entities": counts["all_entities"],
                    "active_entities": counts["active_entities"],
                },
            }
        )

    def healthz(self) -> str:
        try:
            doc = dict(self.health())
        except Exception as exc:  # an unhealthy answer, not an error
            doc = {"healthy": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        doc["healthy"] = bool(doc.get("healthy"))
        return reply(doc, 200 if doc["healthy"] else 503)

    def openapi(self) -> str:
        bottle.response.content_type = "application/json"
        return self.document


class DatabasePlugin:
    """Each thread keeps its connection open from one request to the next: connecting costs
    more than the queries of a request (SQLite's pragmas, PostgreSQL's handshake), and an
    idle connection holds no lock (reads run in autocommit, writes in their transaction).

    SQLite connections of server threads keep a small page cache (`API_CACHE_KIB`).
    A database error closes the thread's connection, so that the next request connects
    afresh; a read (GET, HEAD) that failed because the connection it reused was broken
    (PostgreSQL restarted, the session killed) is retried once on a new one. A rebound
    `database` (`open_database` of another URL) has connections of its own: the old ones
    are never used again."""

    name = "rintik_database"
    api = 2

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        retry = route.method in ("GET", "HEAD")

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            reused = not database.is_closed()
            try:
                try:
                    return callback(*args, **kwargs)
                except (peewee.OperationalError, peewee.InterfaceError):
                    broken = reused and _broken()
                    close_database()
                    if not (retry and broken):
                        raise
                log.info(
                    "%s %s: the database connection was lost; reconnected",
                    route.method,
                    route.rule,
                )
                reused = False
                return callback(*args, **kwargs)
            finally:
                if not reused:
                    _opened()

        return wrapper


#: SQLite's page cache of each server thread's connection, in KiB (SQLite's default; the
#: 32 MB of `db.connect` are for the collector's writes): reads of the API are served from
#: the OS's cache of the file, and eight threads keeping 32 MB each would take 256 MB.
API_CACHE_KIB = 2000


def _opened() -> None:
    """After a request that opened the thread's connection (the first query opens it, so
    that a route which needs no database, or reports it down, never fails to connect)."""
    if is_sqlite() and not database.is_closed():
        with suppress(peewee.PeeweeException):
            database.execute_sql(f"PRAGMA cache_size = -{API_CACHE_KIB}")


def _broken() -> bool:
    """The thread's connection was cut (psycopg2 marks it closed); SQLite's never are."""
    if database.is_closed():
        return True
    return bool(getattr(database.connection(), "closed", False))


def _install(app: bottle.Bottle, ops: Iterable[Operation], handlers: object) -> None:
    for op in ops:
        callback = getattr(handlers, op.handler)
        for path in op.paths():
            app.route(path, op.method, callback, name=None, public=op.public)


def create_app(
    settings: Settings,
    keystone: TokenValidator | None = None,
    clock: Clock = _utcnow,
    health: Health | None = None,
) -> bottle.Bottle:
    """The WSGI application. `keystone` is built from `[keystone]` when None and the auth
    strategy or `[keystone] auth_url` asks for it; `health` answers /healthz (default: the
    database answers)."""
    if keystone is None and ("keystone" in strategies(settings) or settings["keystone.auth_url"]):
        from rintik_lite.api.keystone import KeystoneAuth

        keystone = KeystoneAuth(settings)
    max_body = int(settings["api.max_body_bytes"])
    app = bottle.Bottle()
    install_error_pages(app)
    app.install(ErrorPlugin(max_body))
    app.install(AuthPlugin(TokenCheck(settings, keystone)))
    app.install(DatabasePlugin())
    _install(app, PUBLIC_OPERATIONS, ServiceRoutes(health or check_database))
    _install(
        app,
        almanach.OPERATIONS,
        almanach.AlmanachRoutes(clock, max_body, settings["ledger.metadata_whitelist"]),
    )
    _install(app, ledger.OPERATIONS, ledger.LedgerRoutes(clock, keystone))
    _install(app, rintik.OPERATIONS, rintik.RintikRoutes(settings, clock, max_body))
    return app


__all__ = ["create_app", "openapi_document", "operations"]
