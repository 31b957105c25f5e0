"""A learning run reuses a task or base in its WORK_DIR only when it was made with the settings and sources asked
for now; anything else stops it with what differs."""

import json
import sys

import pytest

from revisual_verl.synthetic_task import generate, pretrain
from revisual_verl.synthetic_task.provenance import STAMP_FILE, StaleOutput, make_stamp, reusable, source_digests

SMALL = ["--coldstart", "20", "--image-train", "20", "--text-train", "20", "--heldout", "10"]


def modification_times(folder):
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def test_a_task_is_kept_when_asked_again_and_refused_when_asked_otherwise(tmp_path, capsys):
    task = tmp_path / "task"
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 0  # absent: generated
    assert (task / STAMP_FILE).is_file()
    before = modification_times(task)

    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 0
    assert "reused" in capsys.readouterr().out
    assert modification_times(task) == before

    assert generate.main(["--output", str(task), "--reuse", *SMALL, "--seed", "1", "--careless-fraction", "0.5"]) == 2
    error = capsys.readouterr().err
    assert "setting seed: 0 there, 1 now" in error
    assert "setting careless_fraction: 0.0 there, 0.5 now" in error
    assert "setting coldstart" not in error  # only what differs is named
    assert f"remove {task}" in error
    assert modification_times(task) == before  # refused, not written over


def test_a_task_without_a_stamp_is_refused(tmp_path, capsys):
    task = tmp_path / "task"
    assert generate.main(["--output", str(task), *SMALL]) == 0
    (task / STAMP_FILE).unlink()  # as an older tree left it
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 2
    assert "older tree" in capsys.readouterr().err


def test_a_task_made_by_other_sources_is_refused(tmp_path, capsys):
    task = tmp_path / "task"
    assert generate.main(["--output", str(task), *SMALL]) == 0
    stamp = json.loads((task / STAMP_FILE).read_text())
    assert set(stamp["sources"]) == set(generate.TASK_SOURCES)
    stamp["sources"]["revisual_verl.synthetic_task.problems"] = "0" * 64
    (task / STAMP_FILE).write_text(json.dumps(stamp))
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 2
    error = capsys.readouterr().err
    assert (
        "source of revisual_verl.synthetic_task.problems changed since it was made (sha256 000000000000 there" in error
    )
    assert "source of revisual_verl.synthetic_task.generate" not in error


def test_a_digest_follows_the_source_file(tmp_path, monkeypatch):
    module = tmp_path / "made_of.py"
    module.write_text("STEP = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = source_digests(["made_of"])
    assert source_digests(["made_of"]) == first
    module.write_text("STEP = 2\n")
    assert source_digests(["made_of"]) != first
    assert "made_of" not in sys.modules  # read, never imported
    with pytest.raises(ValueError, match="no_such_module"):
        source_digests(["no_such_module"])


def test_a_base_is_checked_before_any_training(tmp_path, capsys):
    """--reuse decides from the stamp alone: a folder with a matching stamp is kept at once, another seed or another
    alignment weight is refused, and a folder with no stamp or a broken one is refused."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    pretrain_stamp = pretrain.base_stamp(seed=0)
    (base / STAMP_FILE).write_text(json.dumps(pretrain_stamp))
    assert pretrain.main(["--output", str(base), "--reuse"]) == 0
    assert pretrain.main(["--output", str(base), "--reuse", "--seed", "2", "--align-weight", "0"]) == 2
    error = capsys.readouterr().err
    assert "setting seed: 0 there, 2 now" in error and "setting align_weight: 1.0 there, 0.0 now" in error
    (base / "config.json").unlink()
    assert pretrain.main(["--output", str(base), "--reuse"]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    (base / STAMP_FILE).write_text(json.dumps({"settings": [], "sources": {}}))
    with pytest.raises(StaleOutput, match="no settings or no sources"):
        reusable(base, pretrain_stamp, "a base model")
    (base / STAMP_FILE).write_text("{not json")
    assert pretrain.main(["--output", str(base), "--reuse"]) == 2
    assert "unreadable" in capsys.readouterr().err
    (base / STAMP_FILE).unlink()
    with pytest.raises(StaleOutput, match="older tree"):
        reusable(base, pretrain_stamp, "a base model")
    assert reusable(tmp_path / "absent", pretrain_stamp, "a base model") is False


def test_a_stamp_read_back_equals_the_one_made():
    stamp = make_stamp({"pixels": (28, 28), "rate": 1e-3}, ["revisual_verl.synthetic_task.provenance"])
    assert stamp["settings"] == {"pixels": [28, 28], "rate": 0.001}
    assert json.loads(json.dumps(stamp)) == stamp


def test_every_option_that_shapes_the_output_is_in_its_stamp():
    """A setting left out of the stamp would let an output made with another value pass as this one."""
    not_shaping = {"output", "reuse", "threads"}
    task_options = {action.dest for action in generate.build_parser()._actions} - not_shaping - {"help"}
    assert task_options <= set(generate.task_stamp(generate.TaskSettings())["settings"])
    base_options = {action.dest for action in pretrain.build_parser()._actions} - not_shaping - {"help"}
    assert base_options <= set(pretrain.base_stamp()["settings"])


def test_an_interrupted_generation_leaves_nothing_that_passes_as_a_task(tmp_path, monkeypatch, capsys):
    task = tmp_path / "task"
    real_write = generate.write_parquet
    written = []

    def fail_after_one(path, *args):
        if written:
            raise OSError("disk full")
        written.append(path)
        real_write(path, *args)

    monkeypatch.setattr(generate, "write_parquet", fail_after_one)
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 1
    assert not task.exists()  # the unfinished files stay in task.partial
    monkeypatch.setattr(generate, "write_parquet", real_write)
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 0
    assert (task / STAMP_FILE).is_file() and not (tmp_path / "task.partial").exists()

    # Written over in place with other settings and stopped half-way: the old stamp is gone with the old task.
    written.clear()
    monkeypatch.setattr(generate, "write_parquet", fail_after_one)
    assert generate.main(["--output", str(task), *SMALL, "--seed", "7"]) == 1
    monkeypatch.setattr(generate, "write_parquet", real_write)
    capsys.readouterr()
    assert generate.main(["--output", str(task), "--reuse", *SMALL]) == 2
    assert "not to the end" in capsys.readouterr().err
