"""The reader process reads exactly what the collector's thread would read, and losing it
loses nothing: its batches are read here."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from rintik_lite import reader as reader_module
from rintik_lite import services
from rintik_lite.reader import Reader
from rintik_lite.services import Incoming, ReadBatch
from tests.conftest import CORPUS, NOW, envelope, notification


def _corpus_messages() -> list[Incoming]:
    files = sorted(p for p in CORPUS.rglob("*.json") if p.is_file())
    assert len(files) > 50, f"the notification corpus is missing at {CORPUS}"
    messages = [Incoming(p.read_bytes(), "replay") for p in files]
    # and what must be quarantined, with its reason
    messages += [
        Incoming(b"not json", "amqp"),
        Incoming(b'["a list"]', "amqp"),
        Incoming(envelope(notification("compute.instance.create.end", {}, "2026-11-01")), "api"),
        Incoming('{"oslo.version": "1.0", "oslo.message": "{}"}', "amqp"),
    ]
    return messages


def _comparable(batch: ReadBatch) -> tuple[object, ...]:
    return (
        [(id(p.message), p.key, p.notification, p.change, p.body) for p in batch.parsed],
        [(id(m), event_type, reason) for m, event_type, reason in batch.unreadable],
    )


def _same(a: ReadBatch, b: ReadBatch) -> None:
    """Equal, but for the payload, which the reader process does not send back."""
    assert a.messages is b.messages or list(a.messages) == list(b.messages)
    assert len(a.parsed) == len(b.parsed) and len(a.unreadable) == len(b.unreadable)
    for x, y in zip(a.parsed, b.parsed, strict=True):
        assert x.message is y.message and x.key == y.key and x.body == y.body
        assert x.change == y.change
        assert (x.notification.event_type, x.notification.message_id) == (
            y.notification.event_type,
            y.notification.message_id,
        )
        assert (x.notification.publisher_id, x.notification.timestamp) == (
            y.notification.publisher_id,
            y.notification.timestamp,
        )
        assert x.notification.context == y.notification.context
    assert [(id(m), t, r) for m, t, r in a.unreadable] == [
        (id(m), t, r) for m, t, r in b.unreadable
    ]


def test_the_reader_process_reads_what_the_thread_reads() -> None:
    messages = _corpus_messages()
    here = services.read_messages(messages, ("role",))
    assert here.unreadable and here.parsed  # both kinds are compared
    with Reader(("role",)) as reader:
        pending = reader.read(messages)
        there = pending.result()
        assert reader.worker_pids and os.getpid() not in reader.worker_pids
        assert reader.read_here == 0 and reader.failures == 0
    _same(here, there)


def test_a_batch_read_there_records_the_same_ledger(sqlite_url: str) -> None:
    messages = _corpus_messages()
    with Reader() as reader:
        result = services.record_read(reader.read(messages).result(), NOW)
    assert result.received == len(messages)
    assert result.quarantined >= 4 and result.applied > 40


def _wait_dead(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} is still running")


def test_a_worker_killed_with_a_batch_is_replaced_and_the_batch_read_here() -> None:
    messages = _corpus_messages()
    expected = services.read_messages(messages, ())
    with Reader() as reader:
        reader.start()
        (first,) = reader.worker_pids
        os.kill(first, signal.SIGKILL)
        _wait_dead(first)
        pending = reader.read(messages)  # sent to the dead worker, or found it dead
        _same(expected, pending.result())
        assert reader.failures == 1 and reader.read_here == 1
        again = reader.read(messages)  # a new worker reads the next batch
        _same(expected, again.result())
        (second,) = reader.worker_pids
        assert second != first
        assert reader.failures == 0 and reader.read_here == 1  # a good batch resets the count


def test_after_repeated_losses_reading_stays_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "MAX_FAILURES", 2)
    messages = _corpus_messages()[:5]
    expected = services.read_messages(messages, ())
    with Reader() as reader:
        for n in (1, 2):
            reader.start()
            (pid,) = reader.worker_pids
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid)
            _same(expected, reader.read(messages).result())
            assert reader.failures == n
        pending = reader.read(messages)
        assert pending.future is None  # no worker any more: read here
        _same(expected, pending.result())
        assert reader.worker_pids == []


def test_without_processes_nothing_is_started() -> None:
    messages = _corpus_messages()[:3]
    with Reader(processes=False) as reader:
        reader.start()
        pending = reader.read(messages)
        assert pending.future is None and reader.worker_pids == []
        _same(services.read_messages(messages, ()), pending.result())
        assert reader.read_here == 0


def test_close_ends_the_worker() -> None:
    reader = Reader()
    reader.start()
    (pid,) = reader.worker_pids
    reader.close()
    _wait_dead(pid)
    reader.close()  # twice is fine


def test_replay_reads_in_a_process_and_records_the_same(tmp_path: Path) -> None:
    """`rintik-lite replay` with and without the reader process: the same ledger."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    files = sorted(p for p in CORPUS.rglob("*.json") if p.is_file())
    lines = tmp_path / "corpus.jsonl"
    lines.write_bytes(b"".join(p.read_bytes().replace(b"\n", b" ") + b"\n" for p in files))
    dumps = []
    for read_process in ("true", "false"):
        db = tmp_path / f"{read_process}.db"
        env = {
            **os.environ,
            "RINTIK_DATABASE_URL": f"sqlite:///{db}",
            "RINTIK_LEDGER_READ_PROCESS": read_process,
        }
        done = subprocess.run(
            [sys.executable, "-m", "rintik_lite", "replay", str(lines), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        import sqlite3

        conn = sqlite3.connect(db)
        dumps.append(
            (
                done.stdout,
                conn.execute("SELECT entity_id, state FROM entity ORDER BY 1").fetchall(),
                conn.execute(
                    'SELECT entity_id, start, "end", attributes FROM interval ORDER BY 1, 2'
                ).fetchall(),
                conn.execute("SELECT key, observation FROM event ORDER BY 1").fetchall(),
                conn.execute("SELECT reason FROM quarantine ORDER BY 1").fetchall(),
            )
        )
        conn.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0][1]) > 20 and len(dumps[0][3]) > 50
