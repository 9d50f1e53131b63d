"""The OpenAPI 3 document, built from the same tables that install the routes.

Each route module declares its endpoints as `Operation` rows (method, path, handler name,
body and query `Field` tables, response schema). `create_app` installs exactly those rows,
and `document()` describes exactly those rows, so the two cannot drift apart; a test checks
that every installed route is described.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rintik_lite.api.errors import (
    DATE_PATTERN,
    ID_PATTERN,
    MAX_ID,
    MAX_ITEMS,
    MAX_SIZE,
    MAX_TEXT,
    OS_FIELDS,
    Field,
)
from rintik_lite.ledger.notifications import ENTITY_TYPES


@dataclass(frozen=True)
class Operation:
    """One endpoint. `rule` is a bottle rule without prefix; each prefix serves it."""

    method: str
    rule: str
    handler: str
    summary: str
    status: int = 200
    response: str | None = None  # schema name of the success body; None: empty body
    body: Mapping[str, Field] | None = None
    query: Mapping[str, Field] = field(default_factory=dict)
    public: bool = False
    prefixes: tuple[str, ...] = ("/v1", "")
    tag: str = "almanach"
    description: str = ""
    # OpenAPI links from this operation's success: handler -> {parameter: expression}
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [prefix + self.rule for prefix in self.prefixes]


def openapi_path(rule: str) -> str:
    """`/entity/<entity_id>` -> `/entity/{entity_id}`."""
    return rule.replace("<", "{").replace(">", "}")


def path_parameters(rule: str) -> list[str]:
    return [part[1:-1] for part in rule.split("/") if part.startswith("<")]


# --- JSON schemas ---------------------------------------------------------------------------

_NO_NUL = "^[^\\u0000]*$"
ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID,
    "pattern": ID_PATTERN,
}
DATE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": DATE_PATTERN,
    "description": "`YYYY-MM-DD HH:MM:SS.ffffff` (Almanach) or ISO 8601; no zone means UTC.",
}


def field_schema(f: Field) -> dict[str, Any]:
    if f.kind == "id":
        schema: dict[str, Any] = dict(ID_SCHEMA)
    elif f.kind == "text":
        schema = {"type": "string", "maxLength": MAX_TEXT, "pattern": _NO_NUL}
        if f.min_length:
            schema["minLength"] = f.min_length
    elif f.kind == "date":
        schema = dict(DATE_SCHEMA)
    elif f.kind == "size":
        schema = {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_SIZE},
                {"type": "string", "pattern": "^[0-9]{1,10}$"},
            ],
            "description": "Whole GB.",
        }
    elif f.kind == "ids":
        schema = {"type": "array", "items": dict(ID_SCHEMA), "maxItems": MAX_ITEMS}
    elif f.kind == "os":
        schema = object_schema(OS_FIELDS)
    elif f.kind == "metadata":
        schema = {
            "type": "object",
            "maxProperties": MAX_ITEMS,
            "additionalProperties": {"type": "string", "maxLength": MAX_TEXT, "pattern": _NO_NUL},
        }
    else:  # pragma: no cover - the tables use the kinds above
        raise AssertionError(f.kind)
    if f.nullable:
        schema["nullable"] = True
    if f.description:
        schema["description"] = f.description
    return schema


def object_schema(fields: Mapping[str, Field]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in fields.items()},
        "additionalProperties": False,
    }
    required = [name for name, f in fields.items() if f.required]
    if required:
        schema["required"] = required
    return schema


def _nullable(type_: str, **more: Any) -> dict[str, Any]:
    return {"type": type_, "nullable": True, **more}


_TIME = {"type": "string", "format": "date-time"}
_STRINGS = {"type": "array", "items": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "Info": {
        "type": "object",
        "properties": {
            "info": {
                "type": "object",
                "properties": {"version": {"type": "string"}},
                "required": ["version"],
            },
            "database": {
                "type": "object",
                "properties": {
                    "all_entities": {"type": "integer", "minimum": 0},
                    "active_entities": {"type": "integer", "minimum": 0},
                },
                "required": ["all_entities", "active_entities"],
            },
        },
        "required": ["info", "database"],
    },
    "Health": {
        "type": "object",
        "properties": {
            "healthy": {"type": "boolean"},
            "threads": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "broker": {
                "type": "object",
                "properties": {
                    "connected": {"type": "boolean"},
                    "error": {"type": "string", "nullable": True},
                },
            },
            "database": {
                "type": "object",
                "properties": {
                    "writable": {"type": "boolean"},
                    "error": {"type": "string", "nullable": True},
                },
            },
            "last_event": {"type": "string", "format": "date-time", "nullable": True},
            "last_event_age_seconds": {"type": "number", "nullable": True},
            "pending_messages": {"type": "integer"},
            "scheduler": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "next_run": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
        },
        "required": ["healthy"],
        "description": "`healthy`, then one entry per check (threads, broker, database, "
        "age of the last event).",
    },
    "VolumeType": {
        "type": "object",
        "properties": {
            "volume_type_id": {"type": "string"},
            "volume_type_name": {"type": "string"},
        },
        "required": ["volume_type_id", "volume_type_name"],
    },
    "VolumeTypes": {"type": "array", "items": {"$ref": "#/components/schemas/VolumeType"}},
    "Entity": {
        "type": "object",
        "description": "One interval of a resource, in Almanach's field names. Instances add "
        "flavor, os and metadata; volumes add volume_type, size and attached_to; more "
        "ledger fields (flavor_id, vcpus, volume_type_id, ...) may follow.",
        "properties": {
            "entity_id": {"type": "string"},
            "entity_type": {"type": "string", "enum": list(ENTITY_TYPES)},
            "project_id": {"type": "string"},
            "start": _TIME,
            "end": {**_TIME, "nullable": True},
            "last_event": _TIME,
            "name": _nullable("string"),
            "flavor": _nullable("string"),
            "os": {
                "type": "object",
                "properties": {
                    "os_type": _nullable("string"),
                    "distro": _nullable("string"),
                    "version": _nullable("string"),
                },
            },
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "volume_type": _nullable("string"),
            "size": _nullable("integer"),
            "attached_to": _STRINGS,
        },
        "required": [
            "entity_id",
            "entity_type",
            "project_id",
            "start",
            "end",
            "last_event",
            "name",
        ],
    },
    "Entities": {"type": "array", "items": {"$ref": "#/components/schemas/Entity"}},
    "Project": {
        "type": "object",
        "properties": {
            "project_id": {"type": "string"},
            "project_name": _nullable("string"),
            "active": {
                "type": "object",
                "properties": {t: {"type": "integer", "minimum": 0} for t in ENTITY_TYPES},
                "required": list(ENTITY_TYPES),
            },
            "active_total": {"type": "integer", "minimum": 0},
        },
        "required": ["project_id", "project_name", "active", "active_total"],
    },
    "Projects": {"type": "array", "items": {"$ref": "#/components/schemas/Project"}},
    "UsageLine": {
        "type": "object",
        "properties": {
            "project_id": {"type": "string"},
            "project_name": _nullable("string"),
            "entity_type": {"type": "string", "enum": list(ENTITY_TYPES)},
            "entities": {"type": "integer", "minimum": 0},
            "intervals": {"type": "integer", "minimum": 0},
            "seconds": {"type": "number", "minimum": 0},
            "hours": {"type": "number", "minimum": 0},
            "gb_hours": _nullable("number", minimum=0),
        },
        "required": [
            "project_id",
            "project_name",
            "entity_type",
            "entities",
            "intervals",
            "seconds",
            "hours",
            "gb_hours",
        ],
    },
    "Usage": {
        "type": "object",
        "properties": {
            "start": _TIME,
            "end": _TIME,
            "lines": {"type": "array", "items": {"$ref": "#/components/schemas/UsageLine"}},
        },
        "required": ["start", "end", "lines"],
    },
    "History": {
        "type": "object",
        "properties": {
            "entity_id": {"type": "string"},
            "entity_type": {"type": "string", "enum": list(ENTITY_TYPES)},
            "project_id": _nullable("string"),
            "project_name": _nullable("string"),
            "deleted": {"type": "boolean"},
            "intervals": {"$ref": "#/components/schemas/Entities"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "event_type": {"type": "string"},
                        "event_time": {**_TIME, "nullable": True},
                        "received_at": _TIME,
                        "source": {"type": "string"},
                        "message_id": _nullable("string"),
                        "action": _nullable("string"),
                    },
                    "required": ["event_type", "event_time", "received_at", "source"],
                },
            },
        },
        "required": [
            "entity_id",
            "entity_type",
            "project_id",
            "project_name",
            "deleted",
            "intervals",
            "events",
        ],
    },
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
}

_ERRORS = {
    400: "Bad input; `error` names the field or the id at fault.",
    401: "Missing or invalid X-Auth-Token.",
    404: "Unknown id.",
    413: "Request body over `[api] max_body_bytes`.",
    503: "The database or Keystone cannot be reached.",
}
_STATUS = {200: "OK", 201: "Created", 202: "Accepted", 503: "Unhealthy"}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _operation_id(handler: str, prefix: str) -> str:
    return handler + ("_v1" if prefix == "/v1" else "")


def _operation(
    op: Operation, prefix: str, prefixes: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    head = op.method == "HEAD"
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": _STATUS.get(op.status, "OK")}
    if op.response and not head:
        success["content"] = _json(op.response)
    if op.links:
        success["links"] = {
            target: {
                "operationId": _operation_id(
                    target, prefix if prefix in prefixes[target] else prefixes[target][0]
                ),
                "parameters": dict(parameters),
            }
            for target, parameters in op.links.items()
        }
    responses[str(op.status)] = success
    for status, text in _ERRORS.items():
        if status == 401 and op.public:
            continue
        responses[str(status)] = {"description": text}
        if not head:
            responses[str(status)]["content"] = _json("Error")
    if op.handler == "healthz":  # 503 carries the health document, not an error
        responses["503"] = {"description": "Unhealthy", "content": _json("Health")}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": dict(ID_SCHEMA)}
        for name in path_parameters(op.rule)
    ]
    for name, f in op.query.items():
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": f.required,
                "schema": field_schema(f),
                **({"description": f.description} if f.description else {}),
            }
        )
    doc: dict[str, Any] = {
        "operationId": _operation_id(op.handler, prefix),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        doc["description"] = op.description
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": object_schema(op.body)}},
        }
    if op.public:
        doc["security"] = []
    return doc


def document(operations: Iterable[Operation], version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of these operations."""
    operations = list(operations)
    prefixes = {op.handler: op.prefixes for op in operations}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        for prefix in op.prefixes:
            path = openapi_path(prefix + op.rule)
            paths.setdefault(path, {})[op.method.lower()] = _operation(op, prefix, prefixes)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "rintik-lite",
            "version": version,
            "description": "Usage ledger of an OpenStack cloud. The Almanach v1 API is served "
            "both under /v1 and without the prefix; /v1/projects, /v1/usage and "
            "/v1/entity/{entity_id}/history are rintik-lite's own. Every endpoint but /info, "
            "/healthz and /openapi.json needs X-Auth-Token.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
            },
        },
        "security": [{"token": []}],
    }
