"""The cyclic garbage collector, tuned for a process that allocates a lot and keeps little.

CPython collects its youngest generation every 700 net allocations of container objects,
and each collection of an older generation walks every object that survived into it. The
collector, `replay` and invoice closing allocate a few dozen dicts and tuples per event
and keep almost none of them (they are freed by reference counting the moment a batch is
committed), so on the defaults a tenth or more of their time went to collections that
found nothing: `rintik-lite replay` of the bench's 50,000 events took 16.3-16.5 s with
the defaults and 13.2-14.0 s with (200,000, 20, 20), measured back to back, at the same
peak RSS (169 MB).

`tuned()` raises the youngest generation's threshold to 100,000 and the older ones' to 20.
Reference cycles (an exception and its traceback, say) are still collected, a little
later; a collection of 100,000 young objects takes a few milliseconds, and that pause is
why `run` (and `demo`, which serves the API too) keep the defaults: `bench/run.py api`
with `run` tuned gave the invoice details 818 / 521 req/s, p99 35 / 74 ms, against
1,176 / 695 req/s, p99 21 / 55 ms untuned, back to back (healthz 1,045 against 907).
Only the bulk commands run under it (`@bulk`): replay, invoice close and import.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

THRESHOLDS = (100_000, 20, 20)

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def tuned() -> Iterator[None]:
    """The thresholds raised while the block runs, and put back as they were after it: a
    command run in-process (CliRunner, the test suite) leaves the process as it found it.
    Left raised, they kept an SQLite file and a PostgreSQL session open in the test process
    until a collection that came much later."""
    previous = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def bulk(command: F) -> F:
    """A command that runs `tuned()` (its signature kept, for typer)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with tuned():
            return command(*args, **kwargs)

    return run  # type: ignore[return-value]
