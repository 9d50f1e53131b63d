"""Reading notifications (decode, parse, observe, check) in a process of its own.

Reading a batch is pure Python: about 40% of what a notification costs. The collector's
consumer thread (kombu) and its writer thread (the fold and the SQL) hold the same GIL, so
on two cores the collector ran at about one core of Python. A `Reader` hands each batch to
one worker process, which runs the same `services.read_messages` on the other core while
this process receives the next batch and commits the one before; the worker sends back only
what reading added (`ReadBatch.portable`: positions, keys, notifications without their
payload, observations), and the batch is rebuilt over the messages this process kept.

`Reader.read(messages)` returns a `PendingRead`; its `result()` is the `ReadBatch` that
`services.read_messages(messages)` gives, read by the worker. When the worker cannot be
started or dies (killed, out of memory), that batch is read here instead, and the next one
starts a new worker (after `MAX_FAILURES` failures in a row, reading stays here): a
notification is never lost or acknowledged unread because of the worker. Nothing in the
worker touches the database or the broker. It is started with "spawn" (a fork of a process
running threads can inherit a held lock), once, at the first batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from rintik_lite import services
from rintik_lite.services import Incoming, PortableRead, ReadBatch

log = logging.getLogger(__name__)

MAX_FAILURES = 3  # workers lost in a row before reading stays in this process


def _start_worker() -> None:
    """Import what reading needs before the first batch arrives (it is timed)."""
    import rintik_lite.services  # noqa: F401


def _ready() -> bool:
    return True


class PendingRead:
    """A batch being read by the worker; `result()` waits for it."""

    def __init__(
        self,
        reader: Reader,
        messages: Sequence[Incoming],
        future: Future[PortableRead] | None,
        pool: ProcessPoolExecutor | None,
    ) -> None:
        self.reader = reader
        self.messages = messages
        self.future = future
        self.pool = pool  # the worker reading it
        self._batch: ReadBatch | None = None

    def result(self) -> ReadBatch:
        if self._batch is None:
            self._batch = self.reader._finish(self)
        return self._batch


class Reader:
    """Reads batches in a worker process (or here, with `processes=False`). start / read /
    close; `close` may be called twice."""

    def __init__(self, metadata_whitelist: Sequence[str] = (), processes: bool = True) -> None:
        self.metadata_whitelist = tuple(metadata_whitelist)
        self.processes = processes
        self.failures = 0
        self.read_here = 0  # batches read in this process after a worker failed
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker now, without waiting for it: it imports what it needs while
        the collector connects (the first batch's read waits for it)."""
        pool = self._get_pool()
        if pool is not None:
            try:
                pool.submit(_ready)  # a ProcessPoolExecutor starts its worker on a submit
            except Exception as exc:
                self._lost(pool, exc)

    def read(self, messages: Sequence[Incoming]) -> PendingRead:
        pool = self._get_pool()
        future = None
        if pool is not None:
            try:
                future = pool.submit(
                    services.read_portable,
                    [m.body for m in messages],
                    [m.source for m in messages],
                    self.metadata_whitelist,
                )
            except Exception as exc:  # a worker found dead (BrokenProcessPool), shut down...
                self._lost(pool, exc)
        return PendingRead(self, messages, future, pool if future is not None else None)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    @property
    def worker_pids(self) -> list[int]:
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}  # for tests and /metrics only
        return [p.pid for p in processes.values() if p.pid is not None]

    def _get_pool(self) -> ProcessPoolExecutor | None:
        if not self.processes or self.failures >= MAX_FAILURES:
            return None
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = ProcessPoolExecutor(
                        max_workers=1,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_worker,
                    )
                except Exception as exc:  # no processes here (a sandbox, a limit)
                    self.failures = MAX_FAILURES
                    log.warning("cannot start a reader process (%s): reading here", exc)
                    return None
            return self._pool

    def _finish(self, pending: PendingRead) -> ReadBatch:
        if pending.future is not None and pending.pool is not None:
            try:
                portable = pending.future.result()
            except Exception as exc:  # the worker died with the batch: read it here
                self._lost(pending.pool, exc)
            else:
                self.failures = 0
                return ReadBatch.from_portable(pending.messages, portable)
        if self.processes:
            self.read_here += 1
        return services.read_messages(pending.messages, self.metadata_whitelist)

    def _lost(self, pool: ProcessPoolExecutor, exc: BaseException) -> None:
        """`pool`'s worker is gone: the next batch starts another (up to MAX_FAILURES).
        Its other batches fail too, and find it already replaced: once per worker."""
        with self._lock:
            if self._pool is not pool:
                return
            self._pool = None
            self.failures += 1
        log.warning(
            "reader process lost (%s: %s); reading its batches here%s",
            type(exc).__name__,
            exc,
            "" if self.failures < MAX_FAILURES else ", and all batches from now on",
        )
        pool.shutdown(wait=False, cancel_futures=True)
