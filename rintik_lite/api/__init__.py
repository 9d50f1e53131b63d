"""The REST API: a Bottle application built by `create_app(settings)`.

Routes come from tables of `Operation` rows (almanach.OPERATIONS, ledger.OPERATIONS,
rintik.OPERATIONS under /api/, and the public ones below); the OpenAPI document at
/openapi.json is built from the same rows (`rintik.describe` adds what Field tables cannot
say: money and inventory bodies, enumerated path parameters).
Around every route, outermost first: JSON errors (and the body-size limit), the
X-Auth-Token check (skipped by the public routes /info, /healthz, /openapi.json), and a
database connection per request in the server's worker threads.

`rintik_lite.api.server.ApiServer` serves the app in a thread (cheroot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import bottle

from rintik_lite import __version__, services
from rintik_lite.api import almanach, ledger, openapi, rintik
from rintik_lite.api.auth import AuthPlugin, TokenCheck, TokenValidator, strategies
from rintik_lite.api.errors import ErrorPlugin, install_error_pages, json_text, reply
from rintik_lite.api.openapi import Operation
from rintik_lite.db import database
from rintik_lite.settings import Settings

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
    """Opens this thread's connection for the request and closes it after, when the request
    opened it (server threads); a connection the caller already holds is left open."""

    name = "rintik_database"
    api = 2

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            opened = database.is_closed()
            try:
                return callback(*args, **kwargs)
            finally:
                if opened and not database.is_closed():
                    database.close()

        return wrapper


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
