"""How observations open, close and split a resource's intervals. Pure: no I/O.

A resource's ledger is a fold over its observations sorted by `sort_key` (event time, then a
fixed rank, then a digest of the content). Because the fold depends only on the *set* of
observations, the same events in any order, delivered any number of times, give the same
intervals. In-order arrivals (the usual case) extend the stored state with `step`; an
observation older than the last one applied makes the caller re-fold from all of them
(`fold`).

Rules:
* An "exists" observation opens an interval when none is open. The first interval starts at
  the resource's `since` (launched_at/created_at) when the event carries it, else at the
  event time; later ones start at the event time.
* A change of what a price depends on (`SPLIT_ON`: flavor, image, volume type, size,
  attachments, address) closes the open interval at the event time and opens the next one.
  Other attributes (name, metadata) update the open interval in place.
* A resource that stops being billable without being deleted (a router losing its external
  gateway, an image without data) closes its interval; it opens again when billable.
* A delete closes the open interval at the event time and ends the resource for good: any
  later observation (a stale create, a late update) is ignored. A delete with no interval
  before it (its create was never seen) records [since, delete] when the event says since.
* Zero-length intervals are dropped: they bill nothing.
* A correction (from the API: Almanach's edit of one closed interval) overrides attributes
  of the closed interval with exactly its start and end, whenever that interval exists:
  before or after the events that make it, in any order. Later corrections win.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from rintik_lite import jsontext
from rintik_lite.ledger.notifications import Observation, format_time, parse_time

SPLIT_ON: Mapping[str, tuple[str, ...]] = {
    "instance": ("flavor", "flavor_id", "image_id"),
    "volume": ("volume_type_id", "size", "attached_to"),
    "snapshot": ("size",),
    "image": ("size",),
    "floating_ip": ("address",),
    "router": (),
}

_RANK = {"exists": "1", "delete": "2", "correct": "3"}


def sort_key(obs: Observation) -> str:
    """A total order on observations, as a string (compared lexicographically).

    Time first (fixed-width UTC), then creates/updates before deletes at the same instant,
    then a digest of the content so that equal-time observations have one fixed order.
    """
    content = jsontext.dumps(
        [
            obs.action,
            dict(obs.attrs),
            obs.project_id,
            obs.since and format_time(obs.since),
            obs.until and format_time(obs.until),
        ],
        default=str,
    )
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{_key_time(obs.time)}|{_RANK[obs.action]}|{digest}"


def _key_time(t: datetime) -> str:
    """`t.strftime("%Y-%m-%dT%H:%M:%S.%f")`, by orjson or isoformat where they give the same
    text."""
    if t.year >= 1000:
        if t.tzinfo is UTC:
            text = jsontext.utc_text(t)
            return text if t.microsecond else text + ".000000"
        if t.tzinfo is None:
            return t.isoformat("T", "microseconds")
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def billable(entity_type: str, attrs: Mapping[str, Any]) -> bool:
    if entity_type == "router":
        return attrs.get("gateway") is True
    if entity_type == "image":
        return attrs.get("size") is not None
    return True


@dataclass(frozen=True)
class Row:
    """One interval of the ledger: [start, end), end None while in use."""

    start: datetime
    end: datetime | None
    last_event: datetime
    attrs: Mapping[str, Any]

    @cached_property
    def json(self) -> list[Any]:
        """The row as the state document stores it (built once: most rows of a resource
        are carried unchanged from fold to fold)."""
        return [
            format_time(self.start),
            self.end and format_time(self.end),
            format_time(self.last_event),
            dict(self.attrs),
        ]

    @classmethod
    def from_json(cls, doc: list[Any]) -> Row:
        start, end, last_event, attrs = doc
        row = cls(
            parse_time(start), parse_time(end) if end else None, parse_time(last_event), attrs
        )
        row.__dict__["json"] = doc  # what `json` would build: the document it was read from
        return row


@dataclass(frozen=True)
class Correction:
    """New attributes for the closed interval [start, end), wherever it appears."""

    key: str
    start: datetime
    end: datetime
    attrs: Mapping[str, Any]


def _corrected(rows: tuple[Row, ...], corrections: tuple[Correction, ...]) -> tuple[Row, ...]:
    if not corrections:
        return rows
    out = []
    for row in rows:
        for c in corrections:  # sorted by key: later corrections win
            if row.end is not None and (row.start, row.end) == (c.start, c.end):
                row = Row(row.start, row.end, row.last_event, {**row.attrs, **c.attrs})
        out.append(row)
    return tuple(out)


@dataclass(frozen=True)
class LedgerState:
    """Everything the fold knows about one resource."""

    entity_type: str
    entity_id: str
    project_id: str | None = None
    deleted: bool = False
    attrs: Mapping[str, Any] = field(default_factory=dict)
    rows: tuple[Row, ...] = ()
    last_key: str = ""
    corrections: tuple[Correction, ...] = ()

    def advanced(
        self,
        project_id: str | None,
        deleted: bool,
        attrs: Mapping[str, Any],
        rows: tuple[Row, ...],
        last_key: str,
    ) -> LedgerState:
        """This resource with what a step changes, its corrections kept: what
        `dataclasses.replace` gives, at half its cost (it looks every field up by name)."""
        return LedgerState(
            self.entity_type,
            self.entity_id,
            project_id,
            deleted,
            attrs,
            rows,
            last_key,
            self.corrections,
        )

    @property
    def open_row(self) -> Row | None:
        if self.rows and self.rows[-1].end is None:
            return self.rows[-1]
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "project_id": self.project_id,
            "deleted": self.deleted,
            "attrs": dict(self.attrs),
            "rows": [r.json for r in self.rows],
            "last_key": self.last_key,
            "corrections": [
                [c.key, format_time(c.start), format_time(c.end), dict(c.attrs)]
                for c in self.corrections
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LedgerState:
        return cls(
            entity_type=doc["entity_type"],
            entity_id=doc["entity_id"],
            project_id=doc["project_id"],
            deleted=doc["deleted"],
            attrs=doc["attrs"],
            rows=tuple(Row.from_json(r) for r in doc["rows"]),
            last_key=doc["last_key"],
            corrections=tuple(
                Correction(k, parse_time(start), parse_time(end), attrs)
                for k, start, end, attrs in doc.get("corrections", ())
            ),
        )


def _split_key(entity_type: str, attrs: Mapping[str, Any]) -> list[Any]:
    return [attrs.get(name) for name in SPLIT_ON[entity_type]]


def _close(rows: tuple[Row, ...], at: datetime) -> tuple[Row, ...]:
    """Close the open row at `at`; drop it if that leaves it empty."""
    last = rows[-1]
    if at <= last.start:
        return rows[:-1]
    return (*rows[:-1], Row(last.start, at, at, last.attrs))


def step(state: LedgerState, obs: Observation, key: str | None = None) -> LedgerState:
    """Apply one observation that sorts after every one applied so far (`key`: its
    `sort_key`, when the caller already has it)."""
    key = sort_key(obs) if key is None else key
    if obs.action == "correct":
        assert obs.since is not None and obs.until is not None
        corrections = tuple(
            sorted(
                (*state.corrections, Correction(key, obs.since, obs.until, obs.attrs)),
                key=lambda c: c.key,
            )
        )
        return LedgerState(
            state.entity_type,
            state.entity_id,
            state.project_id,
            state.deleted,
            state.attrs,
            _corrected(state.rows, corrections),
            max(key, state.last_key),
            corrections,
        )
    state = _step(state, obs, key)
    if not state.corrections:  # the usual case: nothing to apply, no second copy
        return state
    rows = _corrected(state.rows, state.corrections)
    return state.advanced(state.project_id, state.deleted, state.attrs, rows, state.last_key)


def _step(state: LedgerState, obs: Observation, key: str) -> LedgerState:
    if state.deleted:
        last_key = max(key, state.last_key)
        return state.advanced(state.project_id, True, state.attrs, state.rows, last_key)
    t = obs.time
    project = state.project_id or obs.project_id
    attrs = {**state.attrs, **obs.attrs}
    rows = state.rows
    open_row = state.open_row
    if obs.action == "delete":
        if open_row is not None:
            rows = _close(rows, t)
        elif (
            not rows
            and obs.since is not None
            and obs.since < t
            and billable(state.entity_type, attrs)
        ):
            rows = (Row(obs.since, t, t, attrs),)
        return state.advanced(project, True, attrs, rows, key)
    if not billable(state.entity_type, attrs):
        if open_row is not None:
            rows = _close(rows, t)
    elif open_row is None:
        start = t
        if not rows and obs.since is not None and obs.since < t:
            start = obs.since
        if rows and rows[-1].end is not None:
            start = max(start, rows[-1].end)
        rows = (*rows, Row(start, None, t, attrs))
    elif _split_key(state.entity_type, open_row.attrs) != _split_key(state.entity_type, attrs):
        if t <= open_row.start:
            rows = (*rows[:-1], Row(open_row.start, open_row.end, t, attrs))
        else:
            closed = Row(open_row.start, t, t, open_row.attrs)
            rows = (*rows[:-1], closed, Row(t, None, t, attrs))
    else:
        last_event = max(t, open_row.last_event)
        rows = (*rows[:-1], Row(open_row.start, open_row.end, last_event, attrs))
    return state.advanced(project, False, attrs, rows, key)


def fold(entity_type: str, entity_id: str, observations: Iterable[Observation]) -> LedgerState:
    """The ledger of one resource from all its observations, in any order, with repeats."""
    unique = {sort_key(o): o for o in observations}
    state = LedgerState(entity_type, entity_id)
    for key in sorted(unique):
        state = step(state, unique[key], key)
    return state
