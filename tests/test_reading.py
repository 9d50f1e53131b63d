"""Reading batches in reader processes (`rintik_lite.reading`) and `replay --readers`.

What a reader process gives back must be exactly what reading in this process gives, in
the same order, so that replay records the same events in the same transactions: checked
on the shared corpus, on a stream of a few thousand notifications, and on the database the
command leaves behind, compared table by table. Forked readers are tested through the
command as a real subprocess (the only way it forks), the rest in this process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rintik_lite import reading, services
from rintik_lite.ledger.notifications import Observation
from tests.conftest import CORPUS, envelope
from tests.faults.harness import live_processes
from tests.faults.workload import stream
from tests.test_cli import rintik


def corpus_bodies() -> list[bytes]:
    return [path.read_bytes() for path in sorted(CORPUS.rglob("*.json"))]


def stream_bodies(total: int) -> list[bytes]:
    """About `total` notifications of instances and volumes (`faults.workload.stream`)."""
    resources = {"instances": max(2, total // 100), "volumes": max(1, total // 200)}
    return [envelope(message).encode() for _, message in stream(total=total, **resources)]


def times_of(parsed: services._Parsed) -> list[datetime]:
    change = parsed.change
    found = [parsed.time]
    if isinstance(change, Observation):
        found += [change.time, change.since, change.until]
    return [t for t in found if t is not None]


def test_a_packed_batch_unpickles_to_the_batch_it_was_made_of() -> None:
    messages = [services.Incoming(body, "replay") for body in corpus_bodies()]
    messages.append(services.Incoming(b"{not json", "replay"))
    read = services.read_messages(messages, ["metering.stack"])
    assert len(read.parsed) > 100 and read.unreadable  # the corpus has both kinds
    assert any(isinstance(p.change, Observation) for p in read.parsed)
    assert any(p.change is not None and not isinstance(p.change, Observation) for p in read.parsed)

    back = services.ReadBatch.unpacked(pickle.loads(pickle.dumps(read.packed())))

    assert back == read
    assert [type(p.change) for p in back.parsed] == [type(p.change) for p in read.parsed]
    # The ledger's fast paths test `tzinfo is UTC`: the zone must come back as that object.
    assert all(t.tzinfo is UTC for p in back.parsed for t in times_of(p))
    assert sum(len(times_of(p)) for p in back.parsed) > 200


def test_the_packed_form_holds_no_object_of_ours() -> None:
    """Plain tuples, strings, numbers, times and dicts: what pickle rebuilds in C."""
    bodies = stream_bodies(300)
    read = services.read_messages([services.Incoming(b, "replay") for b in bodies], [])
    received, rows, unreadable = read.packed()
    assert received == len(bodies) > 250 and not unreadable

    def plain(value: Any) -> bool:
        if isinstance(value, tuple | list):
            return type(value) in (tuple, list) and all(plain(v) for v in value)
        if isinstance(value, dict):
            return type(value) is dict and all(plain(v) for v in value.values())
        return value is None or type(value) in (str, int, float, bool, datetime)

    assert all(plain(row) for row in rows)


def batches_of(bodies: Sequence[bytes], size: int) -> list[list[bytes]]:
    return [list(bodies[i : i + size]) for i in range(0, len(bodies), size)]


def replayed(bodies: Sequence[bytes]) -> list[services.Incoming]:
    return [services.Incoming(b, "replay") for b in bodies]


@pytest.mark.parametrize("readers", [0, 1, 2])
def test_readers_give_back_each_batch_as_read_here_and_in_order(readers: int) -> None:
    batches = [replayed(b) for b in batches_of(stream_bodies(2_000) + corpus_bodies(), 150)]
    batches[3].append(services.Incoming(b"\x1f\x8b", "amqp", "body does not decompress"))
    here = [services.read_messages(messages, ["a"]) for messages in batches]
    with reading.Readers(readers) as pool:
        read = list(pool.read(iter(batches), ["a"]))
    assert read == here
    assert read[3].unreadable[-1][2] == "body does not decompress"
    assert len(read) == len(batches) > 10


@pytest.mark.parametrize("readers", [0, 1])
def test_readers_read_the_spans_of_files_they_are_given(tmp_path: Path, readers: int) -> None:
    """A batch may name lines of a file (`replay`'s): the reader reads them itself, and
    gives back what reading their bodies here gives."""
    bodies = stream_bodies(600)
    path = tmp_path / "n.jsonl"
    data = b"\n".join(bodies[:300]) + b"\n\n  \n" + b"\n".join(bodies[300:])
    path.write_bytes(data)
    middle = data.index(bodies[150])
    spans = [reading.FileSpan(str(path), 0, middle), reading.FileSpan(str(path), middle, len(data))]
    extra = services.Incoming(b"{broken", "replay")
    batches: list[list[reading.Piece]] = [[spans[0]], [extra, spans[1]]]
    here = [
        services.read_messages(replayed(bodies[:150]), []),
        services.read_messages([extra, *replayed(bodies[150:])], []),
    ]
    with reading.Readers(readers) as pool:
        assert list(pool.read(iter(batches), [])) == here
    assert len(here[1].parsed) == len(bodies) - 150 and len(here[1].unreadable) == 1


def test_a_span_whose_file_is_gone_raises_to_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not lost in the reader: read here again, it raises what reading the file raises."""
    span = reading.FileSpan(str(tmp_path / "gone.jsonl"), 0, 10)
    with reading.Readers(1) as pool, pytest.raises(FileNotFoundError):
        list(pool.read(iter([[span]]), []))
    assert "a reader process cannot read a batch" in caplog.text


def test_readers_read_at_most_one_batch_ahead_each() -> None:
    """Batches are taken from the caller's iterator only as the ones before are given back
    (memory stays bounded however many files a replay is given)."""
    taken: list[int] = []
    bodies = stream_bodies(200)
    assert len(bodies) >= 200

    def batches() -> Iterator[list[services.Incoming]]:
        for n in range(8):
            taken.append(n)
            yield replayed(bodies[n * 25 : (n + 1) * 25])

    with reading.Readers(2) as pool:
        given = 0
        for _ in pool.read(batches(), []):
            given += 1
            assert len(taken) <= given + 2
    assert given == 8


def reader_pids(before: set[int]) -> list[int]:
    """The reader processes started since `before` was taken."""
    return [
        child.pid
        for child in multiprocessing.active_children()
        if child.pid is not None and child.pid not in before
    ]


def test_the_batch_of_a_reader_that_dies_is_read_here_and_another_reader_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a wait for ever (as a `multiprocessing.Pool` would), not an error: the batches
    come back all read, as they would be here, and the batch after goes to a new reader."""
    batches = [replayed(b) for b in batches_of(stream_bodies(400), 100)]
    assert len(batches) >= 4
    here = [services.read_messages(messages, []) for messages in batches]
    before = {p.pid for p in multiprocessing.active_children()}

    with reading.Readers(1) as pool:
        first = reader_pids(before)
        assert len(first) == 1  # started when made, not at the first batch

        def batches_killing_the_reader() -> Iterator[list[services.Incoming]]:
            yield batches[0]
            for pid in reader_pids(before):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)  # the executor sees it die
            yield from batches[1:]

        read = list(pool.read(batches_killing_the_reader(), []))
        after = reader_pids(before)

    assert read == here
    assert len(after) == 1 and after != first
    assert "a reader process died" in caplog.text


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger's tables, less what says when it was written."""
    connection = sqlite3.connect(path)
    try:
        return {
            "event": connection.execute(
                "SELECT key, message_id, event_type, publisher_id, source, event_time, body,"
                " entity_id, observation FROM event ORDER BY id"
            ).fetchall(),
            "entity": connection.execute("SELECT * FROM entity ORDER BY entity_id").fetchall(),
            "interval": connection.execute(
                "SELECT * FROM interval ORDER BY entity_id, start"
            ).fetchall(),
            "quarantine": connection.execute(
                "SELECT source, event_type, reason, body FROM quarantine ORDER BY id"
            ).fetchall(),
        }
    finally:
        connection.close()


def test_replay_records_the_same_whatever_its_readers(tmp_path: Path) -> None:
    """As a real subprocess, which forks its readers: 0, 1 and 2 readers (as many as the
    machine allows) leave the same rows in the same order (ids included), over batches of
    400 messages, the corpus's bodies and one that cannot be read."""
    folder = tmp_path / "in"
    folder.mkdir()
    bodies = stream_bodies(3_000)
    (folder / "a.jsonl").write_bytes(b"\n".join(bodies[:1700]) + b"\n{broken\n")
    (folder / "b.jsonl").write_bytes(b"\n".join(bodies[1700:] + bodies[:50]) + b"\n")
    for n, body in enumerate(corpus_bodies()):
        (folder / f"c-{n:03d}.json").write_bytes(body)

    def replayed(readers: int) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
        path = tmp_path / f"readers-{readers}.db"
        env = {"RINTIK_DATABASE_URL": f"sqlite:///{path}"}
        args = ["replay", str(folder), "--batch", "400", "--readers", str(readers), "--json"]
        result = rintik(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout), table_rows(path)

    summary, rows = replayed(0)
    assert summary["duplicate"] >= 50 and summary["quarantined"] >= 1
    assert len(rows["interval"]) > 300
    assert replayed(1) == (summary, rows)
    assert replayed(2) == (summary, rows)


def session_pids(session: int) -> list[int]:
    """The processes of a session (`start_new_session`) still alive."""
    return [pid for pid, fields in live_processes().items() if int(fields[3]) == session]


def _replay_under_way(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, int]:
    """`replay` of 20,000 notifications in batches of 200 with its readers, in a session
    of its own, once it has committed its first batches: (the process, its database, the
    notifications)."""
    folder = tmp_path / "in"
    folder.mkdir()
    bodies = stream_bodies(20_000)
    for n, part in enumerate(batches_of(bodies, 1_000)):
        (folder / f"part-{n:02d}.jsonl").write_bytes(b"\n".join(part) + b"\n")
    path = tmp_path / "r.db"
    env = {**os.environ, "RINTIK_DATABASE_URL": f"sqlite:///{path}"}
    command = [sys.executable, "-m", "rintik_lite", "replay", str(folder), "--batch", "200"]
    process = subprocess.Popen(
        [*command, "--readers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    processes = 1 + reading.usable_readers(2)  # the command and its readers
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if len(session_pids(process.pid)) == processes and path.exists():
                try:
                    with sqlite3.connect(path) as connection:
                        stored = connection.execute("SELECT COUNT(*) FROM event").fetchone()[0]
                except sqlite3.OperationalError:  # not made yet
                    stored = 0
                if stored >= 400:
                    break
            time.sleep(0.05)
        assert process.poll() is None, "replay ended before it could be interrupted"
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return process, path, len(bodies)


def _session_ended(session: int, seconds: float = 10.0) -> list[int]:
    """The processes of `session` still alive after up to `seconds` (none, once it ended)."""
    deadline = time.monotonic() + seconds
    while session_pids(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    return session_pids(session)


def test_ctrl_c_stops_replay_and_its_readers(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, once the first batches
    are committed: the command stops without a traceback, what it committed stays, and no
    reader process is left behind."""
    process, path, sent = _replay_under_way(tmp_path)
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0
    assert "Traceback" not in stderr, stderr
    assert _session_ended(process.pid) == []
    with sqlite3.connect(path) as connection:
        stored = connection.execute("SELECT COUNT(*) FROM event").fetchone()[0]
    assert 400 <= stored < sent


def test_readers_end_with_a_replay_killed_with_sigkill(tmp_path: Path) -> None:
    """SIGKILL to the command alone, as the OOM killer sends it: no handler of its runs,
    and its readers end on their own at once. (They wait for their next batch on a pipe
    whose writing end they hold themselves, and waited for ever before they watched it.)"""
    process, _, _ = _replay_under_way(tmp_path)
    readers = [pid for pid in session_pids(process.pid) if pid != process.pid]
    try:
        assert len(readers) == reading.usable_readers(2) >= 1
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert _session_ended(process.pid) == []
    finally:
        os.killpg(process.pid, signal.SIGKILL)
