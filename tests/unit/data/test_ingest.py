"""Batch ingestion from real files: lake, quarantine, file-level refusals and the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from fraudrisk.cli import ingest as ingest_cli
from fraudrisk.data.ingest import IngestError, IngestReport, ingest
from fraudrisk.io.lake import Lake

EPOCH = dt.datetime(2018, 4, 1)
HANDBOOK_HEADER = (
    ",TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,"
    "TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO"
)
LOWER_HEADER = (
    "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_time_seconds,"
    "currency,merchant_category,channel,country,card_token,tx_fraud,tx_fraud_scenario"
)


def handbook_csv(n: int = 6, start_id: int = 0) -> str:
    """The handbook's CSV layout: an unnamed index column, UPPER_CASE names, 2 days."""
    lines = [HANDBOOK_HEADER]
    for i in range(n):
        seconds = 31 + i * 40_000
        when = EPOCH + dt.timedelta(seconds=seconds)
        tx = start_id + i
        lines.append(
            f"{i},{tx},{when:%Y-%m-%d %H:%M:%S},{100 + i},{200 + i},{10 + i}.25,"
            f"{seconds},{seconds // 86_400},{i % 2},{i % 2}"
        )
    return "\n".join(lines) + "\n"


def lower_row(tx: int, **overrides: str) -> str:
    """One lower-case-layout row (all optional fields valid) with some fields replaced."""
    seconds = 3_600 * (tx + 1)
    when = EPOCH + dt.timedelta(seconds=seconds)
    fields = {
        "transaction_id": str(tx),
        "tx_datetime": f"{when:%Y-%m-%d %H:%M:%S}",
        "customer_id": "7",
        "terminal_id": "9",
        "tx_amount": "12.50",
        "tx_time_seconds": str(seconds),
        "currency": "EUR",
        "merchant_category": "5411",
        "channel": "pos",
        "country": "BE",
        "card_token": f"tok_{tx}",
        "tx_fraud": "0",
        "tx_fraud_scenario": "0",
    }
    fields.update(overrides)
    return ",".join(fields[name] for name in LOWER_HEADER.split(","))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*")}


def quarantined(report: IngestReport) -> list[dict[str, object]]:
    assert report.quarantine_path is not None
    rows: list[dict[str, object]] = pq.read_table(report.quarantine_path).to_pylist()
    return rows


def assert_counts(report: IngestReport, valid: int, rejected: int) -> None:
    assert report.rows_valid == valid
    assert report.rows_rejected == rejected
    assert report.rows_read == report.rows_valid + report.rows_rejected
    assert sum(report.rejected_by_reason.values()) == rejected


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.open(str(tmp_path / "lake"))


# -- good files --------------------------------------------------------------------------------
def test_handbook_csv_with_index_column(tmp_path: Path, lake: Lake) -> None:
    source = write(tmp_path / "handbook.csv", handbook_csv())
    report = ingest(str(source), lake, allow_unknown_columns=True)
    assert_counts(report, valid=6, rejected=0)
    assert report.dropped_columns == ("",)
    assert report.days_written == (dt.date(2018, 4, 1), dt.date(2018, 4, 2), dt.date(2018, 4, 3))
    assert report.quarantine_path is None
    assert lake.epoch() == dt.date(2018, 4, 1)
    table = lake.read(include_labels=True)
    assert table["transaction_id"].to_pylist() == list(range(6))
    assert table["tx_amount"].to_pylist()[:2] == [10.25, 11.25]
    assert table["tx_time_seconds"].to_pylist()[1] == 40_031
    assert table["tx_fraud"].to_pylist()[:2] == [0, 1]
    assert not (tmp_path / "quarantine").exists()


def test_index_column_is_unknown_without_the_flag(tmp_path: Path, lake: Lake) -> None:
    source = write(tmp_path / "handbook.csv", handbook_csv())
    with pytest.raises(IngestError, match=r"^handbook\.csv: unknown columns: \[''\]; expected"):
        ingest(str(source), lake)


def test_lower_case_csv_derives_time_offsets(tmp_path: Path, lake: Lake) -> None:
    text = "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount\n"
    text += "1,2018-04-03 00:00:10,5,6,1.5\n2,2018-04-03T02:00:00+02:00,5,6,2\n"
    report = ingest(str(write(tmp_path / "lower.csv", text)), lake)
    assert_counts(report, valid=2, rejected=0)
    table = lake.read(include_labels=True)
    assert table["tx_time_seconds"].to_pylist() == [2 * 86_400 + 10, 2 * 86_400]
    assert table["tx_time_days"].to_pylist() == [2, 2]
    assert table["tx_fraud"].null_count == 2


def test_full_lower_case_csv_with_optional_fields(tmp_path: Path, lake: Lake) -> None:
    text = "\n".join([LOWER_HEADER, *(lower_row(i) for i in range(3))]) + "\n"
    report = ingest(str(write(tmp_path / "full.csv", text)), lake)
    assert_counts(report, valid=3, rejected=0)
    row = lake.read(include_labels=True).to_pylist()[0]
    assert (row["currency"], row["channel"], row["card_token"]) == ("EUR", "pos", "tok_0")


def test_gzip_and_parquet_sources(tmp_path: Path, lake: Lake) -> None:
    gz = tmp_path / "day.csv.gz"
    gz.write_bytes(gzip.compress(handbook_csv(3).encode()))
    assert ingest(str(gz), lake, allow_unknown_columns=True).rows_valid == 3
    table = pacsv.read_csv(pa.py_buffer(handbook_csv(3, start_id=100).encode())).drop([""])
    pq.write_table(table, tmp_path / "day.parquet")
    report = ingest(str(tmp_path / "day.parquet"), lake)
    assert_counts(report, valid=3, rejected=0)
    assert lake.count_rows() == 6


def test_zero_amount_is_valid(tmp_path: Path, lake: Lake) -> None:
    text = "\n".join([LOWER_HEADER, lower_row(1, tx_amount="0.00")]) + "\n"
    report = ingest(str(write(tmp_path / "zero.csv", text)), lake)
    assert_counts(report, valid=1, rejected=0)
    assert lake.read()["tx_amount"].to_pylist() == [0.0]


# -- rejected rows -----------------------------------------------------------------------------
BAD_ROWS = [
    ({"tx_amount": "abc"}, "tx_amount", "tx_amount: not a number: 'abc'"),
    ({"tx_amount": "-3.5"}, "tx_amount", "tx_amount: negative (-3.5)"),
    ({"tx_amount": "inf"}, "tx_amount", "tx_amount: not finite (inf)"),
    ({"tx_amount": ""}, "tx_amount", "tx_amount: missing"),
    ({"tx_datetime": "2018-13-45"}, "tx_datetime", "tx_datetime: unparseable '2018-13-45'"),
    (
        {"tx_datetime": "1899-01-01 00:00:00"},
        "tx_datetime",
        "tx_datetime: out of range 1899-01-01 (allowed 2000-01-01 .. ",
    ),
    ({"tx_datetime": "2999-01-01 00:00:00"}, "tx_datetime", "tx_datetime: out of range 2999"),
    (
        {"tx_datetime": "2018-03-31 23:59:59"},
        "tx_datetime",
        "tx_datetime: before the lake epoch 2018-04-01 ('2018-03-31 23:59:59')",
    ),
    ({"customer_id": "x1"}, "customer_id", "customer_id: not an integer 'x1'"),
    ({"terminal_id": "-4"}, "terminal_id", "terminal_id: must be >= 0 (-4)"),
    ({"transaction_id": ""}, "transaction_id", "transaction_id: missing"),
    ({"currency": "EURO"}, "currency", "currency: not an ISO 4217 code 'EURO'"),
    ({"merchant_category": "54a1"}, "merchant_category", "merchant_category: not a 4-digit"),
    ({"channel": "fax"}, "channel", "channel: not one of ["),
    ({"country": "be"}, "country", "country: not an ISO 3166-1 alpha-2 code 'be'"),
    (
        {"tx_time_seconds": "5"},
        "tx_time_seconds",
        "tx_time_seconds: inconsistent with tx_datetime and lake epoch (got 5, expected 10800)",
    ),
    ({"tx_fraud": "2"}, "tx_fraud", "tx_fraud: must be 0 or 1 (2)"),
    ({"tx_fraud_scenario": "300"}, "tx_fraud_scenario", "tx_fraud_scenario: must be 0 .. 127"),
    ({"card_token": "x" * 129}, "card_token", "card_token: longer than 128 characters"),
]


@pytest.mark.parametrize(("overrides", "kind", "reason"), BAD_ROWS)
def test_bad_row_is_quarantined_with_its_reason(
    tmp_path: Path, lake: Lake, overrides: dict[str, str], kind: str, reason: str
) -> None:
    rows = [lower_row(0), lower_row(1), lower_row(2, **overrides), lower_row(3)]
    report = ingest(
        str(write(tmp_path / "batch.csv", "\n".join([LOWER_HEADER, *rows]) + "\n")), lake
    )
    assert_counts(report, valid=3, rejected=1)
    assert report.rejected_by_reason == {kind: 1}
    [bad] = quarantined(report)
    assert bad["source_row"] == 3
    assert str(bad["reject_reason"]).startswith(reason)
    assert bad["transaction_id"] == overrides.get("transaction_id", "2")  # text as in the file
    assert lake.read()["transaction_id"].to_pylist() == [0, 1, 3]


def test_clear_card_number_in_token_is_rejected_and_redacted(tmp_path: Path, lake: Lake) -> None:
    pan = "4111111111111111"
    text = "\n".join([LOWER_HEADER, lower_row(0), lower_row(1, card_token=pan)]) + "\n"
    report = ingest(str(write(tmp_path / "pan.csv", text)), lake)
    assert_counts(report, valid=1, rejected=1)
    [bad] = quarantined(report)
    assert pan not in str(bad)
    assert str(bad["reject_reason"]).startswith("card_token: looks like a clear card number")


def test_duplicates_within_file_keep_the_first(tmp_path: Path, lake: Lake) -> None:
    text = "\n".join([LOWER_HEADER, lower_row(0), lower_row(1), lower_row(0), lower_row(2)])
    report = ingest(str(write(tmp_path / "dup.csv", text + "\n")), lake)
    assert_counts(report, valid=3, rejected=1)
    [bad] = quarantined(report)
    assert bad["reject_reason"] == "transaction_id: duplicate within file (also row 1)"
    assert bad["source_row"] == 3


def test_second_ingest_of_the_same_file_is_all_rejected(tmp_path: Path, lake: Lake) -> None:
    source = str(write(tmp_path / "handbook.csv", handbook_csv()))
    first = ingest(source, lake, allow_unknown_columns=True)
    second = ingest(source, lake, allow_unknown_columns=True)
    assert_counts(first, valid=6, rejected=0)
    assert_counts(second, valid=0, rejected=6)
    assert second.rejected_by_reason == {"transaction_id": 6}
    assert second.days_written == ()
    assert {row["reject_reason"] for row in quarantined(second)} == {
        "transaction_id: already in the lake"
    }
    assert lake.count_rows() == 6


def test_rows_with_wrong_field_count_are_rejected_not_dropped(tmp_path: Path, lake: Lake) -> None:
    text = "\n".join([LOWER_HEADER, lower_row(0), "1,2", lower_row(2), lower_row(3) + ",extra"])
    report = ingest(str(write(tmp_path / "ragged.csv", text + "\n")), lake)
    assert_counts(report, valid=2, rejected=2)
    bad = quarantined(report)
    assert [row["source_row"] for row in bad] == [2, 4]
    assert str(bad[0]["reject_reason"]).startswith("row has 2 fields, header has 13")
    assert str(bad[1]["reject_reason"]).startswith("row has 14 fields, header has 13")
    assert lake.read()["transaction_id"].to_pylist() == [0, 2]


def test_all_rows_malformed(tmp_path: Path, lake: Lake) -> None:
    report = ingest(str(write(tmp_path / "bad.csv", LOWER_HEADER + "\n1,2\n3\n")), lake)
    assert_counts(report, valid=0, rejected=2)
    assert [row["source_row"] for row in quarantined(report)] == [1, 2]
    assert lake.epoch() is None


def test_source_rows_count_records_not_lines(tmp_path: Path, lake: Lake) -> None:
    rows = [lower_row(0, card_token='"tok\nen"'), lower_row(1, tx_amount="-1")]
    report = ingest(str(write(tmp_path / "nl.csv", "\n".join([LOWER_HEADER, *rows]) + "\n")), lake)
    assert_counts(report, valid=1, rejected=1)
    assert quarantined(report)[0]["source_row"] == 2
    assert lake.read()["card_token"].to_pylist() == ["tok\nen"]


def test_quarantine_file_has_original_columns_as_text(tmp_path: Path, lake: Lake) -> None:
    text = handbook_csv(2).replace(",10.25,", ",-1,")
    report = ingest(str(write(tmp_path / "h.csv", text)), lake, allow_unknown_columns=True)
    path = Path(str(report.quarantine_path))
    assert path.parent == tmp_path / "quarantine"
    assert path.name.startswith("h.csv.") and path.name.endswith(".rejected.parquet")
    schema = pq.read_schema(path)
    assert schema.names == [*HANDBOOK_HEADER.split(","), "reject_reason", "source_row"]
    assert set(schema.types[:-1]) == {pa.string()} and schema.types[-1] == pa.int64()
    assert quarantined(report)[0]["TX_AMOUNT"] == "-1"


def test_quarantine_uri_override(tmp_path: Path, lake: Lake) -> None:
    text = "\n".join([LOWER_HEADER, lower_row(0, tx_amount="abc")]) + "\n"
    elsewhere = tmp_path / "rejects"
    report = ingest(str(write(tmp_path / "b.csv", text)), lake, quarantine_uri=str(elsewhere))
    assert Path(str(report.quarantine_path)).parent == elsewhere
    assert not (tmp_path / "quarantine").exists()
    assert lake.epoch() is None  # nothing valid: the lake was not even created


# -- file-level errors -------------------------------------------------------------------------
def _parquet_half(tmp_path: Path) -> bytes:
    table = pacsv.read_csv(pa.py_buffer(handbook_csv(50).encode())).drop([""])
    pq.write_table(table, tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    return data[: len(data) // 2]


FILE_ERRORS = [
    ("empty.csv", b"", "empty.csv: empty file"),
    ("header.csv", (LOWER_HEADER + "\n").encode(), "header.csv: no data rows"),
    (
        "latin1.csv",
        (LOWER_HEADER + "\n" + lower_row(0, card_token="tok_café") + "\n").encode("latin-1"),
        "latin1.csv: not UTF-8 encoded: invalid byte 0xe9 at byte offset",
    ),
    (
        "cut.csv",
        (LOWER_HEADER + "\n" + lower_row(0) + "\n" + lower_row(1)[:25]).encode(),
        "cut.csv: truncated: the last line has",
    ),
    (
        "open_quote.csv",
        (LOWER_HEADER + "\n" + lower_row(0, card_token='"tok') + "\n").encode(),
        "open_quote.csv: truncated or malformed: a quoted field is never closed",
    ),
    ("garbage.csv", bytes(range(256)) * 4, "garbage.csv: binary data"),
    (
        "missing.csv",
        b"transaction_id,tx_datetime,tx_amount\n1,2018-04-01 00:00:00,3\n",
        "missing.csv: missing required columns: ['customer_id', 'terminal_id']",
    ),
    (
        "unknown.csv",
        (LOWER_HEADER + ",foo\n" + lower_row(0) + ",bar\n").encode(),
        "unknown.csv: unknown columns: ['foo']; expected a subset of",
    ),
    (
        "pan.csv",
        (LOWER_HEADER + ",PAN\n" + lower_row(0) + ",4111111111111111\n").encode(),
        "pan.csv: column 'PAN' holds clear card numbers: tokenise it",
    ),
    ("data.json", b"{}", "data.json: unsupported file type"),
]


@pytest.mark.parametrize(("name", "content", "message"), FILE_ERRORS)
def test_file_level_errors_leave_lake_and_quarantine_untouched(
    tmp_path: Path, lake: Lake, name: str, content: bytes, message: str
) -> None:
    seed = "\n".join([LOWER_HEADER, lower_row(100), lower_row(101, tx_amount="x")]) + "\n"
    ingest(str(write(tmp_path / "seed.csv", seed)), lake)  # the lake and quarantine exist
    before = files_under(tmp_path / "lake", tmp_path / "quarantine")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(IngestError) as error:
        ingest(str(tmp_path / name), lake)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    assert "4111111111111111" not in str(error.value)
    assert files_under(tmp_path / "lake", tmp_path / "quarantine") == before


def test_parquet_with_a_pan_column_is_refused(tmp_path: Path, lake: Lake) -> None:
    table = pacsv.read_csv(pa.py_buffer(handbook_csv(2).encode())).drop([""])
    pq.write_table(
        table.append_column("pan", pa.array(["4111111111111111"] * 2)), tmp_path / "p.pq"
    )
    with pytest.raises(IngestError, match=r"^p\.pq: column 'pan' holds clear card numbers"):
        ingest(str(tmp_path / "p.pq"), lake)
    assert not (tmp_path / "lake").exists()


def test_header_only_parquet(tmp_path: Path, lake: Lake) -> None:
    table = pacsv.read_csv(pa.py_buffer(handbook_csv(2).encode())).drop([""])
    pq.write_table(table.slice(0, 0), tmp_path / "h.parquet")
    with pytest.raises(IngestError, match=r"^h\.parquet: no data rows"):
        ingest(str(tmp_path / "h.parquet"), lake)


@pytest.mark.parametrize("case", ["missing", "truncated_parquet"])
def test_missing_file_and_truncated_parquet_create_nothing(tmp_path: Path, case: str) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    source = tmp_path / "gone.parquet"
    if case == "truncated_parquet":
        source.write_bytes(_parquet_half(tmp_path))
    expected = "file not found" if case == "missing" else "truncated or corrupt Parquet"
    with pytest.raises(IngestError, match=rf"^gone\.parquet: {expected}"):
        ingest(str(source), lake)
    assert not (tmp_path / "lake").exists()
    assert not (tmp_path / "quarantine").exists()


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root (keeps ``ingest`` a sub-command)."""

    app.add_typer(ingest_cli.app)
    return app


def test_cli_ingests_and_prints_counts(tmp_path: Path, app: typer.Typer) -> None:
    text = "\n".join([LOWER_HEADER, lower_row(0), lower_row(1, tx_amount="-2")]) + "\n"
    source = write(tmp_path / "cli.csv", text)
    result = CliRunner().invoke(app, ["ingest", str(source), "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output
    assert "Ingested" in result.stdout and "tx_amount" in result.stdout
    assert "rejected rows in" in result.stdout
    assert Lake.open(str(tmp_path / "lake")).count_rows() == 1


def test_cli_file_error_exits_2_with_one_line(tmp_path: Path, app: typer.Typer) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    good = write(tmp_path / "good.csv", handbook_csv(2))
    args = ["ingest", str(tmp_path / "empty.csv"), str(good), "--allow-unknown-columns"]
    result = CliRunner().invoke(app, [*args, "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 2
    assert result.stderr == "error: empty.csv: empty file (0 bytes)\n"
    assert Lake.open(str(tmp_path / "lake")).count_rows() == 2  # the good file still went in


def test_cli_help_keeps_examples_on_their_own_lines(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    lines = [line.strip(" │") for line in result.stdout.splitlines()]
    assert "$ fraudrisk ingest transactions.csv --lake ./lake" in lines
