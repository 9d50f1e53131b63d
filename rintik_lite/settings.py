"""Settings, declared once.

`SETTINGS` is the one table of every setting: section, key, default, type and help. The
configuration file (TOML), the environment and the README's settings table all derive from
it, and a test fails when one is undocumented.

Precedence, lowest first: the defaults below, the TOML file (`--config PATH` or
`RINTIK_CONFIG`), then environment variables `RINTIK_<SECTION>_<KEY>`. The names operators of
Almanach and Rintik already use are honoured too: `RABBITMQ_URL` and
`RINTIK_NOTIFICATION_URL` set `broker.url`, `RINTIK_NOTIFICATION_TOPICS` sets
`broker.topics` (a comma-separated list).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rintik_lite.errors import SettingsError


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    default: Any
    type: str  # str | int | float | bool | list | decimal | hhmm
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"RINTIK_{self.section.upper()}_{self.key.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database",
        "url",
        "sqlite:///rintik.db",
        "str",
        "Database URL: `sqlite:///path.db` (relative to the working directory; "
        "`sqlite:////abs/path.db` for an absolute path) or `postgresql://user@host/db`. "
        "Not an in-memory SQLite database: `run` refuses it (its threads cannot share one).",
    ),
    Setting(
        "database",
        "busy_timeout_ms",
        10000,
        "int",
        "SQLite only: how long a writer waits for another writer's lock, in milliseconds.",
    ),
    Setting(
        "broker",
        "url",
        "amqp://guest:guest@127.0.0.1:5672//",
        "str",
        "RabbitMQ URL of the cloud's notification bus (the `transport_url` of the services). "
        "On `amqp://` the collector reads the socket in 64 KB blocks and takes the messages "
        "whole in them without py-amqp's frame decoding; `amqps://` (TLS) and failover lists "
        "(`;`) use kombu's own transport.",
        secret=True,
    ),
    Setting(
        "broker",
        "queue",
        "rintik.notifications",
        "str",
        "Our own durable queue. Never ceilometer's `notifications.info`: competing for it "
        "would steal billable events from another consumer.",
    ),
    Setting(
        "broker",
        "exchanges",
        ["nova", "openstack", "neutron", "glance", "keystone"],
        "list",
        "Exchanges to bind (each service's `control_exchange`; cinder publishes on `openstack`).",
    ),
    Setting(
        "broker",
        "topics",
        ["notifications"],
        "list",
        "Notification topics; each is bound as `<topic>.info` on every exchange. Add "
        "`versioned_notifications` to read Nova's versioned notifications.",
    ),
    Setting(
        "broker",
        "durable_exchanges",
        False,
        "bool",
        "Declare the exchanges durable. Must match the cloud's "
        "`[oslo_messaging_rabbit] amqp_durable_queues` (default false) or RabbitMQ refuses "
        "the declaration (PRECONDITION_FAILED).",
    ),
    Setting(
        "broker",
        "batch_size",
        1000,
        "int",
        "Messages committed in one transaction before they are acknowledged.",
    ),
    Setting(
        "broker",
        "readers",
        1,
        "int",
        "Processes that read (decode and parse) each batch while the collector records the "
        "one before; 0 reads in the collector's own thread. Never more than one fewer than "
        "the cores (none on a single core).",
    ),
    Setting(
        "broker",
        "batch_seconds",
        0.5,
        "float",
        "Longest time a received message waits for its batch to be committed.",
    ),
    Setting(
        "broker",
        "reconnect_max_seconds",
        30.0,
        "float",
        "Longest wait between two reconnection attempts (the backoff doubles up to it).",
    ),
    Setting("api", "host", "127.0.0.1", "str", "Address the REST API listens on."),
    Setting("api", "port", 8182, "int", "Port the REST API listens on."),
    Setting(
        "auth",
        "strategy",
        "private_key",
        "str",
        "How `X-Auth-Token` is checked: `private_key`, `keystone`, or "
        "`private_key,keystone` (either).",
        choices=("private_key", "keystone", "private_key,keystone", "keystone,private_key"),
    ),
    Setting(
        "auth",
        "private_key",
        "change-me",
        "str",
        "The shared token accepted by the `private_key` strategy.",
        secret=True,
    ),
    Setting(
        "api",
        "threads",
        0,
        "int",
        "Worker threads of the API's WSGI server, each serving one request at a time; 0: "
        "1 on SQLite, 8 on PostgreSQL. On SQLite one is fastest: Python runs one thread at "
        "a time, and requests served side by side hand it to each other at every SQLite "
        "call and socket read. More let requests overlap while they wait: on PostgreSQL, "
        "on Keystone, on a client that sends its request slowly (it holds a thread up to "
        "10 s).",
    ),
    Setting(
        "api",
        "max_body_bytes",
        1048576,
        "int",
        "Largest request body accepted; a larger one gets 413.",
    ),
    Setting(
        "api",
        "metrics_require_token",
        True,
        "bool",
        "Ask for the token on `GET /metrics` too, as `X-Auth-Token` or as "
        "`Authorization: Bearer` (what Prometheus' `authorization` scrape option sends). "
        "Set false only where the API port is reachable by trusted hosts alone.",
    ),
    Setting(
        "keystone",
        "auth_url",
        "",
        "str",
        "Keystone v3 URL (e.g. `http://127.0.0.1:5000/v3`). Empty: Keystone is not used.",
    ),
    Setting("keystone", "username", "", "str", "Service user that validates tokens."),
    Setting("keystone", "password", "", "str", "Password of the service user.", secret=True),
    Setting("keystone", "project_name", "service", "str", "Project of the service user."),
    Setting("keystone", "user_domain_name", "Default", "str", "Domain of the service user."),
    Setting(
        "keystone", "project_domain_name", "Default", "str", "Domain of the service user's project."
    ),
    Setting(
        "keystone",
        "roles",
        ["admin"],
        "list",
        "A Keystone token is accepted only if it carries one of these roles.",
    ),
    Setting(
        "keystone",
        "cache_seconds",
        300,
        "int",
        "How long a validated token (and a looked-up project name) is trusted before "
        "asking Keystone again; never past the token's expiry.",
    ),
    Setting("billing", "currency", "USD", "str", "Currency of prices and invoices (ISO 4217)."),
    Setting(
        "billing",
        "rounding",
        "hour_ceil",
        "str",
        "`hour_ceil`: each line bills whole hours, rounded up; `exact`: seconds / 3600.",
        choices=("hour_ceil", "exact"),
    ),
    Setting(
        "billing",
        "decimal_places",
        2,
        "int",
        "Minor unit of the currency: lines and tax round half-up to this many places.",
    ),
    Setting("billing", "tax_percent", "0", "decimal", "Tax rate, in percent of the subtotal."),
    Setting("billing", "company_name", "", "str", "Printed at the top of HTML invoices."),
    Setting("billing", "company_address", "", "str", "Printed under the company name."),
    Setting(
        "scheduler",
        "enabled",
        True,
        "bool",
        "Close ended months from `rintik-lite run` (turn off if a systemd timer runs "
        "`rintik-lite invoice close` instead).",
    ),
    Setting(
        "scheduler",
        "close_at",
        "00:01",
        "hhmm",
        "UTC time of day, on the 1st of the month, at which the ended month is closed.",
    ),
    Setting(
        "ledger",
        "metadata_whitelist",
        [],
        "list",
        "Instance metadata keys copied into the ledger's `metadata` field.",
    ),
    Setting(
        "log",
        "level",
        "INFO",
        "str",
        "Log level when no `--logging` file is given.",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    Setting(
        "log",
        "format",
        "text",
        "str",
        "`text`: one readable line per record; `json`: one JSON object per line (time, "
        "level, logger, message), for journald or a log shipper. Ignored with `--logging`.",
        choices=("text", "json"),
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}

ALIASES: Mapping[str, str] = {
    "RABBITMQ_URL": "broker.url",
    "RINTIK_NOTIFICATION_URL": "broker.url",
    "RINTIK_NOTIFICATION_TOPICS": "broker.topics",
}


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    """Convert `value` (from TOML or a string from the environment) to the setting's type."""
    where = f"{setting.name} (from {origin})"
    from_env = isinstance(value, str) and origin.startswith("$")
    try:
        if setting.type == "str":
            if not isinstance(value, str):
                raise TypeError
            result: Any = value
        elif setting.type == "int":
            if from_env:
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            if value < 0:
                raise ValueError
            result = value
        elif setting.type == "float":
            if from_env:
                value = float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            if value < 0:
                raise ValueError
            result = float(value)
        elif setting.type == "decimal":
            result = Decimal(str(value))
            if not result.is_finite():
                raise ValueError
        elif setting.type == "hhmm":
            if not isinstance(value, str):
                raise TypeError
            hours, _, minutes = value.partition(":")
            if not (
                hours.isdigit()
                and minutes.isdigit()
                and len(minutes) == 2
                and int(hours) < 24
                and int(minutes) < 60
            ):
                raise ValueError
            result = value
        elif setting.type == "bool":
            if from_env:
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                value = lowered in ("1", "true", "yes", "on")
            if not isinstance(value, bool):
                raise TypeError
            result = value
        elif setting.type == "list":
            if from_env:
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError
            result = list(value)
        else:  # pragma: no cover - the table above is the only source of types
            raise AssertionError(setting.type)
    except (TypeError, ValueError, InvalidOperation):
        expected = {
            "hhmm": "a time of day HH:MM",
            "list": "a list of strings",
            "decimal": "a decimal number",
            "int": "a non-negative integer",
            "float": "a non-negative number",
        }
        raise SettingsError(
            f"bad value for {where}: {value!r} is not {expected.get(setting.type, setting.type)}"
        ) from None
    if setting.choices and result not in setting.choices:
        raise SettingsError(
            f"bad value for {where}: {result!r}; choose one of {', '.join(setting.choices)}"
        )
    return result


class Settings:
    """The values in force, read by name: `settings["broker.url"]`."""

    def __init__(self, values: Mapping[str, Any], source: Path | None = None) -> None:
        self._values = dict(values)
        self.source = source

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed; keys use `__` for the dot (`database__url=`)."""
        values = dict(self._values)
        for key, value in changes.items():
            name = key.replace("__", ".")
            if name not in _BY_NAME:
                raise SettingsError(f"unknown setting {name}")
            values[name] = _coerce(_BY_NAME[name], value, "code")
        return Settings(values, self.source)

    def as_dict(self, reveal_secrets: bool = False) -> dict[str, Any]:
        return {
            name: ("***" if _BY_NAME[name].secret and not reveal_secrets else value)
            for name, value in self._values.items()
        }


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings: defaults, then the TOML file, then the environment.

    `path` None means `$RINTIK_CONFIG`, and no file at all when that is unset too.
    Raises SettingsError naming the key at fault.
    """
    env = os.environ if environ is None else environ
    values = {s.name: _coerce(s, s.default, "default") for s in SETTINGS}
    source: Path | None = None
    if path is None and env.get("RINTIK_CONFIG"):
        path = env["RINTIK_CONFIG"]
    if path is not None:
        source = Path(path)
        try:
            with source.open("rb") as fh:
                document = tomllib.load(fh)
        except FileNotFoundError:
            raise SettingsError(f"configuration file {source} does not exist") from None
        except PermissionError:
            raise SettingsError(f"configuration file {source} cannot be read") from None
        except IsADirectoryError:
            raise SettingsError(f"configuration file {source} is a folder, not a file") from None
        except UnicodeDecodeError:
            raise SettingsError(f"configuration file {source} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"configuration file {source} is not valid TOML: {exc}") from None
        for section, table in document.items():
            if not isinstance(table, dict):
                raise SettingsError(f"unknown setting {section} in {source}: expected a [section]")
            for key, value in table.items():
                name = f"{section}.{key}"
                if name not in _BY_NAME:
                    raise SettingsError(f"unknown setting {name} in {source}")
                values[name] = _coerce(_BY_NAME[name], value, str(source))
    for alias, name in ALIASES.items():
        if env.get(alias):
            values[name] = _coerce(_BY_NAME[name], env[alias], f"${alias}")
    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = _coerce(setting, env[setting.env], f"${setting.env}")
    return Settings(values, source)


def defaults() -> Settings:
    """The embedded defaults, ignoring file and environment."""
    return Settings({s.name: _coerce(s, s.default, "default") for s in SETTINGS})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_toml() -> str:
    """A configuration file with every setting at its default, each with its help."""
    lines = [
        "# rintik-lite settings. Every key is shown with its default; delete what you keep.",
        "# Each can also be set by the environment variable named under it.",
    ]
    sections = list(dict.fromkeys(s.section for s in SETTINGS))
    for section in sections:
        lines += ["", f"[{section}]"]
        lines += _example_section([s for s in SETTINGS if s.section == section])
    return "\n".join(lines) + "\n"


def _example_section(settings: list[Setting]) -> list[str]:
    lines: list[str] = []
    for s in settings:
        words, line = s.help.split(), "#"
        for word in words:
            if len(line) + len(word) > 88:
                lines.append(line)
                line = "#"
            line += " " + word
        lines.append(line)
        lines.append(f"# env: {s.env}")
        lines.append(f"{s.key} = {_toml_value(s.default)}")
    return lines
