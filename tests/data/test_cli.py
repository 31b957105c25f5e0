import json
import re
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.raw_grammar import (
    bad_coldstart_rows,
    bad_mmrl_rows,
    bad_textrl_rows,
    coldstart_rows,
    good_mmrl_rows,
    good_textrl_rows,
    hostile_coldstart_rows,
    hostile_image_rows,
    hostile_json_lines,
    png_bytes,
    write_json_array,
    write_jsonl,
    write_jsonl_bytes,
    write_parquet,
)

from revisual_verl.data.cli import main


def run(part, inputs, out, *flags):
    inputs = [str(path) for path in (inputs if isinstance(inputs, list) else [inputs])]
    return main(["prepare", part, "--input", *inputs, "--output", str(out), "--no-progress", *flags])


def read_rows(out):
    report = json.loads((out / "report.json").read_text())
    train = [row for name in report["files"]["train"] for row in pq.read_table(out / name).to_pylist()]
    val = pq.read_table(out / report["files"]["val"]).to_pylist()
    return report, train, val


def interleave(good, bad):
    """Good and bad rows mixed; returns the rows and, by input index, the reason each bad row must get."""
    rows, expected, good_indices = [], {}, []
    bad = list(bad)
    for number, row in enumerate(good):
        rows.append(row)
        good_indices.append(len(rows) - 1)
        if number < len(bad):
            expected[len(rows)] = bad[number][1]
            rows.append(bad[number][0])
    for row, reason in bad[len(good) :]:
        expected[len(rows)] = reason
        rows.append(row)
    return rows, expected, good_indices


def check_corpus(report, train, val, expected, good_indices):
    assert {row["index"]: row["reason"] for row in report["skipped"]["rows"]} == expected
    assert report["skipped"]["total"] == len(expected)
    assert all(row["detail"] for row in report["skipped"]["rows"])
    kept = sorted(row["extra_info"]["index"] for row in train + val)
    assert kept == good_indices, "a good row was lost or a bad row kept"
    assert {row["extra_info"]["split"] for row in train} == {"train"}
    assert {row["extra_info"]["split"] for row in val} == {"val"}


def test_mmrl_bad_row_corpus_reports_every_bad_row_and_keeps_every_good_one(tmp_path):
    rows, expected, good_indices = interleave(good_mmrl_rows(12), bad_mmrl_rows())
    source = write_parquet(tmp_path / "mmrl.parquet", rows)
    assert run("mmrl", source, tmp_path / "out", "--val-size", "3") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)
    assert len(val) == 3 and report["rows_read"] == len(rows)
    by_index = {row["extra_info"]["index"]: row for row in train + val}
    for index in good_indices:
        assert [image["bytes"] for image in by_index[index]["images"]] == [i["bytes"] for i in rows[index]["images"]]
        assert by_index[index]["reward_model"]["ground_truth"] == rows[index]["answer"]


def test_textrl_bad_row_corpus_from_jsonl_including_a_broken_line(tmp_path):
    rows, expected, good_indices = interleave(good_textrl_rows(8), bad_textrl_rows())
    source = write_jsonl(tmp_path / "textrl.jsonl", rows, broken_lines=('{"problem": "cut off',))
    expected[len(rows)] = "invalid_json"
    assert run("textrl", source, tmp_path / "out", "--val-size", "2") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)
    assert all(row["images"] == [] for row in train + val)


def test_hostile_jsonl_lines_are_skipped_as_invalid_json(tmp_path):
    rows, expected, good_indices = interleave(good_textrl_rows(6), hostile_json_lines())
    lines = [row if isinstance(row, bytes) else json.dumps(row).encode() for row in rows]
    source = write_jsonl_bytes(tmp_path / "textrl.jsonl", lines)
    assert run("textrl", source, tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)
    details = [row["detail"] for row in report["skipped"]["rows"]]
    assert "nested too deeply" in details[0] and "digits" in details[1] and "utf-8" in details[2]


def test_a_json_array_element_with_a_huge_integer_is_skipped_and_reading_goes_on(tmp_path):
    good = [json.dumps(row) for row in good_textrl_rows(4)]
    huge = '{"problem": "Big?", "answer": ' + "7" * 5000 + "}"
    source = tmp_path / "textrl.json"
    source.write_text("[" + ", ".join([good[0], good[1], huge, good[2], good[3]]) + "]", encoding="utf-8")
    assert run("textrl", source, tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, {2: "invalid_json"}, [0, 1, 3, 4])
    assert "element 2" in report["skipped"]["rows"][0]["detail"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'[{"problem": "p", "answer": "1"}, ' + b"[" * 5000 + b"]" * 5000 + b"]", "element 1 .* nested too deeply"),
        (b'[{"problem": "p", "answer": "1"}, {"problem": "\xff", "answer": "1"}]', "not UTF-8 at byte 47"),
    ],
)
def test_a_json_array_that_cannot_be_read_on_stops_with_an_error_naming_file_and_place(
    tmp_path, capsys, content, message
):
    source = tmp_path / "rows.json"
    source.write_bytes(content)
    assert run("textrl", source, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert str(source) in error
    assert re.search(message, error), error


def test_a_corrupt_parquet_is_an_error_naming_the_file(tmp_path, capsys):
    source = tmp_path / "corrupt.parquet"
    source.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    assert run("mmrl", source, tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert f"{source}: cannot be read" in error and "thrift" in error


def test_image_fields_of_the_wrong_type_are_skipped(tmp_path):
    (tmp_path / "img").mkdir()
    for number in range(4):
        (tmp_path / "img" / f"{number}.png").write_bytes(png_bytes(20 + number, 20))
    good = [
        {"problem": f"<image> Shape {n}?", "answer": str(n), "images": [{"bytes": None, "path": f"img/{n}.png"}]}
        for n in range(4)
    ]
    rows, expected, good_indices = interleave(good, hostile_image_rows("img/0.png"))
    source = write_jsonl(tmp_path / "mmrl.jsonl", rows)
    assert run("mmrl", source, tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)


def test_a_non_text_image_path_beside_good_bytes_is_skipped_naming_the_row(tmp_path):
    source = tmp_path / "shards"
    source.mkdir()
    write_parquet(source / "a.parquet", good_mmrl_rows(3))
    image = pa.struct([("bytes", pa.binary()), ("path", pa.int64())])
    odd = pa.table(
        {
            "problem": ["<image> Count.", "<image> Count again."],
            "answer": ["1", "2"],
            "images": pa.array(
                [[{"bytes": png_bytes(), "path": 5}], [{"bytes": png_bytes(), "path": None}]], pa.list_(image)
            ),
        }
    )
    pq.write_table(odd, source / "b.parquet")
    assert run("mmrl", source, tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, {3: "undecodable_image"}, [0, 1, 2, 4])
    assert report["skipped"]["rows"][0]["input"] == str(source / "b.parquet")
    assert "path is 5" in report["skipped"]["rows"][0]["detail"]


def test_hostile_coldstart_rows_are_skipped_also_under_a_token_limit(tmp_path, tiny_tokenizer_dir):
    rows, expected, good_indices = interleave(coldstart_rows(), hostile_coldstart_rows())
    source = write_jsonl(tmp_path / "cold.jsonl", rows)
    flags = ["--tokenizer", str(tiny_tokenizer_dir), "--max-prompt-tokens", "100000", "--val-size", "1"]
    assert run("coldstart", source, tmp_path / "out", *flags) == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)


def test_an_unexpected_error_in_one_row_becomes_a_conversion_error(tmp_path, capsys):
    # JSON can spell a lone surrogate, which no check looks for and UTF-8 cannot encode.
    rows = good_textrl_rows(3)
    lines = [json.dumps(row) for row in rows]
    lines.insert(1, '{"problem": "What is \\ud800?", "answer": "1"}')
    source = tmp_path / "textrl.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run("textrl", source, tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, {1: "conversion_error"}, [0, 2, 3])
    assert report["skipped"]["rows"][0]["detail"].startswith("UnicodeEncodeError: ")

    assert run("textrl", source, tmp_path / "strict", "--strict") == 1
    error = capsys.readouterr().err
    assert f"row 1 of {source} rejected (conversion_error): UnicodeEncodeError" in error


def test_coldstart_bad_row_corpus_and_layout_counts(tmp_path):
    rows, expected, good_indices = interleave(coldstart_rows(), bad_coldstart_rows())
    source = write_json_array(tmp_path / "coldstart.json", rows)
    assert run("coldstart", source, tmp_path / "out", "--val-size", "2") == 0
    report, train, val = read_rows(tmp_path / "out")
    check_corpus(report, train, val, expected, good_indices)
    assert report["layouts"] == {"alpaca": 2, "messages": 2, "sharegpt": 2}
    assert report["notes"] == {"no_think_trace": 1}
    assert all(row["messages"][-1]["role"] == "assistant" for row in train + val)


@pytest.mark.parametrize("layout", ["parquet", "json", "jsonl", "saved_dataset", "directory"])
def test_each_input_layout_converts_to_the_same_rows(tmp_path, layout):
    rows = good_textrl_rows(10)
    if layout == "parquet":
        source = write_parquet(tmp_path / "in.parquet", rows)
    elif layout == "json":
        source = write_json_array(tmp_path / "in.json", rows)
    elif layout == "jsonl":
        source = write_jsonl(tmp_path / "in.jsonl", rows)
    elif layout == "saved_dataset":
        source = tmp_path / "saved"
        datasets.Dataset.from_list(rows).save_to_disk(str(source))
    else:
        source = tmp_path / "shards"
        source.mkdir()
        write_parquet(source / "part-0.parquet", rows[:4])
        write_jsonl(source / "part-1.jsonl", rows[4:])
    assert run("textrl", source, tmp_path / "out", "--val-size", "2") == 0
    _, train, val = read_rows(tmp_path / "out")
    converted = sorted(train + val, key=lambda row: row["extra_info"]["index"])
    assert [row["extra_info"]["problem"] for row in converted] == [row["problem"] for row in rows]
    assert [row["reward_model"]["ground_truth"] for row in converted] == [row["answer"] for row in rows]


def test_mmrl_from_a_saved_dataset_with_image_features(tmp_path):
    rows = good_mmrl_rows(6)
    features = datasets.Features(
        {
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "images": datasets.List(datasets.Image()),
            "dataset": datasets.Value("string"),
        }
    )
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows, features=features)}).save_to_disk(
        str(tmp_path / "saved")
    )
    assert run("mmrl", tmp_path / "saved", tmp_path / "out", "--val-size", "1") == 0
    report, train, val = read_rows(tmp_path / "out")
    assert report["skipped"]["total"] == 0 and len(train) + len(val) == 6
    assert sum(len(row["images"]) for row in train + val) == sum(len(row["images"]) for row in rows)


def test_same_seed_same_output_other_seed_other_split(tmp_path):
    source = write_parquet(tmp_path / "mmrl.parquet", good_mmrl_rows(40))
    for out in ("a", "b"):
        assert run("mmrl", source, tmp_path / out, "--seed", "7", "--val-size", "5") == 0
    for name in ("train.parquet", "val.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    report_a, report_b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    report_a.pop("timing"), report_b.pop("timing")
    assert report_a == report_b

    assert run("mmrl", source, tmp_path / "c", "--seed", "8", "--val-size", "5") == 0
    val_a = [row["extra_info"]["index"] for row in read_rows(tmp_path / "a")[2]]
    val_c = [row["extra_info"]["index"] for row in read_rows(tmp_path / "c")[2]]
    assert val_a != val_c and len(val_c) == 5


def test_limit_val_size_and_shards(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", good_textrl_rows(30))
    assert run("textrl", source, tmp_path / "out", "--limit", "20", "--val-size", "4", "--shard-rows", "6") == 0
    report, train, val = read_rows(tmp_path / "out")
    assert report["rows_read"] == 20 and len(train) == 16 and len(val) == 4
    assert report["files"]["train"] == [f"train-0000{n}.parquet" for n in range(3)]
    assert max(row["extra_info"]["index"] for row in train + val) == 19

    # A second run into the same directory replaces the previous shards instead of mixing with them.
    assert run("textrl", source, tmp_path / "out", "--val-size", "100") == 0
    report, train, val = read_rows(tmp_path / "out")
    assert report["val_size"] == {"requested": 100, "used": 15} and len(train) == 15
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "train.parquet", "val.parquet"]


def test_strict_fails_on_the_first_bad_row_and_keeps_the_previous_output(tmp_path, capsys):
    rows, _, _ = interleave(good_textrl_rows(5), bad_textrl_rows())
    good = write_jsonl(tmp_path / "good.jsonl", good_textrl_rows(5))
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert run("textrl", good, tmp_path / "out", "--val-size", "1", "--strict") == 0
    before = (tmp_path / "out" / "train.parquet").read_bytes()
    assert run("textrl", bad, tmp_path / "out", "--strict") == 1
    error = capsys.readouterr().err
    assert "row 1 of" in error and "missing_answer" in error
    assert (tmp_path / "out" / "train.parquet").read_bytes() == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".staging")]


def test_prompts_over_the_token_limit_are_skipped(tmp_path, tiny_tokenizer_dir, tiny_tokenizer):
    rows = [{"problem": "Short?", "answer": "1"}, {"problem": "Long " * 200 + "?", "answer": "2"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    short_prompt = [{"role": "user", "content": "Short?"}]
    short_tokens = len(tiny_tokenizer.apply_chat_template(short_prompt, add_generation_prompt=True)["input_ids"])
    flags = ["--tokenizer", str(tiny_tokenizer_dir), "--max-prompt-tokens", str(short_tokens), "--instruction", ""]
    assert run("textrl", source, tmp_path / "out", "--val-size", "0", *flags) == 0
    report, train, _ = read_rows(tmp_path / "out")
    assert [row["extra_info"]["index"] for row in train] == [0]
    assert report["skipped"]["by_reason"] == {"prompt_too_long": 1}

    coldstart = write_json_array(tmp_path / "cold.json", coldstart_rows())
    flags = ["--tokenizer", str(tiny_tokenizer_dir), "--max-total-tokens", "90"]
    assert run("coldstart", coldstart, tmp_path / "cold", "--val-size", "0", *flags) == 0
    report, train, _ = read_rows(tmp_path / "cold")
    assert report["skipped"]["by_reason"] == {"conversation_too_long": len(coldstart_rows()) - len(train)}
    assert 0 < len(train) < len(coldstart_rows())


def test_help_and_argument_errors(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["prepare", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--val-size", "--limit", "--strict", "--seed", "--progress", "--tokenizer", "--instruction"):
        assert flag in shown
    with pytest.raises(SystemExit) as exited:
        main(["prepare", "textrl", "--input", "x.json", "--output", "o", "--max-prompt-tokens", "5"])
    assert exited.value.code == 2 and "tokenizer" in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert run("textrl", tmp_path / "nope.parquet", tmp_path / "out") == 1
    assert "input not found" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", good_textrl_rows(4))
    done = subprocess.run(
        [sys.executable, "-m", "revisual_verl.data", "prepare", "textrl", "-i", str(source), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "textrl: read 4 rows, wrote 2 train + 2 val, skipped 0" in done.stdout
