"""The fold: how observations open, close and split intervals (pure, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rintik_lite.ledger.intervals import _RANK, LedgerState, Row, fold, step
from rintik_lite.ledger.notifications import Observation, format_time

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def obs(
    action: str,
    hours: float,
    entity_type: str = "instance",
    since: float | None = None,
    project: str | None = "p1",
    **attrs: object,
) -> Observation:
    return Observation(
        entity_type,
        "e1",
        project,
        at(hours),
        action,
        attrs,
        at(since) if since is not None else None,
    )


def spans(state: LedgerState) -> list[tuple[datetime, datetime | None]]:
    return [(r.start, r.end) for r in state.rows]


def test_create_opens_at_since_and_delete_closes() -> None:
    state = fold(
        "instance",
        "e1",
        [
            obs("exists", 1.0, since=0.5, flavor="m1.small"),
            obs("delete", 5.0),
        ],
    )
    assert spans(state) == [(at(0.5), at(5.0))]
    assert state.deleted
    assert state.rows[0].attrs["flavor"] == "m1.small"


def test_resize_splits_at_event_time_and_rename_does_not() -> None:
    state = fold(
        "instance",
        "e1",
        [
            obs("exists", 0, flavor="m1.small", name="web"),
            obs("exists", 2, flavor="m1.small", name="web-renamed"),
            obs("exists", 3, flavor="m1.large"),
        ],
    )
    assert spans(state) == [(at(0), at(3)), (at(3), None)]
    assert state.rows[0].attrs == {"flavor": "m1.small", "name": "web-renamed"}
    assert state.rows[1].attrs == {"flavor": "m1.large", "name": "web-renamed"}
    assert state.rows[1].last_event == at(3)


def test_volume_attach_and_detach_split() -> None:
    state = fold(
        "volume",
        "e1",
        [
            obs("exists", 0, "volume", size=10, attached_to=[]),
            obs("exists", 1, "volume", attached_to=["i-1"]),
            obs("exists", 4, "volume", attached_to=[]),
            obs("exists", 6, "volume", size=20),
        ],
    )
    assert spans(state) == [(at(0), at(1)), (at(1), at(4)), (at(4), at(6)), (at(6), None)]
    assert [r.attrs["attached_to"] for r in state.rows] == [[], ["i-1"], [], []]
    assert [r.attrs["size"] for r in state.rows] == [10, 10, 10, 20]


def test_delete_before_create_still_closes_and_stale_create_never_reopens() -> None:
    delete = obs("delete", 5, since=1, flavor="m1.small")
    create = obs("exists", 1, since=1, flavor="m1.small")
    stale = obs("exists", 7, since=1, flavor="m1.small")
    assert spans(fold("instance", "e1", [delete])) == [(at(1), at(5))]
    assert spans(fold("instance", "e1", [delete, create, stale])) == [(at(1), at(5))]


def test_delete_without_since_or_interval_records_nothing_but_ends_the_resource() -> None:
    state = fold("floating_ip", "e1", [obs("delete", 5, "floating_ip", project=None)])
    assert state.rows == () and state.deleted


def test_router_bills_only_with_gateway() -> None:
    state = fold(
        "router",
        "e1",
        [
            obs("exists", 0, "router", gateway=False),
            obs("exists", 1, "router", gateway=True),
            obs("exists", 3, "router", gateway=False),
            obs("exists", 4, "router", gateway=True),
            obs("delete", 6, "router"),
        ],
    )
    assert spans(state) == [(at(1), at(3)), (at(4), at(6))]


def test_exists_repairs_a_missing_interval_from_since() -> None:
    state = fold("instance", "e1", [obs("exists", 10, since=2, flavor="m1.tiny")])
    assert spans(state) == [(at(2), None)]


def test_zero_length_intervals_are_dropped() -> None:
    state = fold("instance", "e1", [obs("exists", 1, flavor="a"), obs("delete", 1)])
    assert state.rows == () and state.deleted


def test_step_after_delete_changes_nothing_but_the_key() -> None:
    state = fold("instance", "e1", [obs("exists", 0, flavor="a"), obs("delete", 1)])
    later = step(state, obs("exists", 2, flavor="b"))
    assert later.rows == state.rows == (Row(at(0), at(1), at(1), {"flavor": "a"}),)


def test_state_round_trips_through_json() -> None:
    state = fold(
        "volume",
        "e1",
        [
            obs("exists", 0, "volume", size=1, attached_to=["x"]),
            obs("exists", 1.5, "volume", size=2),
        ],
    )
    assert LedgerState.from_json(state.to_json()) == state
    # A row read back keeps the document it came from, so that writing the state again
    # does not format its times again: the same document as a row built afresh.
    read = LedgerState.from_json(json.loads(json.dumps(state.to_json())))
    assert read.to_json() == state.to_json()
    assert [r.json for r in read.rows] == [
        [format_time(r.start), r.end and format_time(r.end), format_time(r.last_event), r.attrs]
        for r in state.rows
    ]


def correct(made_at: float, start: float, end: float, **attrs: object) -> Observation:
    return Observation("instance", "e1", None, at(made_at), "correct", attrs, at(start), at(end))


def test_a_correction_overrides_one_closed_interval_only() -> None:
    trace = [
        obs("exists", 0, flavor="a", name="vm"),
        obs("exists", 3, flavor="b"),
        obs("delete", 5),
    ]
    state = fold("instance", "e1", [*trace, correct(9, 0, 3, flavor="a2", name="fixed")])
    assert [(r.start, r.end, r.attrs["flavor"], r.attrs["name"]) for r in state.rows] == [
        (at(0), at(3), "a2", "fixed"),
        (at(3), at(5), "b", "vm"),
    ]
    # A correction whose window matches no interval changes nothing.
    assert (
        fold("instance", "e1", [*trace, correct(9, 0, 4, flavor="zz")]).rows
        == fold("instance", "e1", trace).rows
    )


def test_a_correction_made_before_its_interval_exists_still_applies() -> None:
    fix = correct(1, 0, 3, name="fixed")
    assert step(LedgerState("instance", "e1"), fix).rows == ()
    folded = fold(
        "instance",
        "e1",
        [fix, obs("exists", 0, flavor="a", name="vm"), obs("exists", 3, flavor="b")],
    )
    assert [r.attrs["name"] for r in folded.rows] == ["fixed", "vm"]
    assert LedgerState.from_json(folded.to_json()) == folded


def test_the_later_correction_wins() -> None:
    trace = [
        obs("exists", 0, flavor="a"),
        obs("delete", 2),
        correct(5, 0, 2, flavor="x"),
        correct(6, 0, 2, flavor="y"),
    ]
    assert fold("instance", "e1", trace).rows[0].attrs["flavor"] == "y"
    assert fold("instance", "e1", list(reversed(trace))).rows[0].attrs["flavor"] == "y"


# --- order and repetition do not matter -----------------------------------------------------

FLAVORS = st.sampled_from(["m1.tiny", "m1.small", "m1.large"])


@st.composite
def traces(draw: st.DrawFn) -> list[Observation]:
    """A plausible life of one instance: create, some resizes/renames/audits, maybe a delete."""
    times = sorted(draw(st.lists(st.integers(0, 500), min_size=1, max_size=12, unique=True)))
    since = times[0]
    trace = [obs("exists", times[0], since=since, flavor=draw(FLAVORS), name="vm")]
    for t in times[1:-1]:
        kind = draw(st.sampled_from(["resize", "rename", "exists"]))
        if kind == "resize":
            trace.append(obs("exists", t, since=since, flavor=draw(FLAVORS)))
        elif kind == "rename":
            trace.append(obs("exists", t, since=since, name=draw(st.sampled_from(["a", "b"]))))
        else:
            trace.append(obs("exists", t, since=since))
    if len(times) > 1:
        if draw(st.booleans()):
            trace.append(obs("delete", times[-1], since=since))
        else:
            trace.append(obs("exists", times[-1], since=since, flavor=draw(FLAVORS)))
    return trace


@settings(max_examples=300, deadline=None)
@given(trace=traces(), data=st.data())
def test_any_permutation_with_repeats_gives_the_same_ledger(
    trace: list[Observation], data: st.DataObject
) -> None:
    expected = fold("instance", "e1", trace)
    closed = [r for r in expected.rows if r.end is not None]
    if closed and data.draw(st.booleans()):  # an API correction of one closed interval
        target = data.draw(st.sampled_from(closed))
        fix = Observation(
            "instance", "e1", None, at(600), "correct", {"name": "fixed"}, target.start, target.end
        )
        trace = [*trace, fix]
        expected = fold("instance", "e1", trace)
        assert next(r for r in expected.rows if r.start == target.start).attrs["name"] == "fixed"
    repeated = trace + data.draw(st.lists(st.sampled_from(trace), max_size=len(trace)))
    shuffled = data.draw(st.permutations(repeated))
    assert fold("instance", "e1", shuffled) == expected
    # In-order arrival applied one step at a time (the collector's fast path) agrees too.
    state = LedgerState("instance", "e1")
    for o in sorted(trace, key=lambda o: (o.time, _RANK[o.action])):
        state = step(state, o)
    assert state.rows == expected.rows
