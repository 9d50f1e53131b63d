"""From a message body to what it says about a billable resource. Pure: no I/O.

`parse(body)` accepts the three shapes notifications come in:

* the oslo.messaging v2 envelope `{"oslo.version": "2.0", "oslo.message": "<json>"}`;
* the flat 1.0 form (the body *is* the message: `event_type`, `payload`, `_context_*`...);
* the listener form `{"ctxt", "publisher_id", "event_type", "payload", "metadata"}` that an
  oslo.messaging NotificationListener endpoint receives (how some captures are stored).

`observe(notification)` turns a notification into an `Observation` (a resource exists with
these attributes, or was deleted, at this time; or, from the API only, a correction of the
attributes of one closed interval), a `VolumeTypeSeen`, a `ProjectSeen`, or None
for event types that change nothing. It raises BadNotification naming the field at fault.

Event time comes from the notification, never from when we process it: the payload time that
says when the change happened (e.g. `launched_at` of a create, `deleted_at` of a delete,
`created_at`/`updated_at` of glance and neutron), else the message `timestamp`. See
`TIME_RULES` below for the table; the README repeats it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rintik_lite import jsontext
from rintik_lite.errors import BadNotification

ENTITY_TYPES = ("instance", "volume", "snapshot", "image", "floating_ip", "router")
GIB = 2**30


@dataclass(frozen=True)
class Notification:
    """The inner oslo.messaging message, whichever shape it came in."""

    event_type: str
    payload: Any
    publisher_id: str | None
    message_id: str | None
    timestamp: datetime | None  # None when absent or unreadable
    context: Mapping[str, Any] = field(default_factory=dict)  # the `_CONTEXT_FIELDS` sent


@dataclass(frozen=True)
class Observation:
    """What one event says about one resource at one instant.

    `action` is "exists" (with `attrs`, merged over what was known) or "delete".
    `since` is when the resource started to exist, if the event says (launched_at/created_at);
    it opens the first interval when the create itself was never seen.
    """

    entity_type: str
    entity_id: str
    project_id: str | None
    time: datetime
    action: str
    attrs: Mapping[str, Any]
    since: datetime | None = None
    until: datetime | None = None  # "correct" only: the closed interval [since, until)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "resource",
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "project_id": self.project_id,
            "time": format_time(self.time),
            "action": self.action,
            "attrs": dict(self.attrs),
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Observation:
        return cls(
            entity_type=doc["entity_type"],
            entity_id=doc["entity_id"],
            project_id=doc["project_id"],
            time=parse_time(doc["time"]),
            action=doc["action"],
            attrs=doc["attrs"],
            since=parse_time(doc["since"]) if doc.get("since") else None,
            until=parse_time(doc["until"]) if doc.get("until") else None,
        )


@dataclass(frozen=True)
class VolumeTypeSeen:
    """`volume_type.create`/`update`: a volume type id and its name."""

    type_id: str
    name: str
    time: datetime


@dataclass(frozen=True)
class ProjectSeen:
    """`identity.project.created|updated|deleted` (Keystone sends ids, rarely names)."""

    project_id: str
    action: str  # created | updated | deleted
    name: str | None
    time: datetime


Change = Observation | VolumeTypeSeen | ProjectSeen


# --- times ---------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime:
    """An ISO 8601 / oslo time string as an aware UTC datetime; naive times are UTC."""
    if isinstance(value, str):
        # Most times (ours, oslo's, nova's) are read as they are: Python 3.11's fromisoformat
        # takes a trailing "Z" too, and gives the same datetime as the path below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is UTC:
                return parsed
            if parsed.tzinfo is None:
                # Read again as UTC, several times faster than replace(); a date alone
                # ignores the offset, and takes replace().
                utc = datetime.fromisoformat(value + "+00:00")
                return utc if utc.tzinfo is UTC else parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    return _parse_time_general(value)


def _parse_time_general(value: Any) -> datetime:
    """`parse_time` for every input, without its fast path (tests/ledger/test_times.py
    checks that the fast path gives what this gives)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time") from None
    else:
        raise ValueError(f"{value!r} is not a date and time")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, microseconds only when present."""
    if value.tzinfo is UTC and value.year >= 1000:  # the usual case, without conversions
        return jsontext.utc_text(value) + "Z"
    return _format_time_general(value)


def _format_time_general(value: datetime) -> str:
    """`format_time` for every aware datetime, without its fast path."""
    value = value.astimezone(UTC)
    if value.year >= 1000:  # isoformat is several times faster than strftime: same text
        return value.replace(tzinfo=None).isoformat() + "Z"
    text = value.strftime("%Y-%m-%dT%H:%M:%S")  # %Y does not pad years before 1000
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


# --- decoding ------------------------------------------------------------------------------


def body_digest(body: bytes | str) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def decode(body: bytes | str) -> dict[str, Any]:
    """The body's JSON object; BadNotification when it is not one."""
    try:
        doc = jsontext.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadNotification(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadNotification(f"body is JSON {type(doc).__name__}, not an object")
    return doc


def unwrap(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The inner message dict of an envelope, flat or listener-form document."""
    if "oslo.message" in doc or "oslo.version" in doc:
        version = doc.get("oslo.version")
        if not isinstance(version, str) or version.split(".")[0] != "2":
            raise BadNotification(f"unsupported oslo.version {version!r} (expected 2.x)")
        inner = doc.get("oslo.message")
        if not isinstance(inner, str):
            raise BadNotification("oslo.message is not a JSON string")
        return decode(inner)
    metadata = doc.get("metadata")
    if "ctxt" in doc or (
        isinstance(metadata, dict) and "message_id" not in doc and "timestamp" not in doc
    ):
        ctxt = doc.get("ctxt") or {}
        metadata = metadata or {}
        if not isinstance(ctxt, dict) or not isinstance(metadata, dict):
            raise BadNotification("listener form: ctxt and metadata must be objects")
        message = {k: v for k, v in doc.items() if k not in ("ctxt", "metadata")}
        message.update({f"_context_{k}": v for k, v in ctxt.items()})
        for key in ("message_id", "timestamp"):
            if key in metadata:
                message[key] = metadata[key]
        return message
    return dict(doc)


# The request context keys that name the project (`_context_project`, in this order), and
# the message fields they come in: the only ones kept of the 20-odd sent.
_CONTEXT_PROJECT_KEYS = ("project_id", "tenant_id", "tenant", "project")
_CONTEXT_FIELDS = tuple((k, f"_context_{k}") for k in _CONTEXT_PROJECT_KEYS)


def parse(body: bytes | str) -> Notification:
    """Decode a message body (any of the three shapes) into a Notification."""
    message = unwrap(decode(body))
    event_type = message.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise BadNotification("event_type is missing or not a string")
    message_id = message.get("message_id")
    if message_id is not None and not isinstance(message_id, str):
        raise BadNotification("message_id is not a string")
    publisher = message.get("publisher_id")
    try:
        timestamp: datetime | None = parse_time(message.get("timestamp"))
    except ValueError:
        timestamp = None  # unreadable timestamps only matter where nothing better exists
    context = {k: message[f] for k, f in _CONTEXT_FIELDS if f in message}
    return Notification(
        event_type=event_type,
        payload=message.get("payload"),
        publisher_id=publisher if isinstance(publisher, str) else None,
        message_id=message_id or None,
        timestamp=timestamp,
        context=context,
    )


# --- reading payload fields ----------------------------------------------------------------


class _Fields:
    """Typed access to a payload dict; errors name the field (`payload.size`)."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise BadNotification(f"{where} is missing or not an object")
        self.data = data
        self.where = where

    def sub(self, key: str) -> _Fields:
        return _Fields(self.data.get(key), f"{self.where}.{key}")

    def has(self, key: str) -> bool:
        return self.data.get(key) not in (None, "")

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise BadNotification(f"{self.where}.{key} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadNotification(f"{self.where}.{key} is not a string: {value!r}"[:300])
        return str(value)

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise BadNotification(f"{self.where}.{key} is not a number: {value!r}")
        if isinstance(value, int):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            result = int(value.strip())
        else:
            raise BadNotification(f"{self.where}.{key} is not a whole number: {value!r}"[:300])
        if result < 0:
            raise BadNotification(f"{self.where}.{key} is negative: {value!r}")
        return result

    def time(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "" or value == "None":
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise BadNotification(
                f"{self.where}.{key} is not a date and time: {value!r}"[:300]
            ) from None

    def first_time(self, *keys: str) -> datetime | None:
        for key in keys:
            value = self.time(key)
            if value is not None:
                return value
        return None


def _event_time(n: Notification, *candidates: datetime | None) -> datetime:
    for candidate in candidates:
        if candidate is not None:
            return candidate
    if n.timestamp is not None:
        return n.timestamp
    raise BadNotification(
        "no event time: the payload has none and timestamp is missing or unreadable"
    )


def _context_project(n: Notification) -> str | None:
    for key in _CONTEXT_PROJECT_KEYS:
        value = n.context.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# --- nova ----------------------------------------------------------------------------------


def _image_id_from_url(url: str | None) -> str | None:
    if not url:
        return None
    return url.rstrip("/").rsplit("/", 1)[-1] or None


def _metadata(value: Any, whitelist: Sequence[str]) -> dict[str, str]:
    """Instance metadata (a dict, or nova's old list of {key, value}) filtered by whitelist."""
    items: dict[str, Any] = {}
    if isinstance(value, dict):
        items = value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and "key" in item:
                items[str(item["key"])] = item.get("value")
    return {k: str(v) for k, v in sorted(items.items()) if k in whitelist}


def _nova_legacy(n: Notification, whitelist: Sequence[str]) -> Observation | None:
    p = _Fields(n.payload, "payload")
    suffix = n.event_type[len("compute.instance.") :]
    instance_id = p.text("instance_id", required=True)
    assert instance_id is not None
    state = p.text("state")
    launched = p.time("launched_at")
    created = p.time("created_at")
    deleted = p.first_time("deleted_at", "terminated_at")
    image_meta = p.data.get("image_meta") if isinstance(p.data.get("image_meta"), dict) else {}
    image = _Fields(image_meta, "payload.image_meta")
    attrs = {
        "flavor": p.text("instance_type"),
        "flavor_id": p.text("instance_flavor_id"),
        "vcpus": p.integer("vcpus"),
        "memory_mb": p.integer("memory_mb"),
        "disk_gb": p.integer("disk_gb") if p.has("disk_gb") else p.integer("root_gb"),
        "image_id": image.text("base_image_ref") or _image_id_from_url(p.text("image_ref_url")),
        "os_type": image.text("os_type") or _os_type(p.text("os_type")),
        "os_distro": image.text("os_distro"),
        "os_version": image.text("os_version"),
        "name": p.text("display_name"),
        "metadata": _metadata(p.data.get("metadata"), whitelist) if "metadata" in p.data else None,
    }
    return _instance_observation(
        n,
        suffix,
        instance_id,
        p.text("tenant_id"),
        state,
        attrs,
        launched,
        created,
        deleted,
        p.time("audit_period_ending"),
    )


def _os_type(value: str | None) -> str | None:
    return None if value in (None, "None") else value


def _nova_versioned(n: Notification, whitelist: Sequence[str]) -> Observation | None:
    outer = _Fields(n.payload, "payload")
    p = outer.sub("nova_object.data")
    suffix = n.event_type[len("instance.") :]
    instance_id = p.text("uuid", required=True)
    assert instance_id is not None
    flavor_doc = p.data.get("flavor")
    flavor = (
        _Fields(flavor_doc, "payload.flavor").sub("nova_object.data")
        if isinstance(flavor_doc, dict)
        else _Fields({}, "payload.flavor")
    )
    attrs = {
        "flavor": flavor.text("name"),
        "flavor_id": flavor.text("flavorid"),
        "vcpus": flavor.integer("vcpus"),
        "memory_mb": flavor.integer("memory_mb"),
        "disk_gb": flavor.integer("root_gb"),
        "image_id": p.text("image_uuid"),
        "os_type": _os_type(p.text("os_type")),
        "name": p.text("display_name"),
        "metadata": _metadata(p.data.get("metadata"), whitelist) if "metadata" in p.data else None,
    }
    audit = p.data.get("audit_period")
    audit_end = (
        _Fields(audit, "payload.audit_period").sub("nova_object.data").time("audit_period_ending")
        if isinstance(audit, dict)
        else None
    )
    return _instance_observation(
        n,
        suffix.replace("_", "."),
        instance_id,
        p.text("tenant_id"),
        p.text("state"),
        attrs,
        p.time("launched_at"),
        p.time("created_at"),
        p.first_time("deleted_at", "terminated_at"),
        p.time("updated_at") or audit_end,
    )


# nova event suffixes (legacy `compute.instance.X`, versioned `instance.X` with _ as .)
_NOVA_CREATE = {"create.end"}
_NOVA_DELETE = {"delete.end"}
_NOVA_CHANGE = {
    "resize.confirm.end",
    "finish.resize.end",
    "finish_resize.end",
    "resize.finish.end",
    "rebuild.end",
}
_NOVA_REVERT = {"resize.revert.end"}
_NOVA_STATE = {"update", "exists"}


def _instance_observation(
    n: Notification,
    suffix: str,
    instance_id: str,
    tenant: str | None,
    state: str | None,
    attrs: dict[str, Any],
    launched: datetime | None,
    created: datetime | None,
    deleted: datetime | None,
    fallback: datetime | None,
) -> Observation | None:
    """Instance rules. Times: create -> launched_at; delete -> deleted_at/terminated_at;
    resize and rebuild -> launched_at (nova resets it when the new flavor or image runs);
    revert, update, exists -> the message timestamp, else `fallback` (updated_at or the
    audit period's end, for captures stored without their timestamp)."""
    since = launched  # an instance is billed from the moment it first ran
    if suffix in _NOVA_DELETE or (suffix in _NOVA_STATE and (state == "deleted" or deleted)):
        if suffix in _NOVA_DELETE or deleted:
            time = _event_time(n, deleted)
        else:
            time = n.timestamp or _event_time(n, fallback)
        return Observation("instance", instance_id, tenant, time, "delete", _clean(attrs), since)
    if launched is None:
        return None  # never ran (building, scheduling, error): nothing to bill, still stored
    if suffix in _NOVA_CREATE:
        time = _event_time(n, launched, created)
    elif suffix in _NOVA_CHANGE:
        time = _event_time(n, launched)  # nova sets launched_at when the new flavor/image runs
    elif suffix in _NOVA_REVERT or suffix in _NOVA_STATE:
        time = n.timestamp or _event_time(n, fallback)
    else:  # pragma: no cover - dispatch only sends the suffixes above
        return None
    if tenant is None:
        raise BadNotification("payload.tenant_id is missing")
    return Observation("instance", instance_id, tenant, time, "exists", _clean(attrs), since)


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unknown (None) attributes: they never override what is already known."""
    return {k: v for k, v in attrs.items() if v is not None}


# --- cinder --------------------------------------------------------------------------------


def _attached_to(p: _Fields) -> list[str] | None:
    attachments = p.data.get("volume_attachment")
    if isinstance(attachments, list):
        ids = []
        for item in attachments:
            if not isinstance(item, dict):
                raise BadNotification("payload.volume_attachment items must be objects")
            if item.get("attach_status", "attached") in ("detached", "deleted"):
                continue
            server = item.get("instance_uuid") or item.get("server_id")
            if isinstance(server, str) and server:
                ids.append(server)
        return sorted(set(ids))
    if attachments is not None:
        raise BadNotification("payload.volume_attachment is not a list")
    if p.text("instance_uuid"):
        return [str(p.text("instance_uuid"))]
    if p.text("status") == "available":
        return []
    return None


def _cinder_volume(n: Notification) -> Observation | None:
    p = _Fields(n.payload, "payload")
    action = n.event_type[len("volume.") :]
    volume_id = p.text("volume_id", required=True)
    assert volume_id is not None
    since = p.first_time("launched_at", "created_at")
    attrs = _clean(
        {
            "name": p.text("display_name") or p.text("name"),
            "size": p.integer("size"),
            "volume_type_id": p.text("volume_type") or p.text("volume_type_id"),
            "attached_to": _attached_to(p),
        }
    )
    tenant = p.text("tenant_id") or p.text("project_id") or _context_project(n)
    if action == "delete.end":
        return Observation("volume", volume_id, tenant, _event_time(n), "delete", attrs, since)
    if tenant is None:
        raise BadNotification("payload.tenant_id is missing")
    time = _event_time(n, since) if action == "create.end" else _event_time(n)
    return Observation("volume", volume_id, tenant, time, "exists", attrs, since)


def _cinder_snapshot(n: Notification) -> Observation | None:
    p = _Fields(n.payload, "payload")
    action = n.event_type[len("snapshot.") :]
    snapshot_id = p.text("snapshot_id", required=True)
    assert snapshot_id is not None
    since = p.time("created_at")
    attrs = _clean(
        {
            "name": p.text("display_name") or p.text("name"),
            "size": p.integer("volume_size"),
            "volume_id": p.text("volume_id"),
        }
    )
    tenant = p.text("tenant_id") or p.text("project_id") or _context_project(n)
    if action == "delete.end":
        return Observation("snapshot", snapshot_id, tenant, _event_time(n), "delete", attrs, since)
    if tenant is None:
        raise BadNotification("payload.tenant_id is missing")
    time = _event_time(n, since) if action == "create.end" else _event_time(n)
    return Observation("snapshot", snapshot_id, tenant, time, "exists", attrs, since)


def _cinder_volume_type(n: Notification) -> VolumeTypeSeen:
    p = _Fields(n.payload, "payload").sub("volume_types")
    type_id = p.text("id", required=True)
    name = p.text("name", required=True)
    assert type_id is not None and name is not None
    return VolumeTypeSeen(type_id, name, _event_time(n, p.first_time("updated_at", "created_at")))


# --- neutron -------------------------------------------------------------------------------


def _neutron(n: Notification, kind: str) -> Observation:
    entity_type = "floating_ip" if kind == "floatingip" else "router"
    p = _Fields(n.payload, "payload")
    if n.event_type.endswith(".delete.end"):
        entity_id = (
            p.text(f"{kind}_id") or p.sub(kind).text("id")
            if (p.has(f"{kind}_id") or isinstance(p.data.get(kind), dict))
            else None
        )
        if not entity_id:
            raise BadNotification(f"payload.{kind}_id is missing")
        return Observation(
            entity_type, entity_id, _context_project(n), _event_time(n), "delete", {}
        )
    r = p.sub(kind)
    entity_id = r.text("id", required=True)
    assert entity_id is not None
    tenant = r.text("tenant_id") or r.text("project_id") or _context_project(n)
    if tenant is None:
        raise BadNotification(f"payload.{kind}.tenant_id is missing")
    if kind == "floatingip":
        attrs = _clean(
            {"address": r.text("floating_ip_address"), "name": r.text("floating_ip_address")}
        )
    else:
        gateway = r.data.get("external_gateway_info")
        if gateway is not None and not isinstance(gateway, dict):
            raise BadNotification("payload.router.external_gateway_info is not an object")
        attrs = _clean({"name": r.text("name"), "gateway": bool(gateway)})
    created = r.time("created_at")
    time = _event_time(n, created if n.event_type.endswith("create.end") else r.time("updated_at"))
    return Observation(entity_type, entity_id, tenant, time, "exists", attrs, created)


# --- glance --------------------------------------------------------------------------------


def _glance(n: Notification) -> Observation:
    p = _Fields(n.payload, "payload")
    image_id = p.text("id", required=True)
    assert image_id is not None
    tenant = p.text("owner") or _context_project(n)
    size_bytes = p.integer("size")
    attrs = _clean(
        {
            "name": p.text("name"),
            "size": None if size_bytes is None else math.ceil(size_bytes / GIB),
            "size_bytes": size_bytes,
        }
    )
    created = p.time("created_at")
    if n.event_type == "image.delete":
        return Observation(
            "image",
            image_id,
            tenant,
            _event_time(n, p.time("deleted_at")),
            "delete",
            attrs,
            created,
        )
    if tenant is None:
        raise BadNotification("payload.owner is missing")
    time = _event_time(n, created if n.event_type == "image.create" else p.time("updated_at"))
    return Observation("image", image_id, tenant, time, "exists", attrs, created)


# --- keystone ------------------------------------------------------------------------------


def _keystone_project(n: Notification) -> ProjectSeen:
    p = _Fields(n.payload, "payload")
    target = p.data.get("target") if isinstance(p.data.get("target"), dict) else {}
    project_id = p.text("resource_info") or _Fields(target, "payload.target").text("id")
    if not project_id:
        raise BadNotification("payload.resource_info is missing")
    if project_id.startswith("openstack:"):
        project_id = project_id[len("openstack:") :]
    name = _Fields(target, "payload.target").text("name")
    action = n.event_type.rsplit(".", 1)[-1]
    return ProjectSeen(project_id, action, name, _event_time(n, p.time("eventTime")))


# --- corrections (the API's edit of a closed interval) -------------------------------------

CORRECTION_EVENT = "rintik.instance.correct"


def _correction(n: Notification) -> Observation:
    """`rintik.instance.correct`: what the Almanach API's `PUT /entity/instance/<id>?start=&end=`
    records. Never sent by OpenStack; its time is when the correction was made."""
    p = _Fields(n.payload, "payload")
    instance_id = p.text("instance_id", required=True)
    start, end = p.time("start"), p.time("end")
    if instance_id is None or start is None or end is None:
        raise BadNotification("payload.start and payload.end are required")
    if end <= start:
        raise BadNotification("payload.end must be after payload.start")
    image_meta = p.data.get("image_meta") if isinstance(p.data.get("image_meta"), dict) else {}
    image = _Fields(image_meta, "payload.image_meta")
    attrs = _clean(
        {
            "name": p.text("display_name"),
            "flavor": p.text("instance_type"),
            "flavor_id": p.text("instance_flavor_id"),
            "os_type": image.text("os_type"),
            "os_distro": image.text("os_distro"),
            "os_version": image.text("os_version"),
            "metadata": p.data.get("metadata")
            if isinstance(p.data.get("metadata"), dict)
            else None,
        }
    )
    return Observation("instance", instance_id, None, _event_time(n), "correct", attrs, start, end)


# --- dispatch ------------------------------------------------------------------------------

Handler = Callable[[Notification, Sequence[str]], Change | None]


def _handlers() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for suffix in (
        "create.end",
        "delete.end",
        "resize.confirm.end",
        "finish_resize.end",
        "resize.revert.end",
        "rebuild.end",
        "update",
        "exists",
    ):
        table[f"compute.instance.{suffix}"] = _nova_legacy
    for name in (
        "create.end",
        "delete.end",
        "resize_confirm.end",
        "resize_finish.end",
        "resize_revert.end",
        "rebuild.end",
        "update",
        "exists",
    ):
        table[f"instance.{name}"] = _nova_versioned
    for action in (
        "create.end",
        "delete.end",
        "resize.end",
        "attach.end",
        "detach.end",
        "update.end",
        "retype",
        "exists",
    ):
        table[f"volume.{action}"] = lambda n, _w: _cinder_volume(n)
    for action in ("create.end", "delete.end", "update.end", "exists"):
        table[f"snapshot.{action}"] = lambda n, _w: _cinder_snapshot(n)
    for action in ("create", "update"):
        table[f"volume_type.{action}"] = lambda n, _w: _cinder_volume_type(n)
    for kind in ("floatingip", "router"):
        for action in ("create.end", "update.end", "delete.end", "exists"):
            table[f"{kind}.{action}"] = (lambda k: lambda n, _w: _neutron(n, k))(kind)
    for action in ("create", "upload", "activate", "update", "delete"):
        table[f"image.{action}"] = lambda n, _w: _glance(n)
    for action in ("created", "updated", "deleted"):
        table[f"identity.project.{action}"] = lambda n, _w: _keystone_project(n)
    table[CORRECTION_EVENT] = lambda n, _w: _correction(n)
    return table


HANDLERS: dict[str, Handler] = _handlers()
HANDLED_EVENT_TYPES = frozenset(HANDLERS)


def observe(n: Notification, metadata_whitelist: Sequence[str] = ()) -> Change | None:
    """What a notification changes, or None for event types that change nothing."""
    handler = HANDLERS.get(n.event_type)
    if handler is None:
        return None
    return handler(n, metadata_whitelist)
