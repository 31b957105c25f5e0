import json
import tracemalloc

import datasets
import pytest
from helpers.raw_grammar import good_mmrl_rows, write_jsonl, write_parquet

from revisual_verl.data.readers import (
    InputFormatError,
    JsonArrayReader,
    JsonLinesReader,
    UnreadableRow,
    expand_inputs,
    iter_raw_rows,
    open_reader,
)

TRICKY_ROWS = [
    {"text": "brackets ] [ and commas , inside", "n": 1},
    {"text": 'unicode é ∑ 😀 and escapes \\" \n', "nested": {"list": [1, 2.5, None, True]}},
    {"text": "x" * 5000},
    42,
    [1, [2, [3]]],
    "a bare string",
]


@pytest.mark.parametrize("chunk_chars", [1, 7, 64, 1 << 20])
def test_json_array_reader_decodes_every_element_whatever_the_chunk_size(tmp_path, chunk_chars):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(TRICKY_ROWS, indent=2, ensure_ascii=False), encoding="utf-8")
    assert list(JsonArrayReader(path, chunk_chars=chunk_chars)) == TRICKY_ROWS


def test_json_array_reader_handles_bom_empty_array_and_compact_numbers(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf [1,22,333]")
    assert list(JsonArrayReader(path, chunk_chars=2)) == [1, 22, 333]
    path.write_text("  [ ]  ", encoding="utf-8")
    assert list(JsonArrayReader(path)) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"a": 1}, {"a": }]', "element 1"),
        ('[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
        ('[{"a": 1}, {"a": 2}', "element 1"),
        ('{"a": 1}', "expected a JSON array"),
        ('[{"a": 1}] trailing', "after the closing"),
    ],
)
def test_json_array_reader_names_where_a_broken_array_breaks(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError, match=message):
        list(JsonArrayReader(path, chunk_chars=4))


def test_json_array_reader_memory_stays_flat_in_the_file_size(tmp_path):
    row = {"instruction": "q" * 200, "output": "<think>" + "t" * 20_000 + "</think>"}
    path = tmp_path / "big.json"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        handle.write(",".join(json.dumps(row) for _ in range(1500)))  # ~30 MB
        handle.write("]")
    tracemalloc.start()
    count = sum(1 for _ in JsonArrayReader(path, chunk_chars=1 << 16))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 1500
    assert peak < 2_000_000, f"peak {peak} bytes while streaming a {path.stat().st_size} byte file"


def test_jsonl_reader_hands_on_broken_lines_as_unreadable_rows(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}, {"a": 2}], broken_lines=('{"a": 3', ""))
    rows = list(open_reader(path))
    assert rows[:2] == [{"a": 1}, {"a": 2}]
    assert len(rows) == 3 and isinstance(rows[2], UnreadableRow) and "line 3" in rows[2].detail


def test_a_json_file_holding_lines_is_read_as_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "rows.json", [{"a": 1}, {"a": 2}])
    assert list(open_reader(path)) == [{"a": 1}, {"a": 2}]


def test_parquet_reader_streams_batches_and_keeps_image_bytes(tmp_path):
    rows = good_mmrl_rows(300)
    path = write_parquet(tmp_path / "mmrl.parquet", rows)
    reader = open_reader(path)
    read = list(reader)
    assert reader.progress.total == 300 and reader.progress.done == 300
    assert [row["images"][0]["bytes"] for row in read] == [row["images"][0]["bytes"] for row in rows]


def test_saved_dataset_directories_are_read_without_decoding_images(tmp_path):
    features = datasets.Features({"problem": datasets.Value("string"), "images": datasets.List(datasets.Image())})
    rows = [{"problem": r["problem"], "images": r["images"]} for r in good_mmrl_rows(5)]
    dataset = datasets.Dataset.from_list(rows, features=features)
    dataset.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "dict"))

    single = list(open_reader(tmp_path / "single"))
    assert [row["images"][0]["bytes"] for row in single] == [row["images"][0]["bytes"] for row in rows]
    assert len(list(open_reader(tmp_path / "dict"))) == 5
    assert len(list(open_reader(tmp_path / "dict", split="test"))) == 1
    with pytest.raises(InputFormatError, match="split"):
        open_reader(tmp_path / "dict", split="validation")


def test_inputs_expand_directories_and_number_rows_across_files(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [{"n": 2}, {"n": 3}])
    write_jsonl(tmp_path / "a.jsonl", [{"n": 0}, {"n": 1}])
    (tmp_path / "notes.txt").write_text("ignored")
    paths = expand_inputs([tmp_path])
    assert [p.name for p in paths] == ["a.jsonl", "b.jsonl"]
    rows = list(iter_raw_rows(paths))
    assert [(row.index, row.value["n"]) for row in rows] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert [row.index for row in iter_raw_rows(paths, limit=3)] == [0, 1, 2]
    with pytest.raises(InputFormatError, match="not found"):
        expand_inputs([tmp_path / "missing.json"])


@pytest.mark.parametrize("chunk_chars", [1, 3, 7, 1 << 20])
def test_json_array_reader_names_the_byte_where_utf8_breaks_whatever_the_chunk_size(tmp_path, chunk_chars):
    good = '["é€😀", '.encode()
    path = tmp_path / "rows.json"
    path.write_bytes(b"\xef\xbb\xbf" + good + b'"a\xe2\x82"]')  # a three-byte character cut after two
    reader = JsonArrayReader(path, chunk_chars=chunk_chars)
    with pytest.raises(InputFormatError, match=rf"{path.name}: not UTF-8 at byte {3 + len(good) + 2}\b"):
        list(reader)


@pytest.mark.parametrize("chunk_chars", [1, 64, 1 << 20])
def test_json_array_reader_hands_on_an_element_with_a_huge_integer_and_reads_on(tmp_path, chunk_chars):
    path = tmp_path / "rows.json"
    path.write_text('[{"a": 1}, {"a": ' + "9" * 5000 + '}, {"a": [2, 3]}]', encoding="utf-8")
    rows = list(JsonArrayReader(path, chunk_chars=chunk_chars))
    assert rows[0] == {"a": 1} and rows[2] == {"a": [2, 3]} and len(rows) == 3
    assert isinstance(rows[1], UnreadableRow) and rows[1].detail.startswith("element 1 at character 11:")


def test_json_array_reader_stops_at_an_element_nested_too_deeply(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[{"a": 1}, ' + "[" * 5000 + "]" * 5000 + "]", encoding="utf-8")
    rows = iter(JsonArrayReader(path))
    assert next(rows) == {"a": 1}
    with pytest.raises(InputFormatError, match="element 1 starting at character 11 is nested too deeply"):
        next(rows)


def test_jsonl_reader_hands_on_deep_huge_and_non_utf8_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"[" * 5000 + b"]" * 5000 + b"\n" + b"1" * 5000 + b'\n"\xff"\n{"a": 1}\n')
    rows = list(open_reader(path))
    assert rows[3] == {"a": 1}
    assert all(isinstance(row, UnreadableRow) for row in rows[:3])
    assert [row.detail.split(":")[0] for row in rows[:3]] == ["line 1", "line 2", "line 3"]


def test_a_corrupt_parquet_raises_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    with pytest.raises(InputFormatError, match=rf"{path}: cannot be read \(OSError"):
        list(iter_raw_rows([path]))


def test_a_json_file_of_lines_whose_first_line_is_broken_is_still_read_as_lines(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('{"a": "cut off\n{"a": 2}\n{"a": 3}\n', encoding="utf-8")
    rows = list(open_reader(path))
    assert isinstance(rows[0], UnreadableRow) and rows[1:] == [{"a": 2}, {"a": 3}]


def test_a_jsonl_line_too_long_to_hold_is_skipped_in_bounded_memory(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "' + b"x" * 10_000_000 + b'"}\n{"a": 3}')
    tracemalloc.start()
    rows = list(JsonLinesReader(path, max_line_bytes=100_000))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows[0] == {"a": 1} and rows[2] == {"a": 3}
    assert isinstance(rows[1], UnreadableRow) and rows[1].detail == "line 2: longer than 100000 bytes"
    assert peak < 1_000_000, peak  # the line is 10 MB
