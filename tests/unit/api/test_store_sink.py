"""The sync-mode alert-store writer on SQLite: batching, flush on stop, spool and replay.

Each test counts what reached the store against what was submitted: every transaction exactly
once (the store's primary key makes "more than once" impossible; "not at all" is the failure).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.api.store_doubles import (
    RecordingStore,
    eventually,
    sample,
    scored,
    submit,
    writer_of,
)

from fraudrisk.alerts.store import AlertStore
from fraudrisk.api.store_spool import OPEN, REJECTED_DIR, SEALED, ScoreSpool, decode, encode


@pytest.fixture()
def store(tmp_path: Path) -> RecordingStore:
    return RecordingStore(AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}"))


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SEALED}")) + sorted(folder.glob(f"*{OPEN}"))


def test_writes_are_batched_by_size_and_by_time(store: RecordingStore, tmp_path: Path) -> None:
    writer = writer_of(lambda: store, tmp_path / "spool", batch_size=50, flush_interval_s=0.3)
    store.blocking = True  # hold the writer at its first write while the queue fills
    writer.start()
    try:
        submit(writer, scored([0]))
        eventually(store.entered.is_set, what="the first write")
        for n in range(20):  # 200 records in requests of 10
            submit(writer, scored(range(1 + 10 * n, 11 + 10 * n)))
        store.release.set()
        eventually(lambda: len(store.ids()) == 201, what="all 201 records stored")
        assert store.sizes[0] == 1 and store.sizes[1:] == [50, 50, 50, 50]
        began = time.monotonic()
        submit(writer, scored([500, 501]))  # a trickle waits for the flush interval, no longer
        eventually(lambda: 501 in store.ids(), what="the trickle stored")
        assert 0.2 <= time.monotonic() - began < 3.0
    finally:
        writer.close()
    assert store.threads == {"api-store-writer"}


def test_close_flushes_what_waits_without_waiting_for_the_interval(
    store: RecordingStore, tmp_path: Path
) -> None:
    writer = writer_of(lambda: store, tmp_path / "spool", flush_interval_s=30.0)
    writer.start()
    for n in range(5):
        submit(writer, scored(range(10 * n, 10 * n + 10), "decline" if n % 2 else "approve"))
    began = time.monotonic()
    writer.close()
    assert time.monotonic() - began < 5.0
    assert store.ids() == list(range(50))
    assert store.ids("alerts") == [i for i in range(50) if (i // 10) % 2]
    assert not segments(tmp_path / "spool")


def test_a_store_that_cannot_be_opened_spools_then_replays(tmp_path: Path) -> None:
    """The database's folder does not exist yet: SQLite cannot open it (as a server down)."""
    folder = tmp_path / "not-yet"
    registry = CollectorRegistry()
    writer = writer_of(
        lambda: AlertStore(f"sqlite:///{folder / 'alerts.db'}"), tmp_path / "spool", registry
    )
    writer.start()
    try:
        for n in range(3):
            submit(writer, scored(range(100 * n, 100 * n + 30)))
        eventually(
            lambda: sample(registry, "fraudrisk_api_store_spooled_total", reason="store_down") == 90
        )
        assert writer.state == "spooling" and writer.spool.pending == 90
        lines = b"".join(path.read_bytes() for path in segments(tmp_path / "spool"))
        assert sorted(decode(lines.splitlines())[0].transaction_id) == [
            i for n in range(3) for i in range(100 * n, 100 * n + 30)
        ]
        folder.mkdir()  # the database is back
        eventually(
            lambda: sample(registry, "fraudrisk_api_store_written_total", path="replay") == 90
        )
        submit(writer, scored([999]))
        eventually(
            lambda: sample(registry, "fraudrisk_api_store_written_total", path="direct") == 1
        )
    finally:
        writer.close()
    stored = AlertStore(f"sqlite:///{folder / 'alerts.db'}")
    assert stored.count() == 91 and stored.count("alerts") == 91
    assert writer.state == "ok" and not segments(tmp_path / "spool")
    assert sample(registry, "fraudrisk_api_store_write_errors_total", kind="unavailable") >= 1
    assert sample(registry, "fraudrisk_api_store_lost_total") == 0


def test_an_outage_mid_stream_loses_nothing_and_keeps_the_order(
    store: RecordingStore, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    writer = writer_of(lambda: store, tmp_path / "spool", registry)
    writer.start()
    try:
        submit(writer, scored(range(0, 10)))
        eventually(lambda: len(store.ids()) == 10)
        store.down.set()
        submit(writer, scored(range(10, 20), "review"))
        submit(writer, scored(range(15, 25), "decline"))  # 15..19 again, scored differently
        eventually(lambda: writer.spool.pending == 20, what="both batches spooled")
        assert writer.state == "spooling"
        store.down.clear()
        submit(writer, scored(range(15, 30), "approve"))  # after the spool: must not win
        eventually(lambda: len(store.ids()) == 30, what="spool replayed, then the new batch")
    finally:
        writer.close()
    assert store.ids() == list(range(30))
    decisions = {r["transaction_id"]: r["decision"] for r in store.store.top_alerts(100)}
    assert all(decisions[i] == "review" for i in range(10, 20))  # first write wins
    assert all(decisions[i] == "decline" for i in range(20, 25))
    assert sample(registry, "fraudrisk_api_store_queued_total") == 45
    assert sample(registry, "fraudrisk_api_store_lost_total") == 0


def test_a_replayed_segment_changes_nothing(store: RecordingStore, tmp_path: Path) -> None:
    """Records already stored, and a segment replayed twice (a crash before its removal)."""
    spool = ScoreSpool(tmp_path / "spool")
    first = scored(range(0, 20), "decline")
    writer = writer_of(lambda: store, tmp_path / "spool")
    store.store.write_columns(first.columns())
    spool.append(scored(range(10, 40), "review").columns(), durable=True)
    spool.seal()
    (segment,) = segments(tmp_path / "spool")
    kept = shutil.copy(segment, tmp_path / "copy")
    writer.start()
    # The first replay is over only once its segment is gone and its records are counted off:
    # a segment put back before that count would be counted off with it and never replayed.
    eventually(
        lambda: (
            len(store.ids()) == 40 and not segments(tmp_path / "spool") and not writer.spool.pending
        )
    )
    # As if the process died after the writes, before the unlink. Put back in one rename: the
    # running writer may take the segment the moment it appears (a copy in place races it).
    restored = shutil.copy(kept, tmp_path / "restored")
    os.replace(restored, segment)
    writer.spool.recover()
    eventually(lambda: not segments(tmp_path / "spool"), what="the segment replayed again")
    writer.close()
    assert store.ids() == list(range(40)) and store.ids("alerts") == list(range(40))
    decisions = {r["transaction_id"]: r["decision"] for r in store.store.top_alerts(100)}
    assert {decisions[i] for i in range(20)} == {"decline"}


def test_a_segment_left_open_by_a_dead_process_is_replayed_at_start(
    store: RecordingStore, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    good = encode(scored(range(5)).columns())
    (folder / f"00000000000000000001-4242-000001{OPEN}").write_bytes(good + b'{"transaction_id": 9')
    registry = CollectorRegistry()
    writer = writer_of(lambda: store, folder, registry)
    writer.start()
    eventually(lambda: len(store.ids()) == 5, what="the orphaned segment replayed")
    writer.close()
    (rejected,) = (folder / REJECTED_DIR).glob(f"*{SEALED}")
    assert rejected.read_bytes() == b'{"transaction_id": 9\n'  # the torn line, kept for people
    assert "unreadable" in rejected.with_suffix(".reason").read_text()
    assert sample(registry, "fraudrisk_api_store_rejected_total") == 1
    assert not segments(folder)


def test_records_the_database_refuses_are_set_aside_and_the_rest_stored(
    store: RecordingStore, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    store.refused = {13}
    writer = writer_of(lambda: store, tmp_path / "spool", registry)
    writer.start()
    submit(writer, scored(range(40)))
    writer.close()
    assert store.ids() == [i for i in range(40) if i != 13]
    (rejected,) = (tmp_path / "spool" / REJECTED_DIR).glob(f"*{SEALED}")
    assert decode(rejected.read_bytes().splitlines())[0].transaction_id == [13]
    assert sample(registry, "fraudrisk_api_store_rejected_total") == 1
    assert writer.state == "ok"


def test_a_full_queue_spools_on_the_request_path(store: RecordingStore, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store.blocking = True
    writer = writer_of(lambda: store, tmp_path / "spool", registry, queue_size=10)
    writer.start()
    try:
        submit(writer, scored(range(0, 10)))
        eventually(store.entered.is_set, what="the writer busy")
        submit(writer, scored(range(10, 20)))  # fills the queue
        began = time.monotonic()
        submit(writer, scored(range(20, 30)))  # no room: spooled here, at once
        assert time.monotonic() - began < 0.5
        assert sample(registry, "fraudrisk_api_store_spooled_total", reason="queue_full") == 10
        store.release.set()
        eventually(lambda: len(store.ids()) == 30, what="queue written, spool replayed")
    finally:
        store.release.set()
        writer.close()
    assert store.ids() == list(range(30))


def test_a_write_hung_at_shutdown_has_its_batch_spooled(
    store: RecordingStore, tmp_path: Path
) -> None:
    store.blocking = True
    writer = writer_of(lambda: store, tmp_path / "spool", close_timeout_s=0.5)
    writer.start()
    submit(writer, scored(range(0, 10)))
    eventually(store.entered.is_set)
    submit(writer, scored(range(10, 15)))
    writer.close()  # gives up on the hung write after 0.5 s
    spooled = b"".join(path.read_bytes() for path in segments(tmp_path / "spool"))
    assert sorted(decode(spooled.splitlines())[0].transaction_id) == list(range(15))
    store.release.set()
