"""Reading the prediction-log folder incrementally: complete lines only, offsets keyed without `.part`, bad lines
skipped and counted, finished files reported once read to their end."""

import json

from workers.serving.log_files import log_key, read_log_folder


def line(**record) -> str:
    return json.dumps({"prediction_id": "p", **record}) + "\n"


def test_a_half_written_last_line_is_left_for_the_next_read(tmp_path):
    part = tmp_path / "predictions-1.jsonl.part"
    part.write_text(line(n=1) + '{"prediction_id": "p", "n"')

    first = read_log_folder(tmp_path, {})

    (chunk,) = first.chunks
    assert [record["n"] for record in chunk.records] == [1]
    assert (chunk.name, chunk.start, chunk.end, chunk.finished) == ("predictions-1.jsonl", 0, len(line(n=1)), False)
    with part.open("a") as stream:
        stream.write(": 2}\n")
    second = read_log_folder(tmp_path, first.offsets())
    assert [record["n"] for record in second.chunks[0].records] == [2]
    assert second.bad_lines == 0


def test_a_part_file_renamed_to_jsonl_keeps_its_offset_and_is_reported_finished(tmp_path):
    part = tmp_path / "predictions-1.jsonl.part"
    part.write_text(line(n=1))
    first = read_log_folder(tmp_path, {})
    with part.open("a") as stream:
        stream.write(line(n=2))
    part.rename(tmp_path / "predictions-1.jsonl")

    second = read_log_folder(tmp_path, first.offsets())

    (chunk,) = second.chunks
    assert [record["n"] for record in chunk.records] == [2]
    assert chunk.finished and chunk.path.name == "predictions-1.jsonl"
    assert chunk.end == (tmp_path / "predictions-1.jsonl").stat().st_size


def test_bad_lines_are_skipped_and_counted_and_never_stop_the_read(tmp_path):
    (tmp_path / "predictions-1.jsonl").write_text(line(n=1) + "not json\n[1, 2]\n" + line(n=2) + "\xff\n")

    read = read_log_folder(tmp_path, {})

    assert [record["n"] for record in read.chunks[0].records] == [1, 2]
    assert read.bad_lines == 3


def test_a_finished_files_last_line_without_newline_is_counted_bad_and_the_file_read_to_its_end(tmp_path):
    path = tmp_path / "predictions-1.jsonl"
    path.write_text(line(n=1) + '{"trunc')

    (chunk,) = read_log_folder(tmp_path, {}).chunks

    assert [record["n"] for record in chunk.records] == [1]
    assert chunk.bad_lines == 1 and chunk.finished and chunk.end == path.stat().st_size


def test_a_file_read_to_its_end_yields_an_empty_finished_chunk_and_other_files_are_ignored(tmp_path):
    path = tmp_path / "predictions-1.jsonl"
    path.write_text(line(n=1))
    (tmp_path / "notes.txt").write_text("not a log")

    (chunk,) = read_log_folder(tmp_path, {"predictions-1.jsonl": path.stat().st_size}).chunks

    assert chunk.records == [] and chunk.finished


def test_reads_are_bounded_and_continue_where_they_stopped(tmp_path):
    (tmp_path / "predictions-1.jsonl").write_text("".join(line(n=n) for n in range(100)))
    offsets: dict[str, int] = {}
    seen: list[int] = []
    for _ in range(100):
        read = read_log_folder(tmp_path, offsets, max_bytes=200)
        seen += [record["n"] for chunk in read.chunks for record in chunk.records]
        offsets.update(read.offsets())
        if read.finished():
            break
    assert seen == list(range(100))


def test_a_missing_folder_reads_nothing_and_keys_drop_part(tmp_path):
    assert read_log_folder(tmp_path / "absent", {}).chunks == []
    assert log_key("a.jsonl.part") == log_key("a.jsonl") == "a.jsonl"


def test_replica_sub_folders_are_read_with_their_own_offsets(tmp_path):
    """The docker and kubernetes runners give each replica a folder (same file names: same pid in every container)."""
    for replica, prediction in (("replica-0", "a"), ("replica-1", "b")):
        (tmp_path / replica).mkdir()
        (tmp_path / replica / "predictions-20260101T000000Z-1-1.jsonl.part").write_text(line(prediction_id=prediction))

    read = read_log_folder(tmp_path, {})

    keys = sorted(chunk.name for chunk in read.chunks)
    assert keys == [
        "replica-0/predictions-20260101T000000Z-1-1.jsonl",
        "replica-1/predictions-20260101T000000Z-1-1.jsonl",
    ]
    assert sorted(record["prediction_id"] for chunk in read.chunks for record in chunk.records) == ["a", "b"]
