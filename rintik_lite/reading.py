"""Reading notification batches in other processes, while this one records (`replay`).

Reading a message (decoding its JSON twice, parsing, checking what it would store, the
observation's sort key and JSON text: `services.read_messages`) is pure Python and costs
about as much as recording it (the bench's events, 2026-12-06: 70-84 us against 90-120).
In one process the two take turns on one core, whatever the machine has: threads would
share the GIL, as `cli.REPLAY_BATCH` notes. Here reader processes read the batches
(`read_messages` on their own cores) and hand them back packed as plain tuples
(`ReadBatch.packed`), which this process unpickles and rebuilds for much less than reading
would cost it (about 22 us an event).

Batches come back in the order they were given, so what is recorded, and in which
transaction, is exactly what reading them in this process would record. At most
`readers + 1` batches are read ahead, so memory stays bounded however many files there are.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from rintik_lite.errors import ReaderDied
from rintik_lite.services import Incoming, PackedBatch, ReadBatch, read_messages

#: The most reader processes `default_readers` proposes: one reader keeps up with the
#: process that records (reading costs about what recording does), a second covers for the
#: machine's other work; more only compete for the cores with the recording process.
MAX_DEFAULT_READERS = 2


def default_readers() -> int:
    """Reader processes for this machine: one fewer than the cores this process may use
    (one is the recorder's), at most `MAX_DEFAULT_READERS`; 0 (read in this process) on a
    single core, where a reader could only take turns with the recorder."""
    return max(0, min(MAX_DEFAULT_READERS, len(os.sched_getaffinity(0)) - 1))


class Readers:
    """`readers` reader processes (none: read in this process), for `read`.

    They are forked when this is made, so make it before this process opens a database or
    starts a thread: a fork copies no thread (a lock another thread held stays held in the
    copy), so in a process that already runs threads they come from a fork server
    instead, a fresh process that imports what they need (slower to start). They ignore
    SIGINT, which reaches the whole process group: `close` (or leaving the `with`) stops
    them, however the command ends. A reader that dies raises `ReaderDied` in `read`
    (a `multiprocessing.Pool` would wait for its batch for ever)."""

    def __init__(self, readers: int) -> None:
        self.readers = readers
        self.pool: ProcessPoolExecutor | None = None
        if readers > 0:
            method = "fork" if threading.active_count() == 1 else "forkserver"
            context = multiprocessing.get_context(method)
            self.pool = ProcessPoolExecutor(readers, context, initializer=_ignore_sigint)

    def read(
        self, batches: Iterable[Sequence[bytes]], source: str, metadata_whitelist: Sequence[str]
    ) -> Iterator[ReadBatch]:
        """`read_messages` of each batch of message bodies (all from `source`), in order."""
        if self.pool is None:
            for bodies in batches:
                yield read_messages([Incoming(b, source) for b in bodies], metadata_whitelist)
            return
        pending: deque[Future[PackedBatch]] = deque()
        try:
            for bodies in batches:
                pending.append(self.pool.submit(_read_packed, bodies, source, metadata_whitelist))
                if len(pending) > self.readers:
                    yield ReadBatch.unpacked(pending.popleft().result())
            while pending:
                yield ReadBatch.unpacked(pending.popleft().result())
        except BrokenProcessPool:
            raise ReaderDied(
                "a reader process died before it gave back its batch (killed, or out of "
                "memory?): what was recorded before it stays, and replaying the same files "
                "again records the rest (what is stored already counts as duplicate)"
            ) from None

    def close(self) -> None:
        """Stop the reader processes; batches not yet read are dropped. Safe twice."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_packed(
    bodies: Sequence[bytes], source: str, metadata_whitelist: Sequence[str]
) -> PackedBatch:
    """In a reader process: one batch read, packed for the pipe back."""
    return read_messages([Incoming(b, source) for b in bodies], metadata_whitelist).packed()
