"""JSON errors, and the readers of user input that raise them.

Every error the API sends is `{"error": "..."}` naming the field or the id at fault, with
400 (bad input), 401 (no valid token), 404 (unknown id or path), 405, 413 (body too large)
or 503 (database or Keystone unreachable). A 500 is logged with its traceback and answered
with a fixed message: no input reaches one on purpose.

The readers (`read_body`, `read_fields`, `read_date`, `read_id`) check what a user sent
before anything touches the database: PostgreSQL refuses NUL characters, lone surrogates
and strings over a column's length, so those are 400s here rather than 500s there.
`Field` tables describe bodies and query strings once; the OpenAPI document is built from
the same tables.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bottle
import peewee

from rintik_lite.errors import InvalidInput, NotFound, RintikError, ServiceUnavailable

log = logging.getLogger(__name__)

JSON = "application/json"
MAX_ID = 255  # the ledger's id and name columns are VARCHAR(255)
MAX_TEXT = 255
MAX_ITEMS = 1000  # attachments, metadata entries
MAX_SIZE = 2**31 - 1  # GB
# Dates: Almanach's `%Y-%m-%d %H:%M:%S.%f` and ISO 8601 (`T` or space, optional seconds,
# fraction and zone; a date alone means midnight UTC). A time without a zone is UTC.
DATE_PATTERN = (
    r"^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"  # 1900 to 9998
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?$"
)
_DATE = re.compile(DATE_PATTERN, re.ASCII)
ID_PATTERN = r"^[^\u0000-\u001f\u007f/]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIRST_YEAR, LAST_YEAR = 1900, 9998


def json_text(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def reply(doc: Any, status: int = 200) -> str:
    """A JSON success body (the route returns it)."""
    bottle.response.status = status
    bottle.response.content_type = JSON
    return json_text(doc)


def empty(status: int) -> str:
    """An empty success body, as Almanach answers writes (201, 202, 200)."""
    bottle.response.status = status
    return ""


def error(status: int, message: str) -> bottle.HTTPResponse:
    """A JSON error response, to raise from a route (it bypasses the HTML error pages)."""
    return bottle.HTTPResponse(
        body=json_text({"error": message}), status=status, headers={"Content-Type": JSON}
    )


def bad_request(message: str) -> bottle.HTTPResponse:
    return error(400, message)


def not_found(message: str) -> bottle.HTTPResponse:
    return error(404, message)


# --- reading input -------------------------------------------------------------------------


def read_body(max_bytes: int) -> bytes:
    """The raw request body, refused with 413 past `max_bytes` (Content-Length or chunked)."""
    environ = bottle.request.environ
    stream = environ.get("wsgi.input")
    length = declared_length(max_bytes)
    if stream is None:
        return b""
    if length is not None:
        data = stream.read(length) if length else b""
        if len(data) < length:
            raise bad_request("request body is shorter than its Content-Length")
        return bytes(data)
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""  # no Content-Length, not chunked: no body (RFC 9112 6.3)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(65536, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise error(413, f"request body is larger than {max_bytes} bytes")
    return b"".join(chunks)


def declared_length(max_bytes: int) -> int | None:
    """The Content-Length, if any; 400 when unreadable, 413 when over `max_bytes`."""
    text = bottle.request.environ.get("CONTENT_LENGTH", "")
    if not text or not text.strip():
        return None
    if not text.strip().isdigit():
        raise bad_request("Content-Length is not a number")
    length = int(text)
    if length > max_bytes:
        raise error(413, f"request body is larger than {max_bytes} bytes")
    return length


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object; 400 naming what is wrong with it."""
    raw = read_body(max_bytes)
    if not raw.strip():
        raise bad_request("request body is missing: expected a JSON object")
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise bad_request(f"request body is not valid JSON: {reason}"[:300]) from None
    if not isinstance(doc, dict):
        raise bad_request(f"request body is JSON {_json_type(doc)}, not an object")
    return doc


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_text(value: str, where: str, limit: int) -> str:
    if len(value) > limit:
        raise bad_request(f"{where} is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{where} is not valid Unicode text") from None
    if "\x00" in value:
        raise bad_request(f"{where} contains a NUL character")
    return value


def read_id(value: Any, where: str) -> str:
    """An id (project, instance, volume, volume type): 1 to 255 printable characters."""
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a string, not {_json_type(value)}")
    if not value:
        raise bad_request(f"{where} is empty")
    _check_text(value, where, MAX_ID)
    if _CONTROL.search(value) or "/" in value:
        raise bad_request(f"{where} contains a control character or a slash")
    return value


def read_date(value: Any, where: str) -> datetime:
    """A date and time: Almanach's `%Y-%m-%d %H:%M:%S.%f` or ISO 8601; naive means UTC."""
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a date string, not {_json_type(value)}")
    text = value
    if not _DATE.fullmatch(text):
        raise bad_request(
            f"{where} is not a date: {value[:60]!r} (expected YYYY-MM-DD HH:MM:SS.ffffff "
            "or ISO 8601)"
        )
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
            raise ValueError
        result = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(
            f"{where} is not a valid date between {FIRST_YEAR} and {LAST_YEAR}: {value[:60]!r}"
        ) from None
    return result


@dataclass(frozen=True)
class Field:
    """One field of a body or query string: its kind, whether required, whether null is ok.

    Kinds: `id`, `text`, `date`, `size` (whole GB, a number or a string of digits), `ids`
    (a list of ids), `os` (`{os_type, distro, version}`), `metadata` (string to string).
    """

    kind: str
    required: bool = False
    nullable: bool = False
    description: str = ""
    min_length: int = 0  # for `text`


OS_FIELDS: Mapping[str, Field] = {
    "os_type": Field("text", required=True, nullable=True),
    "distro": Field("text", required=True, nullable=True),
    "version": Field("text", required=True, nullable=True),
}


def _read_size(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{where} must be a whole number of GB, not {_json_type(value)}")
    if not 0 <= value <= MAX_SIZE:
        raise bad_request(f"{where} must be between 0 and {MAX_SIZE}")
    return value


def _read_value(field: Field, value: Any, where: str) -> Any:
    if field.kind == "id":
        return read_id(value, where)
    if field.kind == "text":
        if not isinstance(value, str):
            raise bad_request(f"{where} must be a string, not {_json_type(value)}")
        if len(value) < field.min_length:
            raise bad_request(f"{where} is empty")
        return _check_text(value, where, MAX_TEXT)
    if field.kind == "date":
        return read_date(value, where)
    if field.kind == "size":
        return _read_size(value, where)
    if field.kind == "ids":
        if not isinstance(value, list):
            raise bad_request(f"{where} must be an array of ids, not {_json_type(value)}")
        if len(value) > MAX_ITEMS:
            raise bad_request(f"{where} has more than {MAX_ITEMS} items")
        return [read_id(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if field.kind == "os":
        if not isinstance(value, dict):
            raise bad_request(f"{where} must be an object, not {_json_type(value)}")
        return read_fields(value, OS_FIELDS, f"{where}.")
    if field.kind == "metadata":
        if not isinstance(value, dict):
            raise bad_request(f"{where} must be an object, not {_json_type(value)}")
        if len(value) > MAX_ITEMS:
            raise bad_request(f"{where} has more than {MAX_ITEMS} entries")
        result = {}
        for key, item in value.items():
            _check_text(key, f"{where} key {key[:40]!r}", MAX_TEXT)
            if not isinstance(item, str):
                raise bad_request(f"{where}.{key[:40]} must be a string, not {_json_type(item)}")
            result[key] = _check_text(item, f"{where}.{key[:40]}", MAX_TEXT)
        return result
    raise AssertionError(field.kind)  # pragma: no cover - the tables use the kinds above


def read_fields(
    doc: Mapping[str, Any], spec: Mapping[str, Field], prefix: str = ""
) -> dict[str, Any]:
    """Check `doc` against `spec`: unknown fields, missing ones, types. Absent optional
    fields are left out of the result; a null where allowed is kept as None."""
    for name in doc:
        if name not in spec:
            raise bad_request(f"unknown field {prefix}{name[:60]}")
    result: dict[str, Any] = {}
    for name, field in spec.items():
        where = f"{prefix}{name}"
        if name not in doc:
            if field.required:
                raise bad_request(f"{where} is required")
            continue
        value = doc[name]
        if value is None:
            if not field.nullable:
                raise bad_request(f"{where} must not be null")
            result[name] = None
            continue
        result[name] = _read_value(field, value, where)
    return result


def read_query(spec: Mapping[str, Field]) -> dict[str, Any]:
    """The query string's known parameters, checked like a body (unknown ones are ignored)."""
    query = bottle.request.query
    doc: dict[str, Any] = {}
    for name in spec:
        if name in query:
            value = query.getunicode(name)
            if value is None:
                raise bad_request(f"{name} is not valid UTF-8")
            doc[name] = value
    return read_fields(doc, spec)


# --- turning exceptions into JSON ----------------------------------------------------------


def _message(res: bottle.HTTPError) -> str:
    body = res.body
    if isinstance(body, str) and body:
        return body[:300]
    return str(res.status_line).partition(" ")[2] or "error"


def _handler(res: bottle.HTTPError) -> str:
    bottle.response.content_type = JSON
    if res.status_code >= 500:
        request = bottle.request
        log.error(
            "internal error on %s %s: %s",
            request.method,
            request.path,
            res.traceback or res.exception or res.body,
        )
        return json_text({"error": "internal server error; the cause is in the server log"})
    return json_text({"error": _message(res)})


def install_error_pages(app: bottle.Bottle) -> None:
    """JSON instead of bottle's HTML pages, for the errors bottle itself raises."""
    for code in (400, 401, 403, 404, 405, 413, 500, 503):
        app.error(code)(_handler)


class ErrorPlugin:
    """Outermost wrapper of every route: domain errors to 4xx/503, anything else to a
    logged 500. Also refuses a declared body over the limit before anything reads it."""

    name = "rintik_errors"
    api = 2

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        max_body_bytes = self.max_body_bytes

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                declared_length(max_body_bytes)
                return callback(*args, **kwargs)
            except bottle.HTTPResponse:
                raise
            except InvalidInput as exc:
                raise bad_request(str(exc)[:1000]) from None
            except NotFound as exc:
                raise not_found(str(exc)[:1000]) from None
            except ServiceUnavailable as exc:
                log.warning("%s %s: %s", bottle.request.method, bottle.request.path, exc)
                raise error(503, str(exc)[:1000]) from None
            except peewee.OperationalError as exc:
                log.warning("database error on %s: %s", bottle.request.path, exc)
                raise error(503, "the database cannot be reached or is busy") from None
            except RintikError as exc:
                raise bad_request(str(exc)[:1000]) from None
            except Exception:
                log.exception("internal error on %s %s", bottle.request.method, bottle.request.path)
                raise error(500, "internal server error; the cause is in the server log") from None

        return wrapper
