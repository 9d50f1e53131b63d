"""Reading notification batches in reader processes, while this one records them.

Reading a message (decoding its JSON twice, parsing, checking what it would store, the
observation's sort key and JSON text: `services.read_messages`) is pure Python and costs
about as much as recording it (the bench's events, 2026-12-06: 58-84 us against 85-120).
In one process the two share one GIL, so they take turns on one core whatever the machine
has: the collector's consumer thread read while its writer thread recorded, and `replay`
read and recorded in turn. Here reader processes read (`read_messages` on other cores) and
hand each batch back packed as plain tuples (`ReadBatch.packed`), which this process
unpickles and rebuilds for much less than reading would cost it (about 22 us an event).

`replay` does not read its files here either: a batch may name lines of a file
(`FileSpan`), which the reader reads itself, so that their bodies (about 2 KB each) are
neither read, cut into lines nor pickled down the pipe by this process, the one that
records and is the bottleneck. Replaying the bench's 50,000 events, alternated four times
(2026-12-06): 4.07-4.23 s against 4.09-4.57 s, and peak RSS 208 MB against 248 MB, as
this process no longer holds the bodies of the batches being read.

A batch read by a reader is exactly the batch `read_messages` gives here (tested), and
the caller records batches in the order it submitted them, so what is recorded, and in
which transaction, does not depend on the readers. A reader that dies (killed, out of
memory) loses nothing: the batch it held is read in this process instead, and the next
batch submitted starts a new reader.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

from rintik_lite.services import Incoming, PackedBatch, ReadBatch, read_messages

log = logging.getLogger(__name__)


class FileSpan(NamedTuple):
    """The lines of a notification file from byte `start` to byte `end`, one message each:
    the file cut at b"\n" (so it must hold no b"\r", which `bytes.splitlines` would cut at
    too), lines of blanks left out. `start` is where a line begins, `end` where one begins
    or the file ends. The file is read when the batch is, so it must not change in between."""

    path: str
    start: int
    end: int
    source: str = "replay"

    def messages(self) -> list[Incoming]:
        with open(self.path, "rb") as file:
            file.seek(self.start)
            data = file.read(self.end - self.start)
        return [Incoming(line, self.source) for line in data.split(b"\n") if line.strip()]


#: What a batch is made of: messages, and spans of files that stand for theirs.
Piece = Incoming | FileSpan


def expanded(batch: Sequence[Piece]) -> list[Incoming]:
    """The messages of a batch, its spans read."""
    messages: list[Incoming] = []
    for piece in batch:
        if isinstance(piece, FileSpan):
            messages.extend(piece.messages())
        else:
            messages.append(piece)
    return messages


def usable_readers(asked: int) -> int:
    """The reader processes to start when `asked` for: never more than one fewer than the
    cores this process may use (one is the recorder's), so none on a single core, where a
    reader could only take turns with the recorder. One keeps up with the recorder
    (reading costs about what recording does): on 2 cores, 2 were no faster than 1."""
    return max(0, min(asked, len(os.sched_getaffinity(0)) - 1))


class PendingRead:
    """A batch submitted to `Readers`: `result()` gives it read."""

    def __init__(
        self,
        messages: Sequence[Piece],
        metadata_whitelist: Sequence[str],
        future: Future[PackedBatch] | None,
    ) -> None:
        self.messages = messages
        self.metadata_whitelist = metadata_whitelist
        self.future = future

    def result(self) -> ReadBatch:
        """The batch read: by its reader, or here when there was none or it died."""
        if self.future is not None:
            try:
                return ReadBatch.unpacked(self.future.result())
            except (BrokenProcessPool, CancelledError):
                log.warning(
                    "a reader process died (killed, or out of memory?) or was stopped before "
                    "it gave back a batch; reading it here"
                )
            except OSError as exc:  # a file gone: reading it here raises it to the caller
                log.warning("a reader process cannot read a batch (%s); reading it here", exc)
            except Exception:  # a bug: the batch must still be read, and not lost
                log.exception("a reader process failed a batch; reading it here")
        return read_messages(expanded(self.messages), self.metadata_whitelist)


class Readers:
    """`readers` reader processes (none: read in this process): `submit` a batch, or
    `read` many in order. Safe to submit from one thread and take results in another.

    They are forked when this is made, so make it before this process starts a thread or
    opens a database: a fork copies no thread (a lock another thread held stays held in
    the copy). In a process that already runs threads, they come from a fork server
    instead (a fresh process that imports what they need: slower to start), and so does a
    reader started to replace one that died. They ignore SIGINT, which reaches the whole
    process group: `close` (or leaving the `with`) stops them."""

    def __init__(self, readers: int) -> None:
        self.readers = readers
        self.pool: ProcessPoolExecutor | None = self._start() if readers > 0 else None
        self.closed = False
        self._guard = threading.Lock()

    def _start(self) -> ProcessPoolExecutor:
        method = "fork" if threading.active_count() == 1 else "forkserver"
        context = multiprocessing.get_context(method)
        pool = ProcessPoolExecutor(
            self.readers, context, initializer=_reader_started, initargs=(os.getpid(),)
        )
        # The executor starts its processes at the first task: that is now.
        pool.submit(int).result()
        return pool

    def submit(self, messages: Sequence[Piece], metadata_whitelist: Sequence[str]) -> PendingRead:
        """Start reading a batch; its reader is replaced first if it died."""
        with self._guard:
            pool = self.pool
            if pool is None:
                return PendingRead(messages, metadata_whitelist, None)
            task = [m if isinstance(m, FileSpan) else (m.body, m.source, m.error) for m in messages]
            try:
                future = pool.submit(_read_packed, task, metadata_whitelist)
            except BrokenProcessPool:
                log.warning("a reader process died; starting another")
                pool.shutdown(wait=False, cancel_futures=True)
                self.pool = pool = self._start()
                future = pool.submit(_read_packed, task, metadata_whitelist)
            return PendingRead(messages, metadata_whitelist, future)

    def read(
        self, batches: Iterable[Sequence[Piece]], metadata_whitelist: Sequence[str]
    ) -> Iterator[ReadBatch]:
        """Each batch read, in order, with at most `readers + 1` of them read ahead (memory
        stays bounded however many there are)."""
        pending: deque[PendingRead] = deque()
        for messages in batches:
            pending.append(self.submit(messages, metadata_whitelist))
            if len(pending) > self.readers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the reader processes; batches not yet read are dropped, and batches
        submitted later are read in the caller's process. Safe twice."""
        with self._guard:
            self.closed = True
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.pool = None

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reader_started(parent: int) -> None:
    """In a reader process, first: SIGINT is left to `parent` (it reaches the whole process
    group, and `parent` stops its readers), and the reader ends as soon as `parent` does.

    A reader waits for its next batch on a pipe whose writing end it holds itself, so it
    never sees the end of it: a parent killed with SIGKILL (or by the OOM killer) left its
    readers waiting for ever, and through them, as they hold its pipes, the fork server and
    the resource tracker of `multiprocessing` when it had started them (`run`: three
    processes per kill)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True
    ).start()


def _exit_with(parent: int) -> None:
    """Wait until process `parent` has ended, then end this process at once (no batch of
    its is wanted any more)."""
    try:
        handle = os.pidfd_open(parent)  # Linux 5.3 and later: readable once it has ended
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # another system: ask every second instead
        while _alive(parent):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True


def _read_packed(
    task: Sequence[tuple[bytes | str, str, str | None] | FileSpan],
    metadata_whitelist: Sequence[str],
) -> PackedBatch:
    """In a reader process: one batch read, packed for the pipe back (its messages sent as
    tuples of `Incoming`'s fields, which pickle in C, or as spans of files)."""
    batch = [m if isinstance(m, FileSpan) else Incoming(*m) for m in task]
    read = read_messages(expanded(batch), metadata_whitelist)
    return read.packed()
