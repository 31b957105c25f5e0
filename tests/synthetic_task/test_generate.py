"""The generated files: their raw GRAMMAR layouts, the split, seeding, and a pass through the real converters."""

import io
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from revisual_verl.data.cli import main as revisual_data
from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION
from revisual_verl.reward.composite import revisual_reward
from revisual_verl.synthetic_task import generate, problems
from revisual_verl.synthetic_task.problems import IMAGE, TEXT, split_keys

SMALL = ["--coldstart", "50", "--image-train", "50", "--text-train", "50", "--heldout", "40"]
TRAIN_FILES = ("coldstart.json", "mmrl.parquet", "textrl.parquet")
HELD_OUT_FILES = ("heldout_image.parquet", "heldout_image_blank.parquet", "heldout_text.parquet")
ALL_FILES = (*TRAIN_FILES, *HELD_OUT_FILES, "task.json")


def run_generate(output: Path, *flags: str) -> int:
    return generate.main(["--output", str(output), *SMALL, *flags])


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    output = tmp_path_factory.mktemp("synthetic") / "raw"
    assert run_generate(output) == 0
    return output


def rows_of(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return pq.read_table(path).to_pylist()


def decode(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def keys_of(name: str, rows: list[dict], problem_digits, digit_reader) -> list[tuple[str, tuple[int, ...]]]:
    """(kind, key) of every row, read back out of the written text and pictures alone."""
    keys = []
    for row in rows:
        if name == "coldstart.json":
            question = row["instruction"].removesuffix(" " + REVISUAL_INSTRUCTION)
            keys.append((TEXT, problem_digits(question)))
        elif "images" in row:
            text_digits = problem_digits(row["problem"])
            pictured = int(row["answer"]) - sum(text_digits)
            if name != "heldout_image_blank.parquet":
                # The picture must show the digit the answer implies.
                assert digit_reader(decode(row["images"][0]["bytes"]))[0] == pictured, row["problem"]
            keys.append((IMAGE, (pictured, *text_digits)))
        else:
            keys.append((TEXT, problem_digits(row["problem"])))
    return keys


def test_the_cli_writes_every_file_and_a_line_for_each(tmp_path, capsys):
    assert run_generate(tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted((*ALL_FILES, "made_with.json"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ALL_FILES)
    for name, line in zip(ALL_FILES, lines):
        assert line.startswith(str(tmp_path / "out" / name) + ":"), line


def test_the_module_runs_as_a_script_with_help():
    result = subprocess.run(
        [sys.executable, "-m", "revisual_verl.synthetic_task.generate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in ("--output", "--seed", "--coldstart", "--image-train", "--text-train", "--heldout"):
        assert flag in result.stdout
    for name in ALL_FILES:
        assert name in result.stdout


@pytest.mark.parametrize(
    "flags",
    [["--heldout-fraction", "1"], ["--heldout-fraction", "0"], ["--image-operands", "0"], ["--text-operands", "1"],
     ["--coldstart", "-1"], ["--image-size", "20"], ["--text-operands", "6"]],
)  # fmt: skip
def test_bad_settings_are_refused_before_writing(tmp_path, flags):
    with pytest.raises(SystemExit) as stopped:
        run_generate(tmp_path / "out", *flags)
    assert stopped.value.code == 2
    assert not (tmp_path / "out").exists()


def test_raw_layouts_match_what_the_grammar_readers_expect(raw):
    coldstart = rows_of(raw / "coldstart.json")
    assert all(set(row) == {"instruction", "input", "output"} for row in coldstart)
    for name in ("mmrl.parquet", "heldout_image.parquet", "heldout_image_blank.parquet"):
        schema = pq.read_schema(raw / name)
        assert schema.names == ["problem", "answer", "images", "dataset"]
        assert str(schema.field("images").type) == "list<element: struct<bytes: binary, path: string>>"
        for row in rows_of(raw / name):
            assert row["problem"].count("<image>") == len(row["images"]) == 1
            assert row["images"][0]["path"] is None and row["dataset"] == "synthetic_digits"
    for name in ("textrl.parquet", "heldout_text.parquet"):
        assert pq.read_schema(raw / name).names == ["problem", "answer", "dataset"]
        assert all(row["dataset"] == "synthetic_sums" for row in rows_of(raw / name))


def test_no_training_row_asks_a_held_out_problem(raw, problem_digits, digit_reader):
    splits = {IMAGE: split_keys(IMAGE, 1), TEXT: split_keys(TEXT, 3)}
    seen = defaultdict(set)
    by_file = defaultdict(set)
    for name in TRAIN_FILES + HELD_OUT_FILES:
        side = "held_out" if name in HELD_OUT_FILES else "train"
        rows = rows_of(raw / name)
        assert len(rows) == (40 if side == "held_out" else 50)
        for kind, key in keys_of(name, rows, problem_digits, digit_reader):
            assert key in getattr(splits[kind], side), (name, key)
            seen[side, kind].add(key)
            by_file[name].add(key)
    assert not seen["train", IMAGE] & seen["held_out", IMAGE]
    assert not seen["train", TEXT] & seen["held_out", TEXT]
    # Text RL asks problems the cold start never showed (GRAMMAR's parts hold different problems).
    assert by_file["coldstart.json"] and by_file["textrl.parquet"]
    assert not by_file["coldstart.json"] & by_file["textrl.parquet"]
    # 40 held-out rows go through the 17 held-out image problems evenly: each is asked two or three times.
    held_out_rows = rows_of(raw / "heldout_image.parquet")
    counts = Counter(keys_of("heldout_image.parquet", held_out_rows, problem_digits, digit_reader))
    assert set(counts.values()) <= {2, 3} and len(counts) == len(splits[IMAGE].held_out)


def test_cold_start_traces_are_worked_solutions_of_their_questions(raw, problem_digits):
    for row in rows_of(raw / "coldstart.json"):
        question = row["instruction"]
        assert question.endswith(" " + REVISUAL_INSTRUCTION)
        key = problem_digits(question.removesuffix(" " + REVISUAL_INSTRUCTION))
        total, steps = key[0], []
        for digit in key[1:]:
            steps.append(f"{total}+{digit}={total + digit}")
            total += digit
        assert row["output"] == f"<think>{' '.join(steps)}</think>\\boxed{{{total}}}"


SHORT_INSTRUCTION = " Think in <think> </think>, then answer in \\boxed{}."


@pytest.mark.parametrize("instruction", [SHORT_INSTRUCTION, "Question: {problem} Answer in \\boxed{}.", ""])
def test_cold_start_questions_are_the_prompts_revisual_data_builds_with_the_same_instruction(
    tmp_path, instruction, problem_digits
):
    assert run_generate(tmp_path / "raw", "--instruction", instruction) == 0
    _, cold, _ = prepare("coldstart", tmp_path / "raw" / "coldstart.json", tmp_path / "cold", "--val-size", "0")
    _, text, _ = prepare(
        "textrl",
        tmp_path / "raw" / "textrl.parquet",
        tmp_path / "text",
        "--val-size",
        "0",
        "--instruction",
        instruction,
    )
    # One template around the problem sentence in both: the cold start trains on the RL prompt's exact wording.
    templates = set()
    for row in cold:
        question = row["messages"][0]["content"]
        sentence = re.search(r"Add [\d, and]+\.", question).group(0)
        assert row["messages"][1]["content"] == problems.worked_solution(problem_digits(sentence))
        templates.add(("cold", question.replace(sentence, "<P>")))
    for row in text:
        templates.add(("text", row["prompt"][0]["content"].replace(row["extra_info"]["problem"], "<P>")))
    assert {template for _, template in templates} == {
        instruction.replace("{problem}", "<P>") if "{problem}" in instruction else f"<P> {instruction.strip()}".strip()
    }
    assert json.loads((tmp_path / "raw" / "task.json").read_text())["settings"]["instruction"] == instruction


def test_the_blank_control_asks_the_same_problems_without_a_picture(raw, digit_reader):
    pictured = rows_of(raw / "heldout_image.parquet")
    blank = rows_of(raw / "heldout_image_blank.parquet")
    assert [(r["problem"], r["answer"], r["dataset"]) for r in blank] == [
        (r["problem"], r["answer"], r["dataset"]) for r in pictured
    ]
    for row in blank:
        image = decode(row["images"][0]["bytes"])
        assert image.size == (28, 28)
        assert digit_reader(image) == (None, {})  # not a single dark pixel
    # Rows of one problem are drawn afresh: repeated held-out problems do not repeat their picture.
    by_problem = defaultdict(set)
    for row in pictured:
        by_problem[row["problem"], row["answer"]].add(row["images"][0]["bytes"])
    assert all(len(images) > 1 for images in by_problem.values())


def test_task_json_describes_the_files(raw, problem_digits):
    task = json.loads((raw / "task.json").read_text())
    assert task["settings"]["seed"] == 0 and task["settings"]["heldout_fraction"] == 0.2
    assert {name: info["rows"] for name, info in task["files"].items()} == {
        name: len(rows_of(raw / name)) for name in TRAIN_FILES + HELD_OUT_FILES
    }
    assert task["keys"][IMAGE] == {"total": 100, "train": 83, "held_out": 17}
    text = task["keys"][TEXT]
    assert text["coldstart"] + text["textrl"] == text["train"] and abs(text["coldstart"] - text["textrl"]) < 80
    assert task["blank_control"]["chance_accuracy"] == pytest.approx(0.1)
    # The text-only bound, counted here from the rows: per sentence, the most frequent answer.
    answers = defaultdict(Counter)
    for row in rows_of(raw / "heldout_image.parquet"):
        answers[row["problem"]][row["answer"]] += 1
    best = Fraction(sum(max(c.values()) for c in answers.values()), 40)
    assert task["blank_control"]["best_text_only_fraction"] == f"{best.numerator}/{best.denominator}"


def test_the_same_seed_gives_identical_files_and_another_seed_different_ones(raw, tmp_path):
    assert run_generate(tmp_path / "again") == 0
    for name in ALL_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (raw / name).read_bytes(), name
    assert run_generate(tmp_path / "other", "--seed", "1") == 0
    for name in (*TRAIN_FILES, *HELD_OUT_FILES):
        assert (tmp_path / "other" / name).read_bytes() != (raw / name).read_bytes(), name


def test_a_file_depends_only_on_its_own_count(raw, tmp_path):
    assert run_generate(tmp_path / "more", "--coldstart", "80") == 0
    assert (tmp_path / "more" / "mmrl.parquet").read_bytes() == (raw / "mmrl.parquet").read_bytes()
    assert rows_of(tmp_path / "more" / "coldstart.json")[:50] == rows_of(raw / "coldstart.json")


def test_the_defaults_take_seconds(tmp_path):
    started = time.perf_counter()
    assert generate.main(["--output", str(tmp_path / "defaults")]) == 0
    assert time.perf_counter() - started < 15
    assert len(rows_of(tmp_path / "defaults" / "mmrl.parquet")) == 2000


# The real converters on the generated files.


def prepare(part: str, source: Path, output: Path, *flags: str) -> tuple[dict, list[dict], list[dict]]:
    code = revisual_data(["prepare", part, "-i", str(source), "-o", str(output), "--no-progress", *flags])
    assert code == 0
    report = json.loads((output / "report.json").read_text())
    train = [row for name in report["files"]["train"] for row in pq.read_table(output / name).to_pylist()]
    return report, train, pq.read_table(output / report["files"]["val"]).to_pylist()


def test_revisual_data_converts_every_part_without_a_skip(raw, tmp_path):
    for name, part in (("coldstart.json", "coldstart"), ("mmrl.parquet", "mmrl"), ("textrl.parquet", "textrl")):
        report, train, val = prepare(part, raw / name, tmp_path / part, "--val-size", "10")
        assert (report["rows_read"], report["skipped"]["total"]) == (50, 0), name
        assert (len(train), len(val)) == (40, 10), name
        # The converter notes a cold-start trace without <think> and an mmrl row without an image.
        expected_notes = {"textrl": {"rows_without_images": 50}}.get(part, {})
        assert report["notes"] == expected_notes, name
    assert json.loads((tmp_path / "coldstart" / "report.json").read_text())["layouts"] == {"alpaca": 50}


def test_prepared_rl_rows_keep_images_and_answers(raw, tmp_path):
    for name, part in (("mmrl.parquet", "mmrl"), ("heldout_image_blank.parquet", "mmrl"), ("textrl.parquet", "textrl")):
        source = rows_of(raw / name)
        _, train, val = prepare(part, raw / name, tmp_path / name, "--val-size", "5")
        assert len(train) + len(val) == len(source)
        for row in train + val:
            original = source[row["extra_info"]["index"]]
            assert row["reward_model"]["ground_truth"] == row["extra_info"]["answer"] == original["answer"]
            assert row["prompt"][0]["content"] == f"{original['problem']} {REVISUAL_INSTRUCTION}"
            assert row["extra_info"]["source"] == original["dataset"]
            images = [image["bytes"] for image in row["images"]]
            assert images == [image["bytes"] for image in original.get("images", [])]
            assert len(images) == (1 if part == "mmrl" else 0)


def test_stage_two_prompts_carry_the_picture_the_answer_needs(raw, tmp_path, problem_digits, digit_reader):
    """The last link to the model: verl's RL dataset (the recipe's MixedModalRLDataset) on the prepared mmrl
    file puts into each prompt a picture that still shows the digit the answer needs. A blank or wrong picture
    anywhere from the generator to the prompt turns this red."""
    from helpers.tiny_models import build_tiny_qwen2_vl_processor, build_tiny_tokenizer
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.utils import create_rl_dataset

    _, train, _ = prepare("mmrl", raw / "mmrl.parquet", tmp_path / "mmrl", "--val-size", "0")
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[
                "data.custom_cls.path=pkg://revisual_verl.data.mixed_dataset",
                "data.custom_cls.name=MixedModalRLDataset",
                "data.filter_overlong_prompts=false",
                "data.image_key=images",
            ],
        ).data
    tokenizer = build_tiny_tokenizer()
    dataset = create_rl_dataset(
        [str(tmp_path / "mmrl" / "train.parquet")], config, tokenizer, build_tiny_qwen2_vl_processor(tokenizer)
    )
    assert len(dataset) == len(train) == 50
    for i in range(len(dataset)):
        row = dataset[i]
        images = [part["image"] for part in row["raw_prompt"][0]["content"] if part["type"] == "image"]
        assert len(images) == 1
        pictured = int(row["reward_model"]["ground_truth"]) - sum(problem_digits(row["extra_info"]["problem"]))
        assert digit_reader(images[0])[0] == pictured, row["extra_info"]["problem"]


def test_held_out_files_prepare_whole_as_one_evaluation_file(raw, tmp_path):
    for name, part in (("heldout_image.parquet", "mmrl"), ("heldout_text.parquet", "textrl")):
        out = tmp_path / name
        report, rows, val = prepare(part, raw / name, out, "--val-size", "0", "--data-source", f"synthetic_{name[:-8]}")
        assert (len(rows), len(val)) == (40, 0)
        assert report["files"] == {"train": ["train.parquet"], "val": "val.parquet"}
        assert {row["data_source"] for row in rows} == {f"synthetic_{name[:-8]}"}
        assert [row["extra_info"]["problem"] for row in rows] == [row["problem"] for row in rows_of(raw / name)]


def test_the_verifier_pays_the_prepared_cold_start_traces(raw, tmp_path, problem_digits):
    _, train, val = prepare("coldstart", raw / "coldstart.json", tmp_path / "coldstart", "--val-size", "0")
    for row in (train + val)[:10]:
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        answer = str(sum(problem_digits(user["content"].removesuffix(" " + REVISUAL_INSTRUCTION))))
        verdict = revisual_reward(assistant["content"], answer, 16)
        assert (verdict.accuracy, verdict.format) == (1.0, 1.0)
        assert revisual_reward(assistant["content"], str(int(answer) + 1), 16).accuracy == 0.0


def test_careless_traces_box_the_first_sum_in_the_share_asked(tmp_path, problem_digits):
    assert run_generate(tmp_path / "raw", "--coldstart", "400", "--careless-fraction", "0.7") == 0
    rows = rows_of(tmp_path / "raw" / "coldstart.json")
    careless = 0
    for row in rows:
        key = problem_digits(row["instruction"].removesuffix(" " + REVISUAL_INSTRUCTION))
        if row["output"] == problems.careless_solution(key):
            careless += 1
            # The verifier pays the slip only when the digits it leaves out add to 0.
            assert (revisual_reward(row["output"], str(sum(key)), 16).accuracy == 1.0) == (sum(key[2:]) == 0)
        else:
            assert row["output"] == problems.worked_solution(key)
    # Seeded, so the share is fixed; the bound is ~3.5 standard deviations of 400 draws at 0.7 either side.
    assert 0.62 < careless / len(rows) < 0.78
    task = json.loads((tmp_path / "raw" / "task.json").read_text())
    assert task["careless_coldstart_rows"] == careless and task["settings"]["careless_fraction"] == 0.7
    # The draw has a stream of its own: the same problems are asked with or without slips.
    assert run_generate(tmp_path / "careful", "--coldstart", "400") == 0
    careful = rows_of(tmp_path / "careful" / "coldstart.json")
    assert [row["instruction"] for row in careful] == [row["instruction"] for row in rows]
    for row in careful:
        key = problem_digits(row["instruction"].removesuffix(" " + REVISUAL_INSTRUCTION))
        assert row["output"] == problems.worked_solution(key)


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--careless-fraction", "1"], "careless_fraction must be in [0, 1)"),
     (["--careless-fraction", "-0.1"], "careless_fraction must be in [0, 1)"),
     (["--careless-fraction", "0.5", "--text-operands", "2"], "need --text-operands 3 or more")],
)  # fmt: skip
def test_bad_careless_settings_are_refused(tmp_path, flags, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_generate(tmp_path / "out", *flags)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
