"""The queries Almanach lacked, under /v1, and the ledger reads the Almanach routes need.

* `GET /v1/projects`: every project the ledger knows, with its active resources per type;
* `GET /v1/entity/<id>/history`: a resource's intervals and every event that shaped them;
* `GET /v1/usage?start=&end=[&project_id=]`: hours (and GB-hours for sized resources)
  summed per project and resource type over a window; an interval still open counts up to
  now, never into the future.

Project names come from Keystone (cached by KeystoneAuth) when it is set up, else from the
names Keystone's notifications carried (the `project` table), else null.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import peewee

from rintik_lite import services
from rintik_lite.api.auth import TokenValidator
from rintik_lite.api.errors import Field, not_found, read_id, read_query, reply
from rintik_lite.api.openapi import Operation
from rintik_lite.db import write_transaction
from rintik_lite.errors import InvalidInput
from rintik_lite.ledger.notifications import ENTITY_TYPES, format_time
from rintik_lite.models import Entity, Event, Interval, Project, VolumeType
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

SIZED = ("volume", "snapshot", "image")  # their `size` is in GB: usage adds GB-hours

# --- reads shared with the Almanach routes -----------------------------------------------


def find_entity(entity_id: str, entity_type: str) -> Entity:
    """The ledger's resource of this id and type; 404 when there is none."""
    row: Entity | None = Entity.get_or_none(Entity.entity_id == entity_id)
    if row is None or row.entity_type != entity_type:
        raise not_found(f"{entity_type} {entity_id} is not in the ledger")
    return row


def open_interval(entity_id: str) -> Interval | None:
    row: Interval | None = (
        Interval.select()
        .where((Interval.entity_id == entity_id) & Interval.end.is_null())
        .order_by(Interval.start.desc())
        .first()
    )
    return row


def closed_intervals(entity_id: str) -> list[Interval]:
    """The closed intervals of one resource, oldest first."""
    return list(
        Interval.select()
        .where((Interval.entity_id == entity_id) & Interval.end.is_null(False))
        .order_by(Interval.start)
    )


def first_start(entity_id: str) -> datetime | None:
    row = (
        Interval.select(Interval.start)
        .where(Interval.entity_id == entity_id)
        .order_by(Interval.start)
        .first()
    )
    return None if row is None else row.start  # type: ignore[no-any-return]


def has_intervals(entity_id: str) -> bool:
    return bool(Interval.select().where(Interval.entity_id == entity_id).exists())


def volume_type_dict(row: VolumeType) -> dict[str, str]:
    return {"volume_type_id": row.type_id, "volume_type_name": row.name}


def volume_types() -> list[dict[str, str]]:
    return [volume_type_dict(r) for r in VolumeType.select().order_by(VolumeType.type_id)]


def volume_type(type_id: str) -> dict[str, str] | None:
    row = VolumeType.get_or_none(VolumeType.type_id == type_id)
    return None if row is None else volume_type_dict(row)


def delete_volume_type(type_id: str) -> bool:
    """Forget a volume type's name (Almanach's DELETE); False when it was unknown."""
    with write_transaction():
        return bool(VolumeType.delete().where(VolumeType.type_id == type_id).execute())


# --- project names -------------------------------------------------------------------------


def project_names(
    project_ids: Iterable[str], keystone: TokenValidator | None
) -> dict[str, str | None]:
    """Each project's name: Keystone's when it is set up and knows it, else the registry's."""
    ids = sorted(set(project_ids))
    registry: dict[str, str | None] = {}
    for chunk_start in range(0, len(ids), services.CHUNK):
        chunk = ids[chunk_start : chunk_start + services.CHUNK]
        query = Project.select(Project.project_id, Project.name).where(
            Project.project_id.in_(chunk)
        )
        registry.update({p.project_id: p.name for p in query})
    names: dict[str, str | None] = {}
    for project_id in ids:
        name = None
        if keystone is not None:
            try:
                name = keystone.project_name(project_id)
            except Exception as exc:  # a name is a nicety: never fail a listing for it
                log.warning("cannot look up project names in Keystone: %s", exc)
                keystone = None  # Keystone is down: do not wait on it once per project
        names[project_id] = name or registry.get(project_id)
    return names


def keystone_for_names(settings: Settings) -> TokenValidator | None:
    """A Keystone client for project names when `[keystone] auth_url` is set, else None."""
    if not settings["keystone.auth_url"]:
        return None
    from rintik_lite.api.keystone import KeystoneAuth

    return KeystoneAuth(settings)


# --- the extra queries ---------------------------------------------------------------------


def projects(keystone: TokenValidator | None) -> list[dict[str, Any]]:
    active: dict[str, dict[str, int]] = {}
    query = (
        Interval.select(
            Interval.project_id,
            Interval.entity_type,
            peewee.fn.COUNT(peewee.fn.DISTINCT(Interval.entity_id)),
        )
        .where(Interval.end.is_null())
        .group_by(Interval.project_id, Interval.entity_type)
        .tuples()
    )
    for project_id, entity_type, count in query:
        active.setdefault(project_id, {})[entity_type] = int(count)
    ids = set(active)
    ids.update(p for (p,) in Interval.select(Interval.project_id).distinct().tuples())
    ids.update(
        p
        for (p,) in Entity.select(Entity.project_id)
        .where(Entity.project_id.is_null(False))
        .distinct()
        .tuples()
    )
    ids.update(p for (p,) in Project.select(Project.project_id).tuples())
    names = project_names(ids, keystone)
    result = []
    for project_id in sorted(ids):
        counts = {t: active.get(project_id, {}).get(t, 0) for t in ENTITY_TYPES}
        result.append(
            {
                "project_id": project_id,
                "project_name": names.get(project_id),
                "active": counts,
                "active_total": sum(counts.values()),
            }
        )
    return result


def history(entity_id: str, keystone: TokenValidator | None) -> dict[str, Any] | None:
    entity = Entity.get_or_none(Entity.entity_id == entity_id)
    if entity is None:
        return None
    events = (
        Event.select(
            Event.event_type,
            Event.event_time,
            Event.received_at,
            Event.source,
            Event.message_id,
            Event.observation,
        )
        .where(Event.entity_id == entity_id)
        .order_by(Event.event_time, Event.id)
    )
    project = entity.project_id
    return {
        "entity_id": entity.entity_id,
        "entity_type": entity.entity_type,
        "project_id": project,
        "project_name": project_names([project], keystone).get(project) if project else None,
        "deleted": bool(entity.deleted),
        "intervals": services.entity_rows(entity_id),
        "events": [
            {
                "event_type": e.event_type,
                "event_time": format_time(e.event_time) if e.event_time else None,
                "received_at": format_time(e.received_at),
                "source": e.source,
                "message_id": e.message_id,
                "action": (e.observation or {}).get("action"),
            }
            for e in events
        ],
    }


@dataclass
class _Sum:
    entities: set[str]
    intervals: int = 0
    seconds: float = 0.0
    gb_seconds: float = 0.0


def usage_summary(
    start: datetime,
    end: datetime,
    now: datetime,
    project_id: str | None,
    keystone: TokenValidator | None,
) -> dict[str, Any]:
    """Usage per project and resource type over [start, end): open intervals stop at now."""
    if end <= start:
        raise InvalidInput("end must be after start")
    query = Interval.select().where(
        (Interval.start < end) & (Interval.end.is_null() | (Interval.end > start))
    )
    if project_id is not None:
        query = query.where(Interval.project_id == project_id)
    sums: dict[tuple[str, str], _Sum] = {}
    for row in query.iterator():
        row_end = row.end if row.end is not None else max(now, row.start)
        seconds = (min(row_end, end) - max(row.start, start)).total_seconds()
        if seconds <= 0:
            continue
        acc = sums.setdefault((row.project_id, row.entity_type), _Sum(set()))
        acc.entities.add(row.entity_id)
        acc.intervals += 1
        acc.seconds += seconds
        size = row.attributes.get("size")
        if isinstance(size, int) and not isinstance(size, bool):
            acc.gb_seconds += size * seconds
    names = project_names((p for p, _ in sums), keystone)
    lines = [
        {
            "project_id": project,
            "project_name": names.get(project),
            "entity_type": entity_type,
            "entities": len(acc.entities),
            "intervals": acc.intervals,
            "seconds": round(acc.seconds, 6),
            "hours": round(acc.seconds / 3600, 6),
            "gb_hours": round(acc.gb_seconds / 3600, 6) if entity_type in SIZED else None,
        }
        for (project, entity_type), acc in sorted(sums.items())
    ]
    return {"start": format_time(start), "end": format_time(end), "lines": lines}


# --- routes --------------------------------------------------------------------------------

USAGE_QUERY = {
    "start": Field("date", required=True, description="Start of the window."),
    "end": Field("date", description="End of the window (excluded); default now."),
    "project_id": Field("id", description="Only this project."),
}

OPERATIONS = (
    Operation(
        "GET",
        "/projects",
        "list_projects",
        "Projects the ledger knows, with their active resources per type.",
        response="Projects",
        prefixes=("/v1",),
        tag="ledger",
    ),
    Operation(
        "GET",
        "/entity/<entity_id>/history",
        "entity_history",
        "A resource's intervals and the events that shaped them, oldest first.",
        response="History",
        prefixes=("/v1",),
        tag="ledger",
    ),
    Operation(
        "GET",
        "/usage",
        "usage_summary",
        "Hours and GB-hours per project and resource type over a window.",
        response="Usage",
        query=USAGE_QUERY,
        prefixes=("/v1",),
        tag="ledger",
    ),
)


class LedgerRoutes:
    """Handlers of OPERATIONS."""

    def __init__(self, clock: Callable[[], datetime], keystone: TokenValidator | None) -> None:
        self.clock = clock
        self.keystone = keystone

    def list_projects(self) -> str:
        return reply(projects(self.keystone))

    def entity_history(self, entity_id: str) -> str:
        entity_id = read_id(entity_id, "entity_id")
        doc = history(entity_id, self.keystone)
        if doc is None:
            raise not_found(f"entity {entity_id} is not in the ledger")
        return reply(doc)

    def usage_summary(self) -> str:
        query = read_query(USAGE_QUERY)
        now = self.clock()
        end = query.get("end") or now
        return reply(
            usage_summary(query["start"], end, now, query.get("project_id"), self.keystone)
        )
