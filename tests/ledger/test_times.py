"""The fast paths of time parsing and formatting give exactly what the general code gives:
sort keys, stored times and state documents must not change by a character."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rintik_lite.ledger.intervals import _key_time
from rintik_lite.ledger.notifications import _format_time_general as reference_format_time
from rintik_lite.ledger.notifications import _parse_time_general as reference_parse_time
from rintik_lite.ledger.notifications import format_time, parse_time
from rintik_lite.models import Event

zones = st.one_of(
    st.none(),
    st.just(UTC),
    st.builds(
        lambda minutes: timezone(timedelta(minutes=minutes)),
        st.integers(min_value=-23 * 60, max_value=23 * 60),
    ),
)
times = st.builds(
    lambda t, tz: t.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zones,
)


def spellings(t: datetime) -> list[str]:
    """How notifications spell a time: oslo's, nova's, ISO with Z, with padding..."""
    out = [t.isoformat(), t.isoformat(" "), t.isoformat(timespec="seconds")]
    out += [t.isoformat(timespec=spec) for spec in ("hours", "minutes", "milliseconds")]
    out += [t.date().isoformat(), t.strftime("%Y%m%dT%H%M%S")]
    if t.tzinfo is None:
        out += [t.date().isoformat() + "Z", t.strftime("%Y%m%dT%H%M%S") + "Z"]
    if t.tzinfo is None:
        out += [t.isoformat() + "Z", t.isoformat() + "z", f" {t.isoformat()}Z "]
    return out


@settings(max_examples=400, deadline=None)
@given(times)
def test_parse_time_fast_path_equals_the_general_one(t: datetime) -> None:
    for text in spellings(t):
        try:
            expected = reference_parse_time(text)
        except ValueError:
            with pytest.raises(ValueError):
                parse_time(text)
            continue
        got = parse_time(text)
        assert got == expected and got.tzinfo is UTC, text
        assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    ["", " ", "Z", "2026-01-01T10:00:00ZZ", "2026-13-01", "yesterday"],
)
def test_parse_time_refuses_what_the_general_one_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        reference_parse_time(text)
    with pytest.raises(ValueError):
        parse_time(text)


@settings(max_examples=400, deadline=None)
@given(st.builds(lambda t, tz: t.replace(tzinfo=tz), st.datetimes(), zones))
def test_format_time_fast_path_equals_the_general_one(t: datetime) -> None:
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    try:
        aware.astimezone(UTC)
    except OverflowError:  # a time near year 1 or 9999 whose UTC instant does not exist
        return
    assert format_time(aware) == reference_format_time(aware)


@settings(max_examples=400, deadline=None)
@given(st.builds(lambda t, tz: t.replace(tzinfo=tz), st.datetimes(), zones))
def test_sort_key_time_is_strftime(t: datetime) -> None:
    assert _key_time(t) == t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def test_stored_time_on_sqlite_is_unchanged(tmp_path: Path) -> None:
    from rintik_lite.db import close_database, open_database

    open_database(f"sqlite:///{tmp_path / 't.db'}", migrate=False)

    @settings(max_examples=300, deadline=None)
    @given(times)
    def check(t: datetime) -> None:
        aware = t if t.tzinfo else t.replace(tzinfo=UTC)
        try:
            naive = aware.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # no UTC instant (near year 1 or 9999)
            return
        assert Event.event_time.db_value(aware) == naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    try:
        check()
    finally:
        close_database()
