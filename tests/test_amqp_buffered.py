"""The block-reading py-amqp transport: the same frames as py-amqp's own, over real sockets
(a socket pair for byte-level control, the real RabbitMQ for everything together)."""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import amqp.transport
import pytest
from amqp.exceptions import UnexpectedFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Consumer, Producer, Queue

from rintik_lite import amqp_buffered
from rintik_lite.amqp_buffered import BufferedTCPTransport
from tests.conftest import BROKER_URL

Frame = tuple[int, int, bytes]


def encode(frames: Sequence[Frame], end: int = 206) -> bytes:
    return b"".join(
        struct.pack(">BHI", kind, channel, len(payload)) + payload + bytes([end])
        for kind, channel, payload in frames
    )


@contextmanager
def transport_on_socket(
    cls: type[amqp.transport.TCPTransport],
) -> Iterator[tuple[amqp.transport.TCPTransport, socket.socket]]:
    """A transport reading one end of a real socket pair; the test writes the other end."""
    ours, theirs = socket.socketpair()
    transport = cls("127.0.0.1:5672")  # the address is never used: the socket is given
    transport.sock = ours
    transport._setup_transport()
    transport.connected = True
    try:
        yield transport, theirs
    finally:
        ours.close()
        theirs.close()


def read_all(
    cls: type[amqp.transport.TCPTransport], stream: bytes, cuts: Sequence[int], count: int
) -> list[Frame]:
    """The frames `cls` reads while another thread writes `stream` in pieces cut at `cuts`."""
    with transport_on_socket(cls) as (transport, theirs):
        points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})

        def write() -> None:
            for start, end in itertools.pairwise(points):
                theirs.sendall(stream[start:end])

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        frames = []
        for _ in range(count):
            with transport.having_timeout(10):
                kind, channel, payload = transport.read_frame()
            frames.append((kind, channel, bytes(payload)))
        writer.join(10)
        return frames


frames_strategy = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 3, 8]),
        st.integers(0, 65535),
        st.one_of(
            st.binary(max_size=64),
            st.binary(min_size=1000, max_size=3000),
            st.integers(0, 200_000).map(lambda n: bytes(range(256)) * (n // 256)),
        ),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=frames_strategy, cuts=st.lists(st.integers(0, 10**7), max_size=30))
def test_the_same_frames_as_py_amqp_however_the_bytes_arrive(
    frames: list[Frame], cuts: list[int]
) -> None:
    stream = encode(frames)
    buffered = read_all(BufferedTCPTransport, stream, cuts, len(frames))
    assert buffered == frames
    assert read_all(amqp.transport.TCPTransport, stream, cuts, len(frames)) == buffered


def test_a_frame_cut_by_a_timeout_is_read_whole_afterwards() -> None:
    frames = [(1, 1, b"method"), (3, 1, b"x" * 5000), (1, 1, b"after")]
    stream = encode(frames)
    with transport_on_socket(BufferedTCPTransport) as (transport, theirs):
        # The first frame and a part of the second, then nothing: the read times out.
        theirs.sendall(stream[: 15 + 7 + 2000])
        with transport.having_timeout(5):
            assert transport.read_frame() == frames[0]
        with pytest.raises(socket.timeout), transport.having_timeout(0.05):
            transport.read_frame()
        # A timeout in the header itself is kept too.
        theirs.sendall(stream[15 + 7 + 2000 : 15 + 7 + 5000 + 1 + 3])
        with transport.having_timeout(5):
            assert transport.read_frame() == frames[1]
        with pytest.raises(socket.timeout), transport.having_timeout(0.05):
            transport.read_frame()
        theirs.sendall(stream[15 + 7 + 5000 + 1 + 3 :])
        with transport.having_timeout(5):
            assert transport.read_frame() == frames[2]


def test_bytes_received_before_a_timeout_are_kept() -> None:
    # Within one read: some bytes come (and are taken), then the socket times out.
    frames = [(1, 1, b"method"), (3, 1, bytes(range(256)) * 20)]
    stream = encode(frames)
    with transport_on_socket(BufferedTCPTransport) as (transport, theirs):
        theirs.sendall(stream[:1000])
        with transport.having_timeout(5):
            assert transport.read_frame() == frames[0]
        later = threading.Timer(0.05, theirs.sendall, (stream[1000:3000],))
        later.start()
        with pytest.raises(socket.timeout), transport.having_timeout(0.5):
            transport.read_frame()
        later.join()
        theirs.sendall(stream[3000:])
        with transport.having_timeout(5):
            assert transport.read_frame() == frames[1]


def test_a_frame_short_of_its_last_octet_waits_with_the_timeout() -> None:
    # In the buffer whole but for its frame-end octet: the read must still time out, not
    # block (the frame before it brings it into the buffer).
    stream = encode([(1, 1, b"method"), (3, 1, b"z" * 100)])
    with transport_on_socket(BufferedTCPTransport) as (transport, theirs):
        theirs.sendall(stream[:-1])
        with transport.having_timeout(5):
            assert transport.read_frame() == (1, 1, b"method")
        outcome: list[BaseException | None] = []

        def read() -> None:
            try:
                with transport.having_timeout(0.05):
                    transport.read_frame()
            except BaseException as exc:  # the outcome is what the test looks at
                outcome.append(exc)
            else:
                outcome.append(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(5)
        assert outcome and isinstance(outcome[0], socket.timeout), outcome
        theirs.sendall(stream[-1:])
        with transport.having_timeout(5):
            assert transport.read_frame() == (3, 1, b"z" * 100)


def test_a_bad_frame_end_is_refused_as_py_amqp_refuses_it() -> None:
    stream = encode([(1, 1, b"method")], end=0)
    for cls in (amqp.transport.TCPTransport, BufferedTCPTransport):
        with transport_on_socket(cls) as (transport, theirs):
            theirs.sendall(stream + b"more bytes after it")
            with pytest.raises(UnexpectedFrame), transport.having_timeout(5):
                transport.read_frame()


def test_a_connection_closed_inside_a_frame_is_an_error() -> None:
    stream = encode([(1, 1, b"whole"), (3, 1, b"y" * 3000)])
    with transport_on_socket(BufferedTCPTransport) as (transport, theirs):
        theirs.sendall(stream[:-100])
        theirs.shutdown(socket.SHUT_WR)
        with transport.having_timeout(5):
            assert transport.read_frame() == (1, 1, b"whole")
        with pytest.raises(OSError, match="unexpectedly closed"), transport.having_timeout(5):
            transport.read_frame()
        assert not transport.connected  # as py-amqp marks it, so kombu reconnects


def test_only_plain_amqp_urls_are_buffered() -> None:
    def transport_of(url: str) -> object:
        return amqp_buffered.connection(url).transport_cls

    assert transport_of("amqp://guest:guest@127.0.0.1:5672//") is amqp_buffered.Transport
    assert transport_of("pyamqp://guest:guest@127.0.0.1:5672//") is amqp_buffered.Transport
    # TLS, other transports and failover lists keep what kombu picks for them.
    assert transport_of("amqps://guest:guest@127.0.0.1:5671//") is not amqp_buffered.Transport
    assert transport_of("memory://") is not amqp_buffered.Transport
    failover = "amqp://guest:guest@127.0.0.1:5672//;amqp://guest:guest@127.0.0.1:5673//"
    assert transport_of(failover) is not amqp_buffered.Transport


def _consume(
    connection: Connection, queue: str, count: int
) -> tuple[str, list[tuple[bytes, dict]]]:
    """(the py-amqp transport's class name, [(body, properties and headers)])."""
    got: list[tuple[bytes, dict]] = []
    with connection as conn:
        channel = conn.channel()
        messages: list = []

        def on_message(message: object) -> None:
            messages.append(message)

        consumer = Consumer(
            channel,
            queues=[Queue(queue, no_declare=True)],
            on_message=on_message,
            prefetch_count=50,
            accept=None,
        )
        with consumer:
            while len(got) < count:
                with suppress(TimeoutError):
                    conn.drain_events(timeout=5)
                for message in messages:
                    got.append((message.body, dict(message.properties, **message.headers)))
                if messages:
                    messages[-1].ack(multiple=True)
                    messages.clear()
        used = type(conn.connection.transport).__name__
    return used, got


def test_real_rabbitmq_delivers_the_same_messages_through_both_transports() -> None:
    # Empty, tiny, notification-sized and larger than a frame (RabbitMQ's frame_max is
    # 128 KB: the body comes in several frames), with headers and properties.
    sizes = [0, 1, 2048, 131_072 * 2 + 17, 5, 70_000] * 20
    bodies = [uuid.uuid4().bytes * (n // 16) + b"z" * (n % 16) for n in sizes]
    queues = [f"test-buffered-{uuid.uuid4().hex[:8]}-{side}" for side in ("stock", "ours")]
    publisher = Connection(BROKER_URL, connect_timeout=5)
    try:
        with publisher.channel() as channel:
            for name in queues:
                Queue(name, durable=True, channel=channel).declare()
            producer = Producer(channel)
            for n, body in enumerate(bodies):
                for name in queues:
                    producer.publish(
                        body,
                        routing_key=name,
                        headers={"n": n, "compression": None},
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        serializer=None,
                    )
        stock_transport, stock = _consume(Connection(BROKER_URL), queues[0], len(bodies))
        ours_transport, ours = _consume(
            amqp_buffered.connection(BROKER_URL), queues[1], len(bodies)
        )
        assert (stock_transport, ours_transport) == ("TCPTransport", "BufferedTCPTransport")
        # py-amqp hands a utf-8 body over as text when it decodes: the same for both.
        assert [b.encode() if isinstance(b, str) else b for b, _ in ours] == bodies
        assert [body for body, _ in ours] == [body for body, _ in stock]
        strip = ("delivery_tag", "delivery_info")
        assert [{k: v for k, v in p.items() if k not in strip} for _, p in ours] == [
            {k: v for k, v in p.items() if k not in strip} for _, p in stock
        ]
    finally:
        with publisher.channel() as channel:
            for name in queues:
                with suppress(Exception):
                    channel.queue_delete(name)
        publisher.release()
