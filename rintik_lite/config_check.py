"""`rintik-lite config check`: is this configuration ready for `rintik-lite run`?

Each check returns one `Check`: ok, warn (works, but fix it) or fail (`run` would not work),
with what is wrong and how to fix it. In order: the settings themselves, the permissions of
the configuration and SQLite files (they hold secrets and business data: 0600), the
database (reachable, schema version), the broker (reachable, the exchanges declared by the
services and with the durability we would declare them with, our queue), and Keystone when
`[keystone] auth_url` is set. Nothing is created or changed.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rintik_lite.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str


def run_checks(
    config: Path | None, environ: Mapping[str, str] | None = None, timeout: float = 5.0
) -> list[Check]:
    """Every check, in order; stops after the settings when they cannot be read."""
    from rintik_lite.errors import RintikError
    from rintik_lite.settings import load

    try:
        settings = load(config, environ)
    except RintikError as exc:
        return [Check("settings", FAIL, f"{exc}; fix it and run `rintik-lite config check` again")]
    return list(_checks(settings, timeout))


def _checks(settings: Settings, timeout: float) -> Iterator[Check]:
    yield _settings(settings)
    if settings.source is not None:
        yield _permissions("configuration file", settings.source, "it holds the secrets")
    yield from _database(settings)
    yield from _broker(settings, timeout)
    if settings["keystone.auth_url"]:
        yield _keystone(settings)


def _settings(settings: Settings) -> Check:
    from rintik_lite import invoices
    from rintik_lite.api.auth import strategies
    from rintik_lite.errors import RintikError
    from rintik_lite.scheduler import parse_close_at

    where = f"read from {settings.source}" if settings.source else "the embedded defaults"
    try:
        invoices.rules_from(settings, stored=False)  # the file's, whatever is bound
        parse_close_at(settings["scheduler.close_at"])
    except RintikError as exc:
        return Check("settings", FAIL, str(exc))
    names = strategies(settings)
    if "keystone" in names and not settings["keystone.auth_url"]:
        return Check(
            "settings",
            FAIL,
            "auth.strategy includes keystone but keystone.auth_url is empty: set it to "
            'Keystone\'s v3 URL, or use strategy = "private_key"',
        )
    if "private_key" in names and settings["auth.private_key"] in ("", "change-me"):
        return Check(
            "settings",
            WARN,
            f"{where}; auth.private_key is the default 'change-me': set it to a long random "
            "token, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    return Check("settings", OK, where)


def _permissions(what: str, path: Path, why: str) -> Check:
    name = f"permissions of {path}"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return Check(name, FAIL, f"cannot read the {what}: {exc.strerror}")
    if mode & 0o077:
        return Check(
            name,
            WARN,
            f"the {what} is mode {mode:04o}, readable by other users, and {why}: chmod 600 {path}",
        )
    return Check(name, OK, f"mode {mode:04o}")


def _database(settings: Settings) -> Iterator[Check]:
    import peewee

    from rintik_lite import db
    from rintik_lite.errors import RintikError

    url = settings["database.url"]
    shown = db.redact_url(url)
    path = db.sqlite_path(url)
    if db.in_memory(url):
        yield Check(
            "database",
            FAIL,
            f"{shown} is an in-memory database: `rintik-lite run` refuses it (its threads "
            "cannot share it, and it is lost at exit); give a file",
        )
        return
    if path is not None:
        if not path.exists():
            folder = path.parent.resolve()
            if not folder.is_dir():
                yield Check("database", FAIL, f"folder {folder} does not exist: create it")
            else:
                yield Check(
                    "database",
                    OK,
                    f"{shown}: no file yet; `rintik-lite run` creates it (mode 0600)",
                )
            return
        yield _permissions("SQLite database", path, "it is the business's ledger")
    try:
        db.open_database(url, settings["database.busy_timeout_ms"], migrate=False)
        version = db.current_version()
    except (RintikError, peewee.PeeweeException) as exc:
        yield Check("database", FAIL, f"{exc}; check [database] url")
        return
    finally:
        db.close_database()
    if version > db.SCHEMA_VERSION:
        yield Check(
            "database",
            FAIL,
            f"{shown}: schema version {version} is newer than this rintik-lite knows "
            f"({db.SCHEMA_VERSION}): upgrade rintik-lite",
        )
    elif version == 0:
        yield Check("database", OK, f"{shown}: empty; `rintik-lite run` creates the schema")
    elif version < db.SCHEMA_VERSION:
        yield Check(
            "database",
            WARN,
            f"{shown}: schema version {version}, this rintik-lite has {db.SCHEMA_VERSION}: "
            "`rintik-lite run` upgrades it at start-up (or run `rintik-lite db upgrade`); "
            "back it up first with `rintik-lite db backup`",
        )
    else:
        yield Check("database", OK, f"{shown}: schema version {version}")


def _broker(settings: Settings, timeout: float) -> Iterator[Check]:
    from kombu import Connection, Exchange, Queue

    from rintik_lite.db import redact_url

    url = settings["broker.url"]
    shown = redact_url(url)
    try:
        conn = Connection(url, connect_timeout=timeout)
        conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        yield Check(
            "broker",
            FAIL,
            f"cannot connect to {shown}: {exc}; set [broker] url to the cloud's RabbitMQ "
            "(the services' transport_url, with amqp:// instead of rabbit://)",
        )
        return
    with conn:
        yield Check("broker", OK, f"connected to {shown}")
        durable = settings["broker.durable_exchanges"]
        missing: list[str] = []
        for name in settings["broker.exchanges"]:
            try:
                with conn.channel() as channel:
                    Exchange(name, type="topic")(channel).declare(passive=True)
            except Exception:
                missing.append(name)
                continue
            try:  # exists: would our declaration be accepted? (same flags: a no-op)
                with conn.channel() as channel:
                    Exchange(name, type="topic", durable=durable, auto_delete=False)(
                        channel
                    ).declare()
            except Exception as exc:
                yield Check(
                    f"exchange {name}",
                    FAIL,
                    f"RabbitMQ refuses our declaration ({exc}): set [broker] durable_exchanges "
                    f"= {str(not durable).lower()} to match the cloud's amqp_durable_queues",
                )
        if missing:
            yield Check(
                "exchanges",
                WARN,
                f"{', '.join(missing)} not declared yet: the service has not sent a notification "
                "since RabbitMQ started, its [oslo_messaging_notifications] driver is not "
                "messagingv2, or its control_exchange has another name ([broker] exchanges). "
                "`rintik-lite run` declares them, so nothing is lost once it runs",
            )
        else:
            yield Check("exchanges", OK, ", ".join(settings["broker.exchanges"]))
        queue = settings["broker.queue"]
        try:
            with conn.channel() as channel:
                declared = Queue(queue, channel=channel).queue_declare(passive=True)
            yield Check("queue", OK, f"{queue}: {declared.message_count} messages waiting")
        except Exception:
            yield Check("queue", OK, f"{queue}: not declared yet; `rintik-lite run` declares it")


def _keystone(settings: Settings) -> Check:
    from rintik_lite.api.keystone import KeystoneAuth
    from rintik_lite.errors import RintikError

    try:
        KeystoneAuth(settings).check()
    except RintikError as exc:
        return Check("keystone", FAIL, str(exc))
    return Check(
        "keystone", OK, f"{settings['keystone.auth_url']} accepts {settings['keystone.username']}"
    )
