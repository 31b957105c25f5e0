"""Hostile GRAMMAR-shaped inputs through the CLI, run as a subprocess as a user would run it (issue 12).

Nothing outside the data is read, one bad cell costs one row, a failed run leaves the previous output as it was,
and only the converter's own files are ever removed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.raw_grammar import (
    coldstart_rows,
    corrupt_images,
    good_mmrl_rows,
    good_textrl_rows,
    png_bytes,
    write_json_array,
    write_jsonl,
    write_parquet,
)

# Runs the CLI with an audit hook that records every file opened under a watched folder.
AUDITED_CLI = r"""
import json, os, sys
watched = os.path.realpath(sys.argv[1])
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path == watched or path.startswith(watched + os.sep):
            opened.append(path)
sys.addaudithook(hook)
from revisual_verl.data.cli import main
code = main(sys.argv[2:])
print("OPENED " + json.dumps(opened))
sys.exit(code)
"""

HANG_GUARD_S = 300  # a subprocess that has not finished by then has hung; it takes about a second


def cli(part, inputs, out, *flags, watch=None):
    """``revisual-data prepare`` in a fresh interpreter; returns the completed process."""
    inputs = [str(path) for path in (inputs if isinstance(inputs, list) else [inputs])]
    args = ["prepare", part, "--input", *inputs, "--output", str(out), "--no-progress", *map(str, flags)]
    if watch is None:
        command = [sys.executable, "-m", "revisual_verl.data", *args]
    else:
        command = [sys.executable, "-c", AUDITED_CLI, str(watch), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)


def opened_files(done) -> list[str]:
    line = next(line for line in done.stdout.splitlines() if line.startswith("OPENED "))
    return json.loads(line.removeprefix("OPENED "))


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def kept_rows(out: Path) -> list[dict]:
    report = report_of(out)
    names = report["files"]["train"] + [report["files"]["val"]]
    return [row for name in names for row in pq.read_table(out / name).to_pylist()]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes, to prove a run left it exactly as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def image_row(path: str, number: int = 0) -> dict:
    return {"problem": f"<image> Shape {number}?", "answer": str(number), "images": [{"bytes": None, "path": path}]}


# -- 1. image paths stay inside the data --------------------------------------------------------------------------


@pytest.fixture
def data_and_outside(tmp_path):
    """A data folder with one good image next to it, and a real image outside it that must never be read."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "img").mkdir(parents=True)
    outside.mkdir()
    (data / "img" / "inside.png").write_bytes(png_bytes(30, 30, (0, 200, 0)))
    (outside / "secret.png").write_bytes(png_bytes(33, 33, (0, 0, 200)))
    return data, outside


def test_image_paths_that_leave_the_data_folder_are_skipped_and_never_opened(tmp_path, data_and_outside):
    data, outside = data_and_outside
    (data / "img" / "link.png").symlink_to(outside / "secret.png")
    (data / "img" / "inner_link.png").symlink_to(data / "img" / "inside.png")
    (data / "escape").symlink_to(outside, target_is_directory=True)
    rows = [
        image_row("img/inside.png", 0),
        image_row("../outside/secret.png", 1),
        image_row("../" * 40 + "etc/passwd", 2),
        image_row(str(outside / "secret.png"), 3),
        image_row("img/link.png", 4),
        image_row("escape/secret.png", 5),
        image_row("img/inner_link.png", 6),
        image_row(str(data / "img" / "inside.png"), 7),
    ]
    source = write_jsonl(data / "mmrl.jsonl", rows)
    done = cli("mmrl", source, tmp_path / "out", "--val-size", "0", watch=outside)
    assert done.returncode == 0, done.stderr
    assert opened_files(done) == []
    report = report_of(tmp_path / "out")
    assert {row["index"]: row["reason"] for row in report["skipped"]["rows"]} == {
        index: "image_outside_data" for index in (1, 2, 3, 4, 5)
    }
    assert all("outside" in row["detail"] for row in report["skipped"]["rows"])
    kept = kept_rows(tmp_path / "out")
    assert sorted(row["extra_info"]["index"] for row in kept) == [0, 6, 7]
    secret = (outside / "secret.png").read_bytes()
    assert all(image["bytes"] != secret for row in kept for image in row["images"])


def test_one_other_image_root_can_be_allowed_explicitly(tmp_path, data_and_outside):
    data, outside = data_and_outside
    (data / "img" / "link.png").symlink_to(outside / "secret.png")
    rows = [image_row("../outside/secret.png", 0), image_row(str(outside / "secret.png"), 1), image_row("img/link.png")]
    rows.append(image_row("../" * 40 + "etc/passwd", 3))
    source = write_jsonl(data / "mmrl.jsonl", rows)
    done = cli("mmrl", source, tmp_path / "out", "--val-size", "0", "--allow-image-root", outside)
    assert done.returncode == 0, done.stderr
    report = report_of(tmp_path / "out")
    assert report["skipped"]["by_reason"] == {"image_outside_data": 1}
    secret = (outside / "secret.png").read_bytes()
    assert [row["images"][0]["bytes"] for row in kept_rows(tmp_path / "out")] == [secret] * 3


def test_an_image_path_naming_a_fifo_inside_the_data_is_skipped_without_hanging(tmp_path, data_and_outside):
    data, _ = data_and_outside
    os.mkfifo(data / "img" / "pipe.png")
    source = write_jsonl(data / "mmrl.jsonl", [image_row("img/inside.png", 0), image_row("img/pipe.png", 1)])
    done = cli("mmrl", source, tmp_path / "out", "--val-size", "0")
    assert done.returncode == 0, done.stderr
    skipped = report_of(tmp_path / "out")["skipped"]["rows"]
    assert [(row["index"], row["reason"]) for row in skipped] == [(1, "undecodable_image")]
    assert "not a regular file" in skipped[0]["detail"]


# -- 2. one bad cell is one skipped row ---------------------------------------------------------------------------


def text_column(values: list[bytes]) -> pa.Array:
    """A string column holding exactly these bytes, valid UTF-8 or not (arrow checks nothing on a view)."""
    return pa.array(values, pa.binary()).view(pa.string())


def test_a_non_utf8_cell_in_a_parquet_file_skips_its_row_only(tmp_path):
    problems = [f"What is {n} + {n}?".encode() for n in range(6)]
    problems[2] = b"What is \xff\xfe?"
    answers = [str(2 * n).encode() for n in range(6)]
    answers[4] = b"\xc3("
    table = pa.table({"problem": text_column(problems), "answer": text_column(answers)})
    source = tmp_path / "textrl.parquet"
    pq.write_table(table, source)
    done = cli("textrl", source, tmp_path / "out", "--val-size", "1")
    assert done.returncode == 0, done.stderr
    report = report_of(tmp_path / "out")
    skipped = {row["index"]: row for row in report["skipped"]["rows"]}
    assert sorted(skipped) == [2, 4]
    assert {row["reason"] for row in skipped.values()} == {"unreadable_value"}
    assert "row 2" in skipped[2]["detail"] and "'problem'" in skipped[2]["detail"]
    assert "row 4" in skipped[4]["detail"] and "'answer'" in skipped[4]["detail"]
    assert sorted(row["extra_info"]["index"] for row in kept_rows(tmp_path / "out")) == [0, 1, 3, 5]


def test_a_non_utf8_image_path_in_a_nested_column_skips_its_row_only(tmp_path):
    rows = good_mmrl_rows(3)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    paths = text_column([b"a.png", b"b\xff.png", b"c.png"])
    images = pa.ListArray.from_arrays(
        pa.array([0, 1, 2, 3], pa.int32()),
        pa.StructArray.from_arrays([pa.array([r["images"][0]["bytes"] for r in rows]), paths], fields=list(image)),
    )
    problems = ["<image> " + row["problem"].replace("<image>", "") for row in rows]
    table = pa.table({"problem": problems, "answer": [row["answer"] for row in rows], "images": images})
    pq.write_table(table, tmp_path / "mmrl.parquet")
    done = cli("mmrl", tmp_path / "mmrl.parquet", tmp_path / "out", "--val-size", "0")
    assert done.returncode == 0, done.stderr
    skipped = report_of(tmp_path / "out")["skipped"]["rows"]
    assert [(row["index"], row["reason"]) for row in skipped] == [(1, "unreadable_value")]
    assert "'images'" in skipped[0]["detail"]


# -- 3. a run that produces nothing, or fails, leaves the previous output as it was --------------------------------


@pytest.fixture
def previous_output(tmp_path):
    """A good cold-start output from an earlier run, and a snapshot of it."""
    out = tmp_path / "out"
    source = write_json_array(tmp_path / "good.json", coldstart_rows())
    assert cli("coldstart", source, out, "--val-size", "1").returncode == 0
    return out, snapshot(out)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            json.dumps({"rows": coldstart_rows()}),
            "expected a JSON array .* or JSON Lines .* found a single JSON object",
        ),
        (json.dumps({"rows": coldstart_rows()}, indent=2), "expected a JSON array .* found a JSON object spread over"),
        ("", "empty: expected a JSON array"),
        (" \n\n  \t\n", "empty: expected a JSON array"),
        ('"just a string"', "expected a JSON array .* found a single JSON string"),
    ],
    ids=["object", "pretty_object", "empty", "blank", "string"],
)
def test_a_json_file_that_is_not_an_array_nor_lines_fails_and_keeps_the_previous_output(
    tmp_path, previous_output, content, message
):
    out, before = previous_output
    source = tmp_path / "coldstart.json"
    source.write_text(content, encoding="utf-8")
    done = cli("coldstart", source, out)
    assert done.returncode == 1
    assert str(source) in done.stderr
    assert __import__("re").search(message, done.stderr), done.stderr
    assert snapshot(out) == before


def test_an_empty_jsonl_file_is_an_error(tmp_path):
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b"")
    done = cli("textrl", source, tmp_path / "out")
    assert done.returncode == 1 and "empty: expected JSON Lines" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_run_that_keeps_no_row_fails_and_keeps_the_previous_output(tmp_path, previous_output):
    out, before = previous_output
    source = write_jsonl(tmp_path / "bad.jsonl", [{"question": "no layout"}, {"instruction": "x", "output": ""}])
    done = cli("coldstart", source, out)
    assert done.returncode == 1
    assert "no row could be converted" in done.stderr
    assert "unknown_layout 1" in done.stderr and "invalid_messages 1" in done.stderr
    assert snapshot(out) == before


def test_a_failed_run_into_a_new_folder_leaves_no_folder_behind(tmp_path):
    source = write_jsonl(tmp_path / "bad.jsonl", [{"problem": "no answer"}])
    done = cli("textrl", source, tmp_path / "new" / "out")
    assert done.returncode == 1
    assert not (tmp_path / "new").exists()


# -- 4. only the converter's own files are removed; the input is never in the output folder -----------------------


def test_files_the_converter_did_not_write_are_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    theirs = {
        "train-00000-of-00001.parquet": b"a Hugging Face shard",
        "val-notes.parquet": b"someone's file",
        "README.md": b"mine",
    }
    for name, content in theirs.items():
        (out / name).write_bytes(content)
    source = write_parquet(tmp_path / "textrl.parquet", good_textrl_rows(12))
    assert cli("textrl", source, out, "--val-size", "2", "--shard-rows", "4").returncode == 0
    assert report_of(out)["files"]["train"] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    done = cli("textrl", source, out, "--val-size", "2")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["report.json", "train.parquet", "val.parquet", *theirs])
    assert all((out / name).read_bytes() == content for name, content in theirs.items())


def test_a_file_of_the_same_name_the_converter_did_not_write_is_refused_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.parquet").write_bytes(b"someone else's training data")
    before = snapshot(out)
    source = write_parquet(tmp_path / "textrl.parquet", good_textrl_rows(6))
    done = cli("textrl", source, out, "--val-size", "2")
    assert done.returncode == 1
    assert "train.parquet" in done.stderr and "not written by revisual-data" in done.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize("layout", ["file_in_output", "output_is_input_dir", "output_inside_input_dir"])
def test_an_output_folder_holding_an_input_is_refused_before_anything_is_written(tmp_path, layout):
    folder = tmp_path / "data"
    folder.mkdir()
    source = write_parquet(folder / "textrl.parquet", good_textrl_rows(6))
    if layout == "file_in_output":
        inputs, out = source, folder
    elif layout == "output_is_input_dir":
        inputs, out = folder, folder
    else:
        inputs, out = folder, folder / "prepared"
    before = snapshot(tmp_path)
    done = cli("textrl", inputs, out, "--val-size", "2")
    assert done.returncode == 1
    assert "refusing" in done.stderr and str(folder) in done.stderr
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in folder.iterdir()) == ["textrl.parquet"]


def test_a_doctored_report_cannot_point_the_clean_up_at_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim.parquet").write_bytes(b"outside the output folder")
    (out / "notes.md").write_bytes(b"mine")
    report = {"part": "textrl", "files": {"train": ["../victim.parquet", "notes.md", "train.parquet"], "val": "x"}}
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
    source = write_parquet(tmp_path / "textrl.parquet", good_textrl_rows(6))
    done = cli("textrl", source, out, "--val-size", "2", "--shard-rows", "2")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "victim.parquet").read_bytes() == b"outside the output folder"
    assert (out / "notes.md").read_bytes() == b"mine"
    assert report_of(out)["written_by"] == "revisual-data"


# -- 5/6. corrupt images and decompression bombs: skipped, in bounded memory --------------------------------------

PEAK_RSS_CLI = r"""
import sys
from revisual_verl.data.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("PEAK_KB " + next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
sys.exit(code)
"""


def peak_rss_kb(part, source, out, *flags) -> int:
    args = ["prepare", part, "--input", str(source), "--output", str(out), "--no-progress", *flags]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_CLI, *args], capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )
    assert done.returncode == 0, done.stderr
    return int(next(line for line in done.stdout.splitlines() if line.startswith("PEAK_KB ")).split()[1])


def test_corrupt_images_and_decompression_bombs_are_skipped_without_decoding_them(tmp_path):
    good = good_mmrl_rows(4)
    bad = [
        {"problem": "<image> What?", "answer": "1", "images": [{"bytes": data, "path": None}], "dataset": kind}
        for kind, data in corrupt_images().items()
    ]
    clean = write_parquet(tmp_path / "clean.parquet", good)
    hostile = write_parquet(tmp_path / "hostile.parquet", good + bad)
    baseline = peak_rss_kb("mmrl", clean, tmp_path / "clean_out", "--val-size", "0")
    peak = peak_rss_kb("mmrl", hostile, tmp_path / "out", "--val-size", "0")
    report = report_of(tmp_path / "out")
    assert report["skipped"]["by_reason"] == {"undecodable_image": len(bad)}
    details = [row["detail"] for row in report["skipped"]["rows"]]
    assert all("not decoded" in detail for detail in details[-2:]), details
    # Decoding the two oversized images would take 100 MB and 400 MB (one byte a pixel); neither is decoded.
    assert peak < baseline + 48 * 1024, (baseline, peak)
