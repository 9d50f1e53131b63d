"""The Python limit for the ingest benchmark: a bare kombu consumer.

    python bench/kombu_baseline.py URL QUEUE COUNT [--batch 200] [--batch-seconds 0.5]
                                   [--buffered]

It consumes QUEUE as rintik-lite's collector does (kombu, the same prefetch of twice the
batch, no content decoding by kombu), decodes each body as the collector must (the JSON
envelope, then the JSON message inside it), and acknowledges each batch with one
`basic.ack(multiple=True)`; nothing else: no database. It prints `consuming` once the
consumer is attached and `done N` after the last acknowledgement; the benchmark times the
two lines. It stops after COUNT messages, or after 30 s without one.

`--buffered` consumes through rintik-lite's block-reading transport
(rintik_lite/amqp_buffered.py) instead of kombu's own: the same consumer with the
collector's socket reads, printed beside the judged figure so the ratio can be read both ways.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import suppress
from typing import Any

from kombu import Connection, Consumer, Queue


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("count", type=int)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batch-seconds", type=float, default=0.5)
    parser.add_argument("--buffered", action="store_true")
    args = parser.parse_args()
    if args.buffered:
        from rintik_lite.amqp_buffered import connection as connect
    else:
        connect = Connection
    batch: list[Any] = []
    decoded = 0
    deadline = 0.0

    def on_message(message: Any) -> None:
        nonlocal decoded, deadline
        doc = json.loads(message.body)
        if "oslo.message" in doc:
            doc = json.loads(doc["oslo.message"])
        decoded += bool(doc)
        if not batch:
            deadline = time.monotonic() + args.batch_seconds
        batch.append(message)

    acked = 0
    with connect(args.url, connect_timeout=5, heartbeat=30) as conn:
        channel = conn.channel()
        queue = Queue(args.queue, durable=True, auto_delete=False, no_declare=True)
        consumer = Consumer(
            channel,
            queues=[queue],
            on_message=on_message,
            prefetch_count=2 * args.batch,
            accept=None,
        )
        with consumer:
            print("consuming", flush=True)
            idle_since = time.monotonic()
            while acked < args.count and time.monotonic() - idle_since < 30:
                with suppress(TimeoutError):
                    conn.drain_events(timeout=0.5)
                if batch and (len(batch) >= args.batch or time.monotonic() >= deadline):
                    batch[-1].ack(multiple=True)
                    acked += len(batch)
                    batch.clear()
                    idle_since = time.monotonic()
    print(f"done {acked} decoded {decoded}", flush=True)
    return 0 if acked == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
