"""Serving the API in a thread with cheroot, CherryPy's threaded WSGI server.

`ApiServer.start()` binds the port (so a busy port fails at once, in the caller) and serves
from a thread named "api" with `[api] threads` workers (`threads_for`); `stop()` closes the
listening socket and the connections and joins the workers within `shutdown_seconds`. Both are
idempotent. `run(stop_event)` is the thread body `rintik-lite run` uses: serve until the
event is set.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from cheroot import wsgi

from rintik_lite.errors import SettingsError
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
#: Worker threads when `api.threads` is 0 (its default), by database.
SQLITE_THREADS = 1
POSTGRESQL_THREADS = 8


def threads_for(settings: Settings) -> int:
    """`api.threads`, or when it is 0: one on SQLite, where requests served side by side
    only slow each other down (each hands the interpreter to the others at every SQLite
    call: bench/RESULTS.md, session 13), and 8 on PostgreSQL, where a request waits on the
    database server with the interpreter given up, and overlapping them pays (the bench's
    running invoice on its loopback PostgreSQL, one run each on 2026-12-06: one thread
    339 requests/s, p99 37 ms; 8 threads 462 requests/s, p99 33 ms)."""
    asked = int(settings["api.threads"])
    if asked > 0:
        return asked
    sqlite = urlparse(settings["database.url"]).scheme == "sqlite"
    return SQLITE_THREADS if sqlite else POSTGRESQL_THREADS


class _Server(wsgi.Server):  # type: ignore[misc]
    """cheroot's server, logging through `logging` rather than to stderr."""

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "%s%s", msg, "\n" + _traceback() if traceback else "")


def _traceback() -> str:
    return traceback.format_exc()


class ApiServer:
    """One WSGI app served on host:port by a pool of threads."""

    def __init__(
        self,
        app: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 8182,
        threads: int = 1,
        shutdown_seconds: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.shutdown_seconds = shutdown_seconds
        self.threads = max(1, threads)
        self._server = _Server(
            (host, port),
            app,
            numthreads=self.threads,
            server_name="rintik-lite",
            timeout=10,
            shutdown_timeout=shutdown_seconds,
        )
        self._server.max_request_header_size = MAX_HEADER_BYTES
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @classmethod
    def from_settings(cls, settings: Settings, app: Callable[..., Any]) -> ApiServer:
        return cls(app, settings["api.host"], settings["api.port"], threads_for(settings))

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port once started, when 0 was asked for)."""
        bound = self._server.bind_addr
        if isinstance(bound, tuple):
            return str(bound[0]), int(bound[1])
        return self.host, self.port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind and serve from a thread; a second call does nothing."""
        with self._lock:
            if self._thread is not None or self._stopped:
                return
            try:
                self._server.prepare()
            except OSError as exc:
                raise SettingsError(
                    f"the API cannot listen on {self.host}:{self.port}: {exc}"
                ) from None
            self._thread = threading.Thread(target=self._serve, name="api", daemon=True)
            self._thread.start()
        log.info("API listening on %s", self.url)

    def _serve(self) -> None:
        try:
            self._server.serve()
        except Exception:
            log.exception("the API server stopped on an error")

    def stop(self) -> None:
        """Stop serving and join the threads; safe to call twice, or before start."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        self._server.stop()
        thread.join(self.shutdown_seconds)
        if thread.is_alive():
            log.warning("the API thread did not stop within %.0f s", self.shutdown_seconds)
        else:
            log.info("API stopped")

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set (the body of `rintik-lite run`'s API thread)."""
        self.start()
        try:
            while not stop.wait(0.5):
                if not self.alive():
                    raise RuntimeError("the API server thread died")
        finally:
            self.stop()
