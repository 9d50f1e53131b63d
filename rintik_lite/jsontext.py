"""JSON in and out of the hot paths, with orjson, and exactly what the standard library
would give wherever the two differ.

orjson decodes and encodes several times faster than `json` (a notification body: about
5 us instead of 17 us; a ledger state with sorted keys: 2 us instead of 24 us). Where it
would give another result, these functions hand the value to `json` instead:
- decoding: an integer of 19 digits or more (orjson turns those beyond 64 bits, signed
  or unsigned, into a float, silently losing digits: -9223372036854775809, 19 digits, is
  one), or text orjson refuses (escaped lone surrogates, say):
  `json.loads` decides, and raises what it raises. Both refuse NaN and Infinity, which are
  not JSON (RFC 8259) and could not be written back: `json` would accept them;
- encoding: an integer beyond 64 bits, a non-string key, a lone surrogate (TypeError in
  orjson): `json.dumps` writes it, escaping what is not ASCII.
The text written is compact with sorted keys; orjson writes characters beyond ASCII as they
are where `json.dumps` escapes them as \\uXXXX: both read back to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

# Every digit as "0", every other byte as a space: a run of 19 zeros in the translation is
# an integer of 19 digits or more (a C-speed scan; a regular expression costs ten times more).
# The shortest integers orjson gets wrong have 19: below -2**63 (it reads up to 2**64 - 1).
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_INTEGER = b"0" * 19


def loads(text: bytes | str) -> Any:
    """The value of a JSON document; ValueError (or UnicodeDecodeError) as `json.loads`."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=_not_json)
    # An object of strings alone (the messagingv2 envelope) holds no number to lose: the
    # scan for long integers, a pass over every byte, is only needed for the rest.
    if type(value) is dict and all(type(v) is str for v in value.values()):
        return value
    if _LONG_INTEGER in raw.translate(_DIGITS):
        return json.loads(text, parse_constant=_not_json)
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text with sorted keys (equal values give equal text); `default` turns
    what JSON has no type for into something it has, as in `json.dumps`."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=default, sort_keys=True, separators=(",", ":"))


def utc_text(value: datetime) -> str:
    """`value.isoformat()` less its "+00:00", for a datetime whose tzinfo is `UTC` and whose
    year is 1000 or later (the caller checks both): orjson writes the same RFC 3339 text
    (microseconds only when there are some) at about a third of the cost; CPython's
    isoformat goes through a printf-style formatter, a few percent of the collector's
    instructions by callgrind, with eight times formatted per event."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-2].decode()
