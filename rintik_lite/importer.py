"""An inventory of existing resources into the ledger: Rintik's `enable_billing` body, also
read from a file by `rintik-lite import FILE`.

The inventory is a JSON object with up to six lists (a missing list is empty); every item
has `tenant_id`, `start_date` (when the resource was created, ISO 8601) and:

| list           | id field      | other fields                                           |
|----------------|---------------|--------------------------------------------------------|
| `instances`    | `instance_id` | `flavor_id`, `name`                                    |
| `volumes`      | `volume_id`   | `volume_type_id`, `space_allocation_gb`, `volume_name` |
| `floating_ips` | `fip_id`      | `ip`                                                   |
| `routers`      | `router_id`   | `name` (list only routers with an external gateway)    |
| `snapshots`    | `snapshot_id` | `space_allocation_gb`, `name`                          |
| `images`       | `image_id`    | `space_allocation_gb`, `name`                          |

Each item becomes the notification its service sends to say "this resource exists": nova
`compute.instance.exists`, cinder `volume.exists` and `snapshot.exists`, neutron
`floatingip.exists` and `router.exists`, and glance `image.update` (glance has no exists
event). It is timed at the import and carries the creation time as `launched_at` /
`created_at`, and goes through the collector's code (`services.record_messages`, source
"import"): a resource the ledger does not know gets an open interval from its creation
time; one it knows is confirmed as it is (a changed attribute, such as a larger size,
splits its interval at the time of the import).

Idempotent: a message's id is a digest of what it says, not of when it was imported, so
importing the same inventory again stores nothing and changes nothing. All or nothing: an
item the ledger refuses (an id it holds as another resource type) fails the whole import.

Sizes are GB (a fraction is rounded up, as Rintik billed it). `billing_start`, when given,
moves earlier creation times up to it (Rintik moved them to the first day of the month):
the ledger then holds no usage, and no invoice, before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rintik_lite import services
from rintik_lite.db import write_transaction
from rintik_lite.errors import BadNotification, InvalidInput
from rintik_lite.ledger import notifications
from rintik_lite.ledger.notifications import GIB, format_time, parse_time

SOURCE = "import"
PUBLISHER = "rintik-lite.import"
MAX_TEXT = 255
MAX_GB = 2**31 - 1
FIRST_YEAR, LAST_YEAR = 1900, 9998
#: `start_date`: ISO 8601, a date alone (midnight) or with a time; no zone means UTC.
DATE_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
_DATE = re.compile(DATE_PATTERN, re.ASCII)
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/]")


@dataclass(frozen=True)
class Section:
    """One list of the inventory: its resource type, id field and other fields, each
    `id` (required), `text` (a string or null), `gb` (a number >= 0) or `type` (an id or
    null)."""

    entity_type: str
    id_field: str
    fields: Mapping[str, str]

    def field_kinds(self) -> dict[str, str]:
        """Every field of an item and its kind (`date` for `start_date`)."""
        return {"tenant_id": "id", self.id_field: "id", **self.fields, "start_date": "date"}


SECTIONS: Mapping[str, Section] = {
    "instances": Section("instance", "instance_id", {"flavor_id": "id", "name": "text"}),
    "volumes": Section(
        "volume",
        "volume_id",
        {"volume_type_id": "type", "space_allocation_gb": "gb", "volume_name": "text"},
    ),
    "floating_ips": Section("floating_ip", "fip_id", {"ip": "text"}),
    "routers": Section("router", "router_id", {"name": "text"}),
    "snapshots": Section("snapshot", "snapshot_id", {"space_allocation_gb": "gb", "name": "text"}),
    "images": Section("image", "image_id", {"space_allocation_gb": "gb", "name": "text"}),
}


# --- reading the inventory -----------------------------------------------------------------


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, not {_kind_of(value)}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{where} is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise InvalidInput(f"{where} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{where} is not valid Unicode text") from None
    return value


def _id(value: Any, where: str) -> str:
    text = _text(value, where)
    if not text:
        raise InvalidInput(f"{where} is empty")
    if _BAD_ID.search(text):
        raise InvalidInput(f"{where} contains a control character or a slash")
    return text


def _date(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        shown = repr(value[:60]) if isinstance(value, str) else _kind_of(value)
        raise InvalidInput(f"{where} is not an ISO 8601 date: {shown}")
    try:
        when = parse_time(value)
        if not FIRST_YEAR <= when.year <= LAST_YEAR:
            raise ValueError
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{where} is not a valid date between {FIRST_YEAR} and {LAST_YEAR}: {value[:60]!r}"
        ) from None
    return when


def _gb(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInput(f"{where} must be a number of GB, not {_kind_of(value)}")
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not amount.is_finite() or not 0 <= amount <= MAX_GB:
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidInput(f"{where} must be between 0 and {MAX_GB} GB") from None
    return amount


_READERS: Mapping[str, Callable[[Any, str], Any]] = {
    "id": _id,
    "text": _text,
    "type": _id,
    "gb": _gb,
    "date": _date,
}
_NULLABLE = frozenset({"text", "type"})


@dataclass(frozen=True)
class Item:
    """One resource of the inventory, checked."""

    section: str
    values: Mapping[str, Any]  # field -> str | None | Decimal | datetime


def read_inventory(doc: Any) -> list[Item]:
    """Check an inventory; InvalidInput names the field at fault (`volumes[2].volume_id`)."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"the inventory must be a JSON object, not {_kind_of(doc)}")
    for name in doc:
        if name not in SECTIONS:
            raise InvalidInput(f"unknown list {name[:60]!r}: expected {', '.join(SECTIONS)}")
    items: list[Item] = []
    for name, section in SECTIONS.items():
        entries = doc.get(name, [])
        if not isinstance(entries, list):
            raise InvalidInput(f"{name} must be an array, not {_kind_of(entries)}")
        kinds = section.field_kinds()
        for index, entry in enumerate(entries):
            where = f"{name}[{index}]"
            if not isinstance(entry, dict):
                raise InvalidInput(f"{where} must be an object, not {_kind_of(entry)}")
            for key in entry:
                if key not in kinds:
                    raise InvalidInput(f"unknown field {where}.{str(key)[:60]}")
            values: dict[str, Any] = {}
            for key, kind in kinds.items():
                if key not in entry:
                    raise InvalidInput(f"{where}.{key} is required")
                value = entry[key]
                if value is None and kind in _NULLABLE:
                    values[key] = None
                    continue
                if value is None:
                    raise InvalidInput(f"{where}.{key} must not be null")
                values[key] = _READERS[kind](value, f"{where}.{key}")
            items.append(Item(name, values))
    return items


# --- the notifications ---------------------------------------------------------------------


def _oslo_time(when: datetime) -> str:
    return format_time(when).rstrip("Z").replace("T", " ")


def _payload(item: Item, since: datetime) -> tuple[str, dict[str, Any]]:
    v = item.values
    created = format_time(since)
    if item.section == "instances":
        return "compute.instance.exists", {
            "instance_id": v["instance_id"],
            "tenant_id": v["tenant_id"],
            "display_name": v["name"],
            "instance_flavor_id": v["flavor_id"],
            "state": "active",
            "launched_at": created,
            "created_at": created,
        }
    if item.section == "volumes":
        return "volume.exists", {
            "volume_id": v["volume_id"],
            "tenant_id": v["tenant_id"],
            "display_name": v["volume_name"],
            "volume_type": v["volume_type_id"],
            "size": math.ceil(v["space_allocation_gb"]),
            "created_at": created,
            "launched_at": created,
        }
    if item.section == "snapshots":
        return "snapshot.exists", {
            "snapshot_id": v["snapshot_id"],
            "tenant_id": v["tenant_id"],
            "display_name": v["name"],
            "volume_size": math.ceil(v["space_allocation_gb"]),
            "created_at": created,
        }
    if item.section == "floating_ips":
        return "floatingip.exists", {
            "floatingip": {
                "id": v["fip_id"],
                "tenant_id": v["tenant_id"],
                "floating_ip_address": v["ip"],
                "created_at": created,
            }
        }
    if item.section == "routers":
        return "router.exists", {
            "router": {
                "id": v["router_id"],
                "tenant_id": v["tenant_id"],
                "name": v["name"],
                # Rintik's inventory lists only routers with an external gateway: billed.
                "external_gateway_info": {"listed_by": "import"},
                "created_at": created,
            }
        }
    return "image.update", {
        "id": v["image_id"],
        "owner": v["tenant_id"],
        "name": v["name"],
        "status": "active",
        "size": math.ceil(v["space_allocation_gb"] * GIB),
        "created_at": created,
    }


def messages(
    items: Sequence[Item], now: datetime, billing_start: datetime | None = None
) -> list[dict[str, Any]]:
    """The notifications that say the items exist, timed `now`; ids independent of `now`."""
    result = []
    for item in items:
        since = item.values["start_date"]
        if billing_start is not None and since < billing_start:
            since = billing_start
        event_type, payload = _payload(item, since)
        content = json.dumps([event_type, payload], sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:40]
        result.append(
            {
                "message_id": f"import-{digest}",
                "publisher_id": PUBLISHER,
                "event_type": event_type,
                "priority": "INFO",
                "payload": payload,
                "timestamp": _oslo_time(now),
            }
        )
    return result


# --- importing -----------------------------------------------------------------------------


def import_inventory(
    doc: Any,
    now: datetime,
    *,
    billing_start: datetime | None = None,
    metadata_whitelist: Sequence[str] = (),
) -> dict[str, int]:
    """Check the inventory, then record its notifications in one transaction.

    Returns counts: `resources` (items), `applied` (new to the ledger or confirmed) and
    `duplicate` (already imported). InvalidInput for a bad inventory, or when the ledger
    refuses an item (then nothing is recorded).
    """
    items = read_inventory(doc)
    docs = messages(items, now, billing_start)
    bodies = []
    for item, message in zip(items, docs, strict=True):
        body = json.dumps(message, sort_keys=True)
        try:
            notifications.observe(notifications.parse(body), metadata_whitelist)
        except BadNotification as exc:  # pragma: no cover - the payloads above are complete
            raise InvalidInput(f"{item.section}: {exc}") from None
        bodies.append(services.Incoming(body, SOURCE))
    with write_transaction():
        result = services.record_messages(bodies, now, metadata_whitelist)
        if result.quarantined:
            reasons = "; ".join(result.reasons[:3])
            raise InvalidInput(f"the ledger refused {result.quarantined} item(s): {reasons}")
    return {
        "resources": len(items),
        "applied": result.applied + result.ignored,
        "duplicate": result.duplicate,
    }
