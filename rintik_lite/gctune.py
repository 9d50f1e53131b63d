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
later; a collection of 100,000 young objects takes a few milliseconds. Only the bulk
commands run under it (`@bulk`): replay, invoice close and import.

`run` and `demo`, which serve the API beside the collector, run under `serving()`: what
start-up made (modules, classes, functions: about 70,000 objects) is frozen out of every
collection (`gc.freeze()`), and the youngest generation's threshold is 20,000. On the
defaults the collector spent about a sixth of `bench/run.py ingest` collecting: each
batch's kombu messages and decoded bodies live until it is committed, so they survived
young collections into the oldest generation, whose full collections (60-90 ms each, a
dozen per 50,000 events) walked every object of the process. Measured on 2026-12-02
(`bench/run.py ingest`, gc callbacks timing every collection): 1.6-2.1 s in about 1,600
collections on the defaults, 0.08-0.22 s in 128 under `serving()` (116 of them during
start-up, before it begins). A batch's objects now mostly die before a collection, and
the API's requests free what they allocate, so serving sees fewer pauses, not longer
ones: `bench/run.py api` gave p99 at or below the defaults'.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

THRESHOLDS = (100_000, 20, 20)
SERVING_THRESHOLDS = (20_000, 10, 10)

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _thresholds(values: tuple[int, int, int]) -> Iterator[None]:
    previous = gc.get_threshold()
    gc.set_threshold(*values)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def tuned() -> AbstractContextManager[None]:
    """The thresholds raised while the block runs, and put back as they were after it: a
    command run in-process (CliRunner, the test suite) leaves the process as it found it.
    Left raised, they kept an SQLite file and a PostgreSQL session open in the test process
    until a collection that came much later."""
    return _thresholds(THRESHOLDS)


@contextmanager
def serving() -> Iterator[None]:
    """For a long-running process, once its start-up is done: what exists now frozen out of
    collections and the serving thresholds set while the block runs; both undone after it
    (in-process, the test suite's objects go back to being collected)."""
    gc.collect()  # start-up's garbage is freed, not frozen
    gc.freeze()
    try:
        with _thresholds(SERVING_THRESHOLDS):
            yield
    finally:
        gc.unfreeze()


def bulk(command: F) -> F:
    """A command that runs `tuned()` (its signature kept, for typer)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with tuned():
            return command(*args, **kwargs)

    return run  # type: ignore[return-value]
