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
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import amqp.transport
import pytest
from amqp.basic_message import Message
from amqp.exceptions import UnexpectedFrame
from amqp.method_framing import frame_handler
from amqp.serialization import dumps, loads
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


# --- take_deliveries: whole deliveries cut out of the buffer ---------------------------------

CHANNEL, TAG = 1, "rintik-consumer"


@dataclass
class Delivered:
    """One message as py-amqp's frame handler or take_deliveries hands it over."""

    channel: int
    consumer_tag: str
    delivery_tag: int
    body: bytes


def delivery_frames(
    channel: int,
    tag: str,
    delivery_tag: int,
    body: bytes,
    properties: dict,
    body_frames: int = 1,
) -> list[Frame]:
    """basic.deliver, its content header and its body, framed with py-amqp's own encoders."""
    args = dumps("sLbss", (tag, delivery_tag, False, "nova", "notifications.info"))
    content = Message(**properties)
    header = struct.pack(">HHQ", 60, 0, len(body)) + content._serialize_properties()
    if body_frames > 1 and len(body) >= 2:
        pieces = [body[: len(body) // 2], body[len(body) // 2 :]]
    else:
        pieces = [body] if body else []
    return [
        (1, channel, struct.pack(">HH", 60, 60) + args),
        (2, channel, header),
        *((3, channel, piece) for piece in pieces),
    ]


def py_amqp_reads(frames: Sequence[Frame]) -> list[Delivered]:
    """The deliveries py-amqp's own frame handler makes of `frames`."""
    got: list[Delivered] = []

    def on_method(channel: int, method: tuple[int, int], payload: bytes, content: Any) -> None:
        if method == (60, 60):
            (tag, delivery_tag, *_), _ = loads("sLbss", payload, 4)
            body = content.body  # "" when there is none
            got.append(Delivered(channel, tag, delivery_tag, bytes(body) if body else b""))

    handle = frame_handler(SimpleNamespace(bytes_recv=0), on_method)
    for frame in frames:
        handle(frame)
    return got


def fast_then_py_amqp(stream: bytes, limit: int = 10_000) -> tuple[int, list[Delivered], int]:
    """(how many take_deliveries took, what it and then py-amqp delivered of `stream`,
    the frames counted in bytes_recv by take_deliveries)."""
    with transport_on_socket(BufferedTCPTransport) as (transport, _):
        transport._read_buffer = stream
        connection = SimpleNamespace(transport=transport, bytes_recv=0)
        channel = SimpleNamespace(channel_id=CHANNEL, is_closing=False, callbacks={TAG: None})
        taken: list[amqp_buffered.Delivery] = []
        count = amqp_buffered.take_deliveries(connection, channel, taken.append, limit)
        rest = transport._read_buffer
    assert count == len(taken)
    assert all(d.channel is channel and not d.errors and not d.headers for d in taken)
    fast = [Delivered(CHANNEL, TAG, d.delivery_tag, d.body) for d in taken]
    return count, fast + py_amqp_reads(whole_frames(rest)), connection.bytes_recv


def whole_frames(stream: bytes) -> list[Frame]:
    """The frames whole at the front of `stream`."""
    frames: list[Frame] = []
    offset = 0
    while len(stream) - offset >= 8:
        kind, channel, size = struct.unpack_from(">BHI", stream, offset)
        if len(stream) - offset < 8 + size:
            break
        frames.append((kind, channel, stream[offset + 7 : offset + 7 + size]))
        offset += 8 + size
    return frames


KOMBU_PROPERTIES = {  # what kombu's Producer sends for oslo: a headers table, empty
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "application_headers": {},
    "delivery_mode": 2,
    "priority": 0,
}

delivery_strategy = st.tuples(
    st.just("delivery"),
    st.sampled_from([CHANNEL] * 6 + [2]),
    st.sampled_from([TAG] * 6 + ["someone-else"]),
    st.binary(max_size=3000),
    st.sampled_from(
        [
            KOMBU_PROPERTIES,
            KOMBU_PROPERTIES,
            KOMBU_PROPERTIES,
            {},
            {"content_type": "application/json"},
            {**KOMBU_PROPERTIES, "application_headers": {"compression": "application/x-gzip"}},
            {**KOMBU_PROPERTIES, "correlation_id": "x", "app_id": "nova"},
        ]
    ),
    st.sampled_from([1] * 6 + [2]),
)
item_strategy = st.one_of(*[delivery_strategy] * 6, st.just(("heartbeat",)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(item_strategy, max_size=12), st.none() | st.integers(0, 40_000))
def test_deliveries_taken_from_the_buffer_are_what_py_amqp_would_deliver(
    items: list[tuple], cut: int | None
) -> None:
    """Whatever the stream (deliveries on another channel or to another consumer, with
    headers, empty or in two body frames, heartbeats between), and wherever the buffer ends:
    take_deliveries and then py-amqp deliver exactly what py-amqp alone delivers, and
    take_deliveries takes every plain delivery at the front, whole in the buffer."""
    frames: list[Frame] = []
    eligible: list[bool] = []  # per delivery, in order: one take_deliveries must take
    for n, item in enumerate(items):
        if item[0] == "heartbeat":
            frames.append((8, 0, b""))
            eligible.append(False)
            continue
        _, channel, tag, body, properties, body_frames = item
        frames += delivery_frames(channel, tag, n, body, properties, body_frames)
        headers = properties.get("application_headers")
        eligible.append(
            channel == CHANNEL
            and tag == TAG
            and bool(body)
            and (body_frames == 1 or len(body) < 2)
            and not headers
        )
    stream = encode(frames)
    if cut is not None:  # the buffer ends there
        stream = stream[: cut % (len(stream) + 1)]
    expected = py_amqp_reads(whole_frames(stream))
    count, delivered, counted = fast_then_py_amqp(stream)
    assert delivered == expected
    assert counted == 3 * count
    leading = next((n for n, ok in enumerate(eligible) if not ok), len(eligible))
    # The leading plain deliveries whole in the cut stream are all taken.
    whole_deliveries = sum(1 for d in expected[:leading] if d.delivery_tag < leading)
    assert count == min(leading, whole_deliveries)


def test_take_deliveries_stops_at_its_limit_and_leaves_the_rest_in_order() -> None:
    frames = [
        f for n in range(5) for f in delivery_frames(CHANNEL, TAG, n, b"%d" % n, KOMBU_PROPERTIES)
    ]
    count, delivered, _ = fast_then_py_amqp(encode(frames), limit=2)
    assert count == 2
    assert [(d.delivery_tag, d.body) for d in delivered] == [(n, b"%d" % n) for n in range(5)]


def test_take_deliveries_leaves_a_closing_channel_and_other_transports_alone() -> None:
    stream = encode(delivery_frames(CHANNEL, TAG, 1, b"{}", KOMBU_PROPERTIES))
    channel = SimpleNamespace(channel_id=CHANNEL, is_closing=False, callbacks={TAG: None})
    with transport_on_socket(BufferedTCPTransport) as (transport, _):
        transport._read_buffer = stream
        closing = SimpleNamespace(**{**vars(channel), "is_closing": True})
        connection = SimpleNamespace(transport=transport, bytes_recv=0)
        assert amqp_buffered.take_deliveries(connection, closing, print, 10) == 0
        assert amqp_buffered.take_deliveries(connection, channel, lambda d: None, 10) == 1
    with transport_on_socket(amqp.transport.TCPTransport) as (transport, _):
        connection = SimpleNamespace(transport=transport, bytes_recv=0)
        assert amqp_buffered.take_deliveries(connection, channel, print, 10) == 0
    with Connection("memory://") as memory:  # what the demo consumes: no py-amqp at all
        assert amqp_buffered.take_deliveries(memory.connection, memory.channel(), print, 9) == 0


def test_real_rabbitmq_deliveries_taken_from_the_buffer_are_the_published_ones() -> None:
    """kombu publishes notification-sized bodies (some with headers, some larger than a
    frame) to the real RabbitMQ; a consumer that takes what it can from the buffer and lets
    py-amqp and kombu deliver the rest gets every body, in order, and most of the plain ones
    through take_deliveries."""
    sizes = [2048, 1, 131_072 + 5, 2000, 700] * 40
    bodies = [uuid.uuid4().bytes * (n // 16) + b"z" * (n % 16) for n in sizes]
    queue = f"test-deliveries-{uuid.uuid4().hex[:8]}"
    publisher = Connection(BROKER_URL, connect_timeout=5)
    try:
        with publisher.channel() as channel:
            Queue(queue, durable=True, channel=channel).declare()
            producer = Producer(channel)
            for n, body in enumerate(bodies):
                producer.publish(
                    body,
                    routing_key=queue,
                    headers={"n": n} if n % 7 == 0 else {},
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    serializer=None,
                )
        got: list[bytes] = []
        fast = 0
        with amqp_buffered.connection(BROKER_URL) as conn:
            channel = conn.channel()
            messages: list[Any] = []
            consumer = Consumer(
                channel,
                queues=[Queue(queue, no_declare=True)],
                on_message=messages.append,
                prefetch_count=100,
                accept=None,
            )
            with consumer:
                while len(got) < len(bodies):
                    taken = amqp_buffered.take_deliveries(
                        conn.connection, channel, messages.append, 50
                    )
                    fast += taken
                    if not taken:
                        with suppress(TimeoutError):
                            conn.drain_events(timeout=5)
                    for message in messages:
                        body = message.body
                        got.append(body.encode() if isinstance(body, str) else body)
                    if messages:
                        messages[-1].ack(multiple=True)
                        messages.clear()
        assert got == bodies
        plain = sum(1 for n, size in enumerate(sizes) if n % 7 and size < 131_072)
        assert plain // 2 < fast <= plain
    finally:
        with publisher.channel() as channel, suppress(Exception):
            channel.queue_delete(queue)
        publisher.release()
