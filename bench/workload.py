"""What the benchmarks feed rintik-lite: notifications as the cloud sends them, and big ledgers.

`notifications(count, ...)` makes a day of the bus: creates, updates, resizes, deletes and
`exists` audits of instances, volumes, floating IPs, routers and images over N projects, in
publication order (a few messages published late, as from a slow service). Each message is
a template from the notification corpus (../shared/notifications: nova's legacy
`compute.instance.*`, cinder's `volume.*`, neutron's, glance's), with its ids, project,
flavor, size and times replaced, wrapped exactly as oslo.messaging's messagingv2 driver puts
it on the wire (the envelope of tests/conftest.py). Deterministic for a seed and a start.

`build_ledger(...)` fills the ledger tables (event, entity, interval) in bulk, without the
collector: each resource is a chain of intervals (resizes over the past two years), the last
one covering the invoice period to close; its entity row holds the fold state the ledger
would have (`LedgerState`), and each interval boundary an event with its observation, so
that a later notification about it folds exactly as after a real ingest. Event bodies are a
short placeholder (the ledger never reads them back): the indexes have their real size, the
file does not hold gigabytes of JSON. `set_prices` adds a price for everything the workloads
use, through `invoices.set_price`.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RINTIK_CORPUS", ROOT.parent / "shared" / "notifications"))

#: name, flavor id, vcpus, memory MB, root disk GB
FLAVORS = (
    ("m1.tiny", "1", 1, 512, 1),
    ("m1.small", "2", 1, 2048, 20),
    ("m1.medium", "3", 2, 4096, 40),
    ("m1.large", "4", 4, 8192, 80),
    ("m1.xlarge", "5", 8, 16384, 160),
)
VOLUME_TYPES = (("8c0a6f0e-0b5a-4f5e-9e51-2f1f3c6b0001", "ssd"),)
VOLUME_TYPES += (("8c0a6f0e-0b5a-4f5e-9e51-2f1f3c6b0002", "hdd"),)
KINDS = ("instance", "volume", "floating_ip", "router", "image")
KIND_WEIGHTS = (50, 30, 10, 5, 5)
#: what one step of the simulated day does, and how often
ACTIONS = ("create", "update", "resize", "exists", "delete", "noise")
ACTION_WEIGHTS = (22, 20, 8, 33, 10, 7)
NEUTRON_EVENTS = {
    "create.end": "create.end",
    "update": "update.end",
    "exists": "exists",
    "delete": "delete.end",
}
SERVICE = {
    "instance": "nova",
    "volume": "openstack",
    "floating_ip": "neutron",
    "router": "neutron",
    "image": "glance",
}

#: corpus file of each (kind, event) template
TEMPLATES = {
    ("instance", "create.start"): "nova/compute.instance.create.start__designate-sample.json",
    ("instance", "create.end"): "nova/compute.instance.create.end__ceilometer-test.json",
    ("instance", "update"): "nova/compute.instance.update__watcher-test.json",
    ("instance", "resize"): "nova/compute.instance.finish_resize.end__ceilometer-test.json",
    ("instance", "exists"): "nova/compute.instance.exists__ceilometer-test.json",
    ("instance", "delete"): "nova/compute.instance.delete.end__watcher-test.json",
    ("volume", "create.end"): "cinder/volume.create.end__searchlight-devstack.json",
    ("volume", "update"): "cinder/volume.attach.end__searchlight-devstack.json",
    ("volume", "resize"): "cinder/volume.resize.end__ceilometer-test-2012.json",
    ("volume", "exists"): "cinder/volume.exists__ceilometer-test-2012.json",
    ("volume", "delete"): "cinder/volume.delete.end__searchlight-devstack.json",
    ("floating_ip", "create.end"): "neutron/floatingip.create.end__searchlight-devstack.json",
    ("floating_ip", "update"): (
        "neutron/floatingip.update.end__searchlight-floatingip-associate-end.json"
    ),
    ("floating_ip", "exists"): "neutron/floatingip.exists__ceilometer-test.json",
    ("floating_ip", "delete"): "neutron/floatingip.delete.end__searchlight-devstack.json",
    ("router", "create.end"): "neutron/router.create.end__searchlight-devstack.json",
    ("router", "update"): "neutron/router.update.end__searchlight-router-gateway-set.json",
    ("router", "exists"): "neutron/router.exists__ceilometer-test.json",
    ("router", "delete"): "neutron/router.delete.end__searchlight-devstack.json",
    ("image", "create.end"): "glance/image.create__searchlight-devstack.json",
    ("image", "update"): "glance/image.update__searchlight-devstack.json",
    ("image", "delete"): "glance/image.delete__searchlight-devstack.json",
    ("noise", "port"): "neutron/port.create.end__searchlight-devstack.json",
    ("noise", "volume_type"): "cinder/volume.create.end__searchlight-devstack.json",
}


def stamp(at: datetime) -> str:
    """oslo's timestamp format: naive UTC with microseconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def envelope(message: dict[str, Any]) -> str:
    """The messagingv2 body: the message JSON-encoded as a string inside the envelope."""
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)})


def _load_templates() -> dict[tuple[str, str], str]:
    """Each corpus template as the flat inner message oslo's Notifier builds (listener-form
    captures get their ctxt back as `_context_*` keys, as rintik-lite's own reader does)."""
    from rintik_lite.ledger.notifications import decode, unwrap

    if not CORPUS.is_dir():
        raise SystemExit(f"the notification corpus is missing at {CORPUS} (set RINTIK_CORPUS)")
    loaded = {}
    for key, relative in TEMPLATES.items():
        message = unwrap(decode((CORPUS / relative).read_bytes()))
        message.setdefault("priority", "INFO")
        loaded[key] = json.dumps(message)
    return loaded


@dataclass
class Resource:
    """A billable resource of the simulated cloud, with what its notifications carry."""

    kind: str
    id: str
    project: str
    since: datetime
    attrs: dict[str, Any] = field(default_factory=dict)


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


def project_ids(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def new_resource(
    kind: str, project: str, since: datetime, ids: _Ids, rng: random.Random
) -> Resource:
    resource = Resource(kind, ids.uuid(), project, since)
    a = resource.attrs
    if kind == "instance":
        a["flavor"] = rng.choice(FLAVORS)
        a["name"] = f"vm-{rng.randrange(10**6)}"
        a["image"] = rng.choice(("cirros", "ubuntu", "debian"))
    elif kind == "volume":
        a["size"] = rng.choice((1, 10, 20, 50, 100))
        a["type"] = rng.choice(VOLUME_TYPES)[0]
        a["name"] = f"data-{rng.randrange(10**6)}"
        a["attached"] = []
    elif kind == "floating_ip":
        a["address"] = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    elif kind == "router":
        a["name"] = f"router-{rng.randrange(10**6)}"
        a["gateway"] = rng.random() < 0.8
    elif kind == "image":
        a["name"] = f"image-{rng.randrange(10**6)}"
        a["size"] = rng.randrange(10**7, 10**10)
    return resource


class Notifier:
    """Builds the inner message of each (resource, event) from its corpus template."""

    def __init__(self, rng: random.Random) -> None:
        self.templates = _load_templates()
        self.rng = rng
        self.ids = _Ids(rng)

    def _message(
        self, key: tuple[str, str], event_type: str, at: datetime, project: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        message: dict[str, Any] = json.loads(self.templates[key])  # a fresh copy
        message["event_type"] = event_type
        message["message_id"] = self.ids.uuid()
        message["_unique_id"] = self.ids.hex()
        message["timestamp"] = stamp(at)
        if project is not None:
            for name in ("_context_project_id", "_context_tenant_id", "_context_tenant"):
                if name in message:
                    message[name] = project
        return message, message["payload"]

    def instance(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        key = {"create.start": "create.start", "create.end": "create.end"}.get(event, event)
        event_type = {
            "resize": "compute.instance.finish_resize.end",
            "delete": "compute.instance.delete.end",
        }.get(event, f"compute.instance.{event}")
        message, p = self._message(("instance", key), event_type, at, r.project)
        message["publisher_id"] = f"compute.node-{self.rng.randrange(40):02d}"
        name, flavor_id, vcpus, memory, disk = r.attrs["flavor"]
        image = r.attrs["image"]
        if event == "resize":  # nova sets launched_at when the new flavor runs
            r.attrs["launched"] = at
        launched = r.attrs.get("launched", r.since)
        p.update(
            {
                "instance_id": r.id,
                "tenant_id": r.project,
                "display_name": r.attrs["name"],
                "instance_type": name,
                "instance_flavor_id": flavor_id,
                "vcpus": vcpus,
                "memory_mb": memory,
                "disk_gb": disk,
                "root_gb": disk,
                "created_at": stamp(r.since - timedelta(seconds=9)),
                "launched_at": stamp(launched) if event != "create.start" else "",
                "deleted_at": stamp(at) if event == "delete" else "",
                "terminated_at": stamp(at) if event == "delete" else "",
                "state": {"delete": "deleted", "create.start": "building"}.get(event, "active"),
                "image_ref_url": f"http://glance.example:9292/images/{image}",
                "image_meta": {"base_image_ref": image, "os_type": "linux"},
            }
        )
        if event == "exists":
            hour = at.replace(minute=0, second=0, microsecond=0)
            p["audit_period_beginning"] = stamp(hour - timedelta(hours=1))
            p["audit_period_ending"] = stamp(hour)
        return message

    def volume(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        event_type = {
            "create.end": "volume.create.end",
            "update": "volume.attach.end" if r.attrs["attached"] else "volume.detach.end",
            "resize": "volume.resize.end",
            "exists": "volume.exists",
            "delete": "volume.delete.end",
        }[event]
        message, p = self._message(("volume", event), event_type, at, r.project)
        message["publisher_id"] = "volume.cinder-volume-1@lvm#lvm"
        p.update(
            {
                "volume_id": r.id,
                "tenant_id": r.project,
                "display_name": r.attrs["name"],
                "size": r.attrs["size"],
                "volume_type": r.attrs["type"],
                "created_at": iso(r.since - timedelta(seconds=3)),
                "launched_at": iso(r.since),
                "status": "in-use" if r.attrs["attached"] else "available",
                "volume_attachment": [
                    {"instance_uuid": i, "attach_status": "attached"} for i in r.attrs["attached"]
                ],
            }
        )
        if event == "exists":
            day = at.replace(hour=0, minute=0, second=0, microsecond=0)
            p["audit_period_beginning"] = stamp(day - timedelta(days=1))
            p["audit_period_ending"] = stamp(day)
        return message

    def floating_ip(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        event_type = "floatingip." + NEUTRON_EVENTS[event]
        message, p = self._message(("floating_ip", event), event_type, at, r.project)
        message["publisher_id"] = "network.neutron-server-1"
        if event == "delete":
            p["floatingip_id"] = r.id
        else:
            p["floatingip"].update(
                {
                    "id": r.id,
                    "tenant_id": r.project,
                    "floating_ip_address": r.attrs["address"],
                    "created_at": iso(r.since),
                    "updated_at": iso(at),
                }
            )
        return message

    def router(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        event_type = "router." + NEUTRON_EVENTS[event]
        message, p = self._message(("router", event), event_type, at, r.project)
        message["publisher_id"] = "network.neutron-server-1"
        if event == "delete":
            p["router_id"] = r.id
        else:
            gateway = json.loads(self.templates[("router", "update")])["payload"]["router"]
            p["router"].update(
                {
                    "id": r.id,
                    "tenant_id": r.project,
                    "name": r.attrs["name"],
                    "external_gateway_info": gateway["external_gateway_info"]
                    if r.attrs["gateway"]
                    else None,
                    "created_at": iso(r.since),
                    "updated_at": iso(at),
                }
            )
        return message

    def image(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        event_type = {"create.end": "image.create", "update": "image.update"}.get(
            event, "image.delete"
        )
        message, p = self._message(("image", event), event_type, at, r.project)
        message["publisher_id"] = "image.glance-api-1"
        p.update(
            {
                "id": r.id,
                "owner": r.project,
                "name": r.attrs["name"],
                "size": r.attrs["size"],
                "created_at": iso(r.since),
                "updated_at": iso(at),
                "deleted_at": iso(at) if event == "delete" else None,
                "status": "deleted" if event == "delete" else "active",
            }
        )
        return message

    def noise(self, project: str, at: datetime) -> tuple[str, dict[str, Any]]:
        """A notification rintik-lite stores and ignores (a port created)."""
        message, p = self._message(("noise", "port"), "port.create.end", at, project)
        p["port"]["id"] = self.ids.uuid()
        p["port"]["tenant_id"] = project
        return "neutron", message

    def volume_type(self, type_id: str, name: str, at: datetime) -> dict[str, Any]:
        message, _ = self._message(("noise", "volume_type"), "volume_type.create", at, None)
        message["publisher_id"] = "volumeType"
        message["payload"] = {
            "volume_types": {
                "id": type_id,
                "name": name,
                "created_at": iso(at),
                "is_public": True,
                "extra_specs": {"volume_backend_name": name},
            }
        }
        return message

    def event(self, event: str, r: Resource, at: datetime) -> dict[str, Any]:
        build = getattr(self, r.kind)
        message: dict[str, Any] = build(event, r, at)
        return message


def notifications(
    count: int,
    *,
    projects: int = 1000,
    start: datetime,
    hours: float = 24.0,
    seed: int = 7,
    existing: Sequence[Resource] = (),
    preexisting: int | None = None,
    late_fraction: float = 0.02,
) -> list[tuple[str, dict[str, Any]]]:
    """`count` (service, inner message) pairs over `hours` from `start`, publication order.

    The cloud already runs `existing` resources (from a prefilled ledger) or, when there are
    none, `preexisting` (default count // 10) resources launched before `start` whose
    creates were never seen: their exists, updates, resizes and deletes arrive. New
    resources get created (create.start, then create.end for instances), updated, resized,
    audited and deleted. `late_fraction` of the messages are published up to 100 messages
    late (a slow service), so some events arrive after later ones of the same resource.
    """
    rng = random.Random(seed)
    notifier = Notifier(rng)
    tenants = project_ids(projects, seed)
    live: list[Resource] = list(existing)
    if not live:
        for _ in range(count // 10 if preexisting is None else preexisting):
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            since = start - timedelta(days=rng.uniform(1, 400))
            live.append(new_resource(kind, rng.choice(tenants), since, notifier.ids, rng))
    out: list[tuple[str, dict[str, Any]]] = []
    step = timedelta(hours=hours) / max(count, 1)
    at = start
    for type_id, name in VOLUME_TYPES:
        out.append(("openstack", notifier.volume_type(type_id, name, at)))
    while len(out) < count:
        at += step
        action = rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        if action == "noise" or (action != "create" and not live):
            project = rng.choice(tenants)
            out.append(notifier.noise(project, at))
            continue
        if action == "create":
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            r = new_resource(kind, rng.choice(tenants), at, notifier.ids, rng)
            if kind == "instance":
                out.append(("nova", notifier.event("create.start", r, at - timedelta(seconds=8))))
            out.append((SERVICE[kind], notifier.event("create.end", r, at)))
            live.append(r)
            continue
        index = rng.randrange(len(live))
        r = live[index]
        if action == "exists" and r.kind == "image":
            action = "update"
        if action == "resize":
            if r.kind == "instance":
                r.attrs["flavor"] = rng.choice(FLAVORS)
            elif r.kind == "volume":
                r.attrs["size"] += rng.choice((10, 20, 50))
            else:
                action = "update"
        if action == "update":
            if r.kind == "volume":
                attached = r.attrs["attached"]
                r.attrs["attached"] = [] if attached else [notifier.ids.uuid()]
            elif r.kind == "router":
                r.attrs["gateway"] = not r.attrs["gateway"] if rng.random() < 0.3 else True
            elif "name" in r.attrs:
                r.attrs["name"] = f"{r.attrs['name'].split('~')[0]}~{rng.randrange(100)}"
        out.append((SERVICE[r.kind], notifier.event(action, r, at)))
        if action == "delete":
            live[index] = live[-1]
            live.pop()
    out = out[:count]
    late = int(len(out) * late_fraction)
    for _ in range(late):  # a slow publisher: this message reaches the queue later
        i = rng.randrange(2, len(out) - 1)
        j = min(len(out) - 1, i + rng.randrange(1, 100))
        out.insert(j, out.pop(i))
    return out


def bodies(messages: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    return [envelope(message) for _, message in messages]


# --- prefilled ledgers ---------------------------------------------------------------------


@dataclass
class LedgerShape:
    """`projects` x `per_project` resources, each a chain of `chain` intervals; the last one
    starts before `period_start` and is still open (two thirds) or ended after
    `period_end` (one third): exactly one line per resource in that period."""

    projects: int
    per_project: int = 20
    chain: int = 5
    seed: int = 11

    @property
    def resources(self) -> int:
        return self.projects * self.per_project

    @property
    def intervals(self) -> int:
        return self.resources * self.chain


def _ledger_resources(
    shape: LedgerShape, period_start: datetime, period_end: datetime, now: datetime
) -> Iterator[tuple[Resource, list[tuple[datetime, datetime | None, dict[str, Any]]]]]:
    """Each resource and its intervals (start, end, attrs) in the ledger's attribute names."""
    rng = random.Random(shape.seed)
    ids = _Ids(rng)
    tenants = project_ids(shape.projects, shape.seed)
    kinds = ("instance", "volume", "floating_ip", "router", "image")
    weights = (50, 30, 10, 5, 5)
    for project in tenants:
        for _ in range(shape.per_project):
            kind = rng.choices(kinds, weights)[0]
            last_start = period_start - timedelta(days=rng.uniform(1, 60))
            gap = timedelta(days=rng.uniform(60, 150))
            first = last_start - gap * (shape.chain - 1)
            r = new_resource(kind, project, first, ids, rng)
            ended = rng.random() < 1 / 3
            end = period_end + (now - period_end) * rng.uniform(0.1, 0.9) if ended else None
            rows: list[tuple[datetime, datetime | None, dict[str, Any]]] = []
            for n in range(shape.chain):
                start = first + gap * n
                if kind == "instance":
                    r.attrs["flavor"] = FLAVORS[(n + rng.randrange(5)) % len(FLAVORS)]
                elif kind in ("volume", "image"):
                    r.attrs["size"] = (r.attrs["size"] + 10) if n else r.attrs["size"]
                elif kind == "floating_ip" and n:
                    r.attrs["address"] = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                elif kind == "router" and n:
                    r.attrs["name"] = f"router-{n}-{rng.randrange(10**4)}"
                stop = start + gap if n < shape.chain - 1 else end
                rows.append((start, stop, ledger_attrs(r)))
            r.since = first
            yield r, rows


def ledger_attrs(r: Resource) -> dict[str, Any]:
    """A resource's attributes as the ledger keeps them (what notifications.observe reads)."""
    a = r.attrs
    if r.kind == "instance":
        name, flavor_id, vcpus, memory, disk = a["flavor"]
        return {
            "flavor": name,
            "flavor_id": flavor_id,
            "vcpus": vcpus,
            "memory_mb": memory,
            "disk_gb": disk,
            "image_id": a["image"],
            "os_type": "linux",
            "name": a["name"],
        }
    if r.kind == "volume":
        return {
            "name": a["name"],
            "size": a["size"],
            "volume_type_id": a["type"],
            "attached_to": a["attached"],
        }
    if r.kind == "floating_ip":
        return {"address": a["address"], "name": a["address"]}
    if r.kind == "router":
        return {"name": a["name"], "gateway": True}
    return {"name": a["name"], "size": -(-a["size"] // 2**30), "size_bytes": a["size"]}


def _bulk_insert(table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Many rows at once through the bound database's own connection."""
    from rintik_lite.db import database, is_sqlite

    names = ", ".join(f'"{c}"' for c in columns)
    if is_sqlite():
        marks = ", ".join("?" for _ in columns)
        database.connection().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
    else:
        from psycopg2.extras import execute_values

        with database.connection().cursor() as cursor:
            execute_values(
                cursor, f'INSERT INTO "{table}" ({names}) VALUES %s', rows, page_size=2000
            )


PREFILL_KEYS = uuid.UUID("6f1c2a52-3b1e-4f0a-9a43-6b1d7f0c5e21")  # namespace of prefill ids


def build_ledger(
    shape: LedgerShape,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    with_events: bool = True,
) -> list[Resource]:
    """Fill the bound (migrated, empty) database; return the resources still running."""
    from rintik_lite import services
    from rintik_lite.db import database, is_sqlite
    from rintik_lite.ledger import intervals
    from rintik_lite.ledger.notifications import Observation
    from rintik_lite.models import Interval, VolumeType

    sqlite = is_sqlite()
    time_value = Interval.start.db_value
    json_value = Interval.attributes.db_value
    running: list[Resource] = []
    events: list[tuple[Any, ...]] = []
    entities: list[tuple[Any, ...]] = []
    rows_out: list[tuple[Any, ...]] = []
    received = time_value(now)

    def flush() -> None:
        with database.atomic():
            if events:
                _bulk_insert("event", list(services.EVENT_FIELDS), events)
            _bulk_insert(
                "entity",
                ["entity_id", "entity_type", "project_id", "deleted", "last_key", "state"],
                entities,
            )
            _bulk_insert(
                "interval",
                [
                    "entity_id",
                    "entity_type",
                    "project_id",
                    "start",
                    "end",
                    "last_event",
                    "name",
                    "attributes",
                ],
                rows_out,
            )
        events.clear()
        entities.clear()
        rows_out.clear()

    with database.atomic():
        for type_id, name in VOLUME_TYPES:
            VolumeType.insert(
                type_id=type_id, name=name, updated_at=period_start
            ).on_conflict_ignore().execute()
    for r, chain in _ledger_resources(shape, period_start, period_end, now):
        observations = []
        rows = []
        for start, end, attrs in chain:
            observations.append(Observation(r.kind, r.id, r.project, start, "exists", attrs, start))
            rows.append(intervals.Row(start, end, end or start, attrs))
        end = chain[-1][1]
        if end is not None:
            observations.append(Observation(r.kind, r.id, r.project, end, "delete", {}, None))
        else:
            running.append(r)
        state = intervals.LedgerState(
            entity_type=r.kind,
            entity_id=r.id,
            project_id=r.project,
            deleted=end is not None,
            attrs=chain[-1][2],
            rows=tuple(rows),
            last_key=intervals.sort_key(observations[-1]),
        )
        entities.append(
            (
                r.id,
                r.kind,
                r.project,
                state.deleted if not sqlite else int(state.deleted),
                state.last_key,
                json_value(state.to_json()),
            )
        )
        for row in rows:
            attrs = dict(row.attrs)
            rows_out.append(
                (
                    r.id,
                    r.kind,
                    r.project,
                    time_value(row.start),
                    time_value(row.end) if row.end else None,
                    time_value(row.last_event),
                    attrs.pop("name", None),
                    json_value(attrs),
                )
            )
        if with_events:
            for obs in observations:
                # A message id as oslo makes them (a random UUID, here derived from the
                # event): the event store's index on it is as scattered as a real history's.
                # Keys that sort together ("bench-prefill:...") left the batch's inserts a
                # region of their own, and understated what a long history costs.
                key = str(uuid.uuid5(PREFILL_KEYS, f"{r.id}:{obs.time.timestamp()}:{obs.action}"))
                events.append(
                    (
                        key,
                        key,
                        f"bench.{r.kind}.{obs.action}",
                        "bench.prefill",
                        "import",
                        time_value(obs.time),
                        received,
                        '{"bench": "prefilled: the ledger never reads event bodies back"}',
                        r.id,
                        json_value(obs.to_json()),
                    )
                )
        if len(rows_out) >= 20000:
            flush()
    flush()
    for table in ("event", "entity", "interval", "volume_type"):
        # statistics of what was filled; the invoice tables are left without any, as after
        # a real ingest (stale "empty" statistics would make PostgreSQL scan them)
        database.execute_sql(f'ANALYZE "{table}"')
    return running


def set_prices(now: datetime, currency: str = "USD") -> int:
    """A price for every flavor, volume type and other kind the workloads use."""
    from rintik_lite import invoices

    count = 0
    for name, _flavor_id, vcpus, _memory, _disk in FLAVORS:
        invoices.set_price(
            "flavor", name, f"{0.02 * vcpus:.2f}", currency=currency, now=now, monthly=None
        )
        count += 1
    for _type_id, name in VOLUME_TYPES:
        invoices.set_price("volume", name, "0.0002", currency=currency, now=now)
        count += 1
    for kind, hourly in (("floating_ip", "0.005"), ("router", "0.01"), ("image", "0.0001")):
        invoices.set_price(kind, "default", hourly, currency=currency, now=now)
        count += 1
    invoices.set_price("snapshot", "default", "0.0001", currency=currency, now=now)
    return count + 1
