"""kombu's py-amqp transport, reading the socket in 64 KB blocks instead of field by field.

py-amqp reads every frame with three `recv` calls of exactly the size it wants next (the
7-byte header, the payload, the frame-end octet), and sets and restores the socket timeout
around each frame. A notification is three frames (method, header, body), so receiving one
costs nine system calls and six `settimeout`s: most of what a consumer of small messages
spends outside its own code. Here `_read` asks the socket for up to 64 KB at a time and
serves the following reads from that buffer, and a frame that is already whole in the
buffer is cut out of it without touching the socket or its timeout.

Nothing else changes: the frames, their order, what happens on a timeout (what was read of
a frame is kept for the next read, as py-amqp does) or on a closed connection. Only plain
TCP is buffered; TLS (`amqps://`, `broker.ssl`) keeps py-amqp's own SSL transport.

Use `connection(url, **options)` where a kombu `Connection(url, **options)` would do.
"""

from __future__ import annotations

import errno
from contextlib import AbstractContextManager, nullcontext
from struct import unpack, unpack_from
from typing import Any
from urllib.parse import urlparse

import amqp.transport
from kombu import Connection
from kombu.transport import pyamqp

BLOCK = 65536  # bytes asked of the socket per recv: a few dozen notifications
FRAME_END = 206  # the octet after every frame's payload
_HEADER = ">BHI"  # frame type, channel, payload size


class BufferedTCPTransport(amqp.transport.TCPTransport):
    """py-amqp's TCP transport with block reads. The unread bytes are `_buffer[_offset:]`:
    slicing a position off the front would copy the rest of the block at every read."""

    _buffer: bytes
    _offset: int

    def _setup_transport(self) -> None:
        super()._setup_transport()
        self._buffer, self._offset = b"", 0

    # py-amqp's read_frame puts back what it read of a frame when a read times out, through
    # `_read_buffer`: kept as a view of the unread bytes.
    @property  # type: ignore[override]
    def _read_buffer(self) -> bytes:
        return self._buffer[self._offset :]

    @_read_buffer.setter
    def _read_buffer(self, value: bytes) -> None:
        self._buffer, self._offset = value, 0

    def _read(
        self, n: int, initial: bool = False, _errnos: tuple[int, ...] = (errno.EAGAIN, errno.EINTR)
    ) -> bytes:
        """Exactly n bytes, as py-amqp's `_read`, from the buffer while it has them."""
        buffer, offset = self._buffer, self._offset
        end = offset + n
        if end <= len(buffer):
            self._offset = end
            return buffer[offset:end]
        unread = buffer[offset:]
        recv = self._quick_recv
        try:
            while len(unread) < n:
                try:
                    block = recv(max(BLOCK, n - len(unread)))
                except OSError as exc:
                    if exc.errno in _errnos:
                        if initial and self.raise_on_initial_eintr:
                            raise TimeoutError() from None
                        continue
                    raise
                if not block:
                    raise OSError("Server unexpectedly closed connection")
                unread += block
        except BaseException:
            self._buffer, self._offset = unread, 0
            raise
        self._buffer, self._offset = unread, n
        return unread[:n]

    def _whole_frame(self) -> bool:
        """Whether the buffer holds a whole frame, frame-end octet included."""
        buffer, offset = self._buffer, self._offset
        if len(buffer) - offset < 7:
            return False
        size: int = unpack_from(">I", buffer, offset + 3)[0]
        return offset + 8 + size <= len(buffer)

    def having_timeout(self, timeout: float | None) -> AbstractContextManager[Any]:
        if timeout is not None and self._whole_frame():
            return nullcontext(self.sock)  # nothing will be asked of the socket
        return super().having_timeout(timeout)  # type: ignore[no-any-return]

    def read_frame(self, unpack: Any = unpack) -> tuple[int, int, bytes]:
        """A frame cut from the buffer when it is whole there; else py-amqp's read_frame."""
        buffer, offset = self._buffer, self._offset
        if len(buffer) - offset >= 7:
            frame_type, channel, size = unpack_from(_HEADER, buffer, offset)
            end = offset + 7 + size
            if end < len(buffer) and buffer[end] == FRAME_END:
                self._offset = end + 1
                return frame_type, channel, buffer[offset + 7 : end]
        # Not whole yet, or a bad frame-end: py-amqp reads it (and raises UnexpectedFrame).
        return super().read_frame(unpack)  # type: ignore[no-any-return]


class _Connection(pyamqp.Connection):  # type: ignore[misc]
    def Transport(  # py-amqp's name and signature
        self,
        host: str,
        connect_timeout: float | None,
        ssl: Any = False,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        socket_settings: Any = None,
        **kwargs: Any,
    ) -> Any:
        options = dict(
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            socket_settings=socket_settings,
            **kwargs,
        )
        if ssl:
            return super().Transport(host, connect_timeout, ssl, **options)
        return BufferedTCPTransport(host, connect_timeout=connect_timeout, **options)


class Transport(pyamqp.Transport):  # type: ignore[misc]
    """kombu's `pyamqp` transport over `BufferedTCPTransport`."""

    Connection = _Connection


def connection(url: str, **options: Any) -> Connection:
    """`kombu.Connection(url, **options)`, buffered when the URL is plain AMQP (`amqp://`
    or `pyamqp://`, one host); any other URL gets kombu's own transport for its scheme."""
    scheme = urlparse(url).scheme if "://" in url else ""
    if scheme in ("amqp", "pyamqp") and ";" not in url and "transport" not in options:
        return Connection(url, transport=Transport, **options)
    return Connection(url, **options)
