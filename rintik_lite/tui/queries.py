"""What the TUI reads that no other front end needs, as plain frozen dataclasses.

Everything else it shows comes from the functions the CLI and the API call (`services`,
`invoices`, `api.ledger.projects`). These run in worker threads, inside a connection the
caller opened; none of them writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import peewee

from rintik_lite.api.ledger import projects as ledger_projects
from rintik_lite.ledger.notifications import parse_time
from rintik_lite.models import Event, Interval, Quarantine

#: How recent the last committed batch must be for the collector to count as live.
LIVE_WITHIN = timedelta(minutes=2)

#: Events read to count the last minute's (the newest first, by id: no full scan).
RECENT_EVENTS = 1000


# --- projects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectSummary:
    """One line of the projects list. `month_to_date` and `last_event` arrive later
    (they cost a pass over the ledger) and are None until then, or when there are none."""

    project_id: str
    name: str | None
    active: int
    active_by_type: Mapping[str, int] = field(default_factory=dict)
    month_to_date: Decimal | None = None
    last_event: datetime | None = None


def project_summaries(keystone: Any = None) -> list[ProjectSummary]:
    """Every project the ledger knows (the API's `GET /v1/projects` query), by id; names
    from Keystone when `keystone` is given, else from the registry."""
    return [
        ProjectSummary(
            project_id=doc["project_id"],
            name=doc["project_name"],
            active=doc["active_total"],
            active_by_type=doc["active"],
        )
        for doc in ledger_projects(keystone)
    ]


def last_events() -> dict[str, datetime]:
    """Each project's latest ledger change: the newest `last_event` of its intervals."""
    query = (
        Interval.select(Interval.project_id, peewee.fn.MAX(Interval.last_event))
        .group_by(Interval.project_id)
        .tuples()
    )
    field_ = Interval.last_event
    return {project: field_.python_value(value) for project, value in query if value is not None}


# --- the collector, as the database shows it -----------------------------------------------


@dataclass(frozen=True)
class CollectorState:
    """What the database shows of the collector of another process.

    The collector keeps its connection state in memory; all another process sees is the
    batches it commits. So "live" means a batch (events or quarantined messages) was
    committed within `LIVE_WITHIN`; a quiet cloud and a stopped collector look the same,
    and the header says "quiet" rather than guess. The newest ids tell screens when the
    ledger changed, so they reload only then.
    """

    last_received: datetime | None
    events_last_minute: int
    newest_event: int = 0
    newest_quarantined: int = 0
    more: bool = False  # the count hit RECENT_EVENTS: at least that many

    @property
    def version(self) -> tuple[int, int]:
        return (self.newest_event, self.newest_quarantined)

    def status(self, now: datetime) -> str:
        if self.last_received is None:
            return "no events yet"
        if now - self.last_received <= LIVE_WITHIN:
            return "live"
        return "quiet"


def collector_state(now: datetime) -> CollectorState:
    """From the newest events by id (the store's insertion order): bounded work, no scan."""
    rows = list(
        Event.select(Event.id, Event.received_at).order_by(Event.id.desc()).limit(RECENT_EVENTS)
    )
    quarantined = Quarantine.select(Quarantine.id, Quarantine.received_at).order_by(
        Quarantine.id.desc()
    )
    last_quarantined = quarantined.first()
    times = [row.received_at for row in rows]
    if last_quarantined is not None:
        times.append(last_quarantined.received_at)
    since = now - timedelta(minutes=1)
    recent = sum(1 for row in rows if since < row.received_at <= now)
    return CollectorState(
        last_received=max(times) if times else None,
        events_last_minute=recent,
        newest_event=rows[0].id if rows else 0,
        newest_quarantined=last_quarantined.id if last_quarantined is not None else 0,
        more=recent == RECENT_EVENTS,
    )


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """A stored notification, as the events screen lists it."""

    id: int
    received_at: datetime
    event_type: str
    source: str
    entity_id: str | None
    event_time: datetime | None
    action: str | None


def latest_events(limit: int = 200) -> list[EventRow]:
    """The newest stored notifications, newest first."""
    query = (
        Event.select(
            Event.id,
            Event.received_at,
            Event.event_type,
            Event.source,
            Event.entity_id,
            Event.event_time,
            Event.observation,
        )
        .order_by(Event.id.desc())
        .limit(limit)
    )
    return [
        EventRow(
            id=e.id,
            received_at=e.received_at,
            event_type=e.event_type,
            source=e.source,
            entity_id=e.entity_id,
            event_time=e.event_time,
            action=(e.observation or {}).get("action"),
        )
        for e in query
    ]


# --- a project's resources -----------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One interval of one of the project's resources."""

    entity_type: str
    entity_id: str
    name: str | None
    detail: str  # flavor, "100 GB ssd", address...
    start: datetime
    end: datetime | None

    def running_time(self, now: datetime) -> timedelta:
        return max((self.end or now) - self.start, timedelta(0))


def resource(doc: Mapping[str, Any]) -> Resource:
    """A `services.usage` row as a Resource."""
    end = doc.get("end")
    return Resource(
        entity_type=doc["entity_type"],
        entity_id=doc["entity_id"],
        name=doc.get("name"),
        detail=resource_detail(doc),
        start=parse_time(doc["start"]),
        end=parse_time(end) if end else None,
    )


def resource_detail(doc: Mapping[str, Any]) -> str:
    """Flavor for an instance, size and type for a volume, size for snapshots and images,
    address for a floating IP."""
    kind = doc["entity_type"]
    if kind == "instance":
        return str(doc.get("flavor") or doc.get("flavor_id") or "")
    if kind == "volume":
        volume_type = doc.get("volume_type") or ""
        return f"{doc.get('size')} GB {volume_type}".strip()
    if kind in ("snapshot", "image"):
        return f"{doc.get('size')} GB"
    if kind == "floating_ip":
        return str(doc.get("address") or "")
    return ""
