"""The point-in-time join on a hand-built example, row by row: ties, late data, max age, missing entities."""

from datetime import timedelta

import pandas as pd
import pytest

from workers.ml.features.offline import FeatureInput, point_in_time_join, read_partitions, write_partition
from workers.ml.features.transforms import compute_feature_values


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-05-04 {text}")


@pytest.fixture
def partitions(tmp_path):
    """Two partitions of one feature, the second written later."""
    first = pd.DataFrame(
        {
            "customer": ["c1", "c1", "c2", "c3", "c3", "c4"],
            "event_timestamp": [at("01:00"), at("03:00"), at("02:00"), at("01:00"), at("01:00"), at("01:00")],
            "spend": [10.0, 30.0, 20.0, 7.0, 8.0, 40.0],
        }
    )
    second = pd.DataFrame(
        {
            # c1 at 02:00 arrives late (an earlier time, written later); c1 at 03:00 and c2 at 02:00 are written
            # again; c1 at 05:00 is a later value no earlier row may see.
            "customer": ["c1", "c1", "c2", "c1"],
            "event_timestamp": [at("02:00"), at("03:00"), at("02:00"), at("05:00")],
            "spend": [15.0, 33.0, 22.0, 50.0],
        }
    )
    return [write_partition(first, tmp_path / "a.parquet"), write_partition(second, tmp_path / "b.parquet")]


SPINE = pd.DataFrame(
    {
        "customer": ["c1", "c1", "c1", "c1", "c1", "c2", "c9", "c3", "c4", "c4", "c1"],
        "ts": [
            at("00:30"), at("01:30"), at("02:30"), at("03:00"), at("04:59"), at("02:00"), at("03:00"), at("02:00"),
            at("02:00"), at("03:00"), at("06:00"),
        ],
        "label": list(range(11)),
    }
)  # fmt: skip
EXPECTED = [
    # (spend, spend within 1 hour, why)
    (None, None, "before the entity's first event"),
    (10.0, 10.0, "the latest event at or before 01:30"),
    (15.0, 15.0, "the late-arriving 02:00 event is used from 02:30"),
    (33.0, 33.0, "an event at exactly the row's time counts; of two at 03:00 the one written last wins"),
    (33.0, None, "the 05:00 value is never seen before 05:00; 03:00 is older than an hour"),
    (22.0, 22.0, "two rows at 02:00 in two partitions: the later partition wins"),
    (None, None, "an entity with no event at all"),
    (8.0, 8.0, "two rows at 01:00 in one partition: the later row wins; exactly one hour old is kept"),
    (40.0, 40.0, "exactly one hour old is kept"),
    (40.0, None, "two hours old: only the feature without a maximum age keeps it"),
    (50.0, 50.0, "the later value once its time has come"),
]


def check_rows(joined: pd.DataFrame) -> None:
    assert list(joined.columns) == ["customer", "ts", "label", "spend", "spend_1h"]
    assert joined["label"].tolist() == list(range(11))  # the spine's order
    for row, (spend, fresh, why) in zip(joined.itertuples(), EXPECTED, strict=True):
        got = (None if pd.isna(row.spend) else row.spend, None if pd.isna(row.spend_1h) else row.spend_1h)
        assert got == (spend, fresh), f"row {row.label}: {why}"


def features(paths) -> list[FeatureInput]:
    return [FeatureInput("spend", paths), FeatureInput("spend_1h", paths, max_age=timedelta(hours=1))]


def test_point_in_time_join_row_by_row(partitions):
    joined = point_in_time_join(SPINE, entity_keys=["customer"], timestamp="ts", features=features(partitions))
    check_rows(joined)
    pd.testing.assert_frame_equal(joined[["customer", "ts", "label"]], SPINE)


def test_a_spine_in_parquet_gives_the_same_rows(partitions, tmp_path):
    SPINE.to_parquet(tmp_path / "spine.parquet", index=False)
    path = tmp_path / "spine.parquet"
    check_rows(point_in_time_join(path, entity_keys=["customer"], timestamp="ts", features=features(partitions)))


def test_time_zones_are_compared_in_utc(partitions):
    spine = SPINE.assign(ts=SPINE["ts"].dt.tz_localize("UTC").dt.tz_convert("America/New_York"))
    joined = point_in_time_join(spine, entity_keys=["customer"], timestamp="ts", features=features(partitions))
    check_rows(joined.assign(ts=SPINE["ts"]))
    assert joined["ts"].dt.tz is not None  # the spine's own column is left as it was


def test_no_leakage_when_only_later_values_exist(tmp_path):
    path = write_partition(
        pd.DataFrame({"customer": ["c1"], "event_timestamp": [at("12:00")], "spend": [1.0]}), tmp_path / "p.parquet"
    )
    spine = pd.DataFrame({"customer": ["c1", "c1"], "ts": [at("11:59:59.999999"), at("12:00")]})
    joined = point_in_time_join(spine, entity_keys=["customer"], timestamp="ts", features=[FeatureInput("s", [path])])
    assert joined["s"].isna().tolist() == [True, False]


def test_the_tie_order_follows_the_order_of_the_paths(partitions):
    # Given in reverse, the first partition counts as written last: its 03:00 value (30) wins the tie.
    joined = point_in_time_join(
        SPINE, entity_keys=["customer"], timestamp="ts", features=[FeatureInput("spend", partitions[::-1])]
    )
    assert joined["spend"].iloc[3] == 30.0


def test_name_clashes_are_refused(partitions):
    with pytest.raises(ValueError, match="clash"):
        point_in_time_join(
            SPINE, entity_keys=["customer"], timestamp="ts", features=[FeatureInput("label", partitions)]
        )


def test_incrementally_materialised_partitions_join_like_a_full_one(tmp_path):
    source = pd.DataFrame(
        {
            "customer": ["a", "b", "a", "a", "b", "a"],
            "at": [at("00:10"), at("00:20"), at("00:50"), at("01:40"), at("02:10"), at("03:00")],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    spec = {"kind": "window", "column": "amount", "function": "sum", "window": "1h"}
    arguments = {"entity_keys": ["customer"], "timestamp": "at", "spec": spec, "name": "spend_1h"}
    full = write_partition(compute_feature_values(source, **arguments), tmp_path / "full.parquet")
    parts = [
        write_partition(compute_feature_values(source, **arguments, end=at("01:00")), tmp_path / "1.parquet"),
        write_partition(compute_feature_values(source, **arguments, start=at("01:00")), tmp_path / "2.parquet"),
    ]
    spine = pd.DataFrame(
        {"customer": ["a", "a", "b", "a", "b"], "ts": [at(t) for t in ("00:55", "02:00", "02:30", "03:30", "00:00")]}
    )
    results = [
        point_in_time_join(spine, entity_keys=["customer"], timestamp="ts", features=[FeatureInput("v", paths)])
        for paths in ([full], parts)
    ]
    pd.testing.assert_frame_equal(results[0], results[1])
    # a at 02:00: the 01:40 event, whose window (00:40, 01:40] holds 3 and 4 (its first part lies before the
    # second partition's start); b at 02:30: 5 alone; a at 03:30: 6 alone (02:00 is not after 02:00).
    assert results[0]["v"].tolist()[:4] == [4.0, 7.0, 5.0, 6.0] and pd.isna(results[0]["v"].iloc[4])
    assert len(read_partitions(parts).df()) == len(read_partitions([full]).df()) == 6
