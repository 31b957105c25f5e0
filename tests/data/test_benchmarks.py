"""``revisual-data prepare eval``: each benchmark's rows, as its Hugging Face dataset stores them, to verl parquet
that verl's RL dataset reads and the recipe's reward scores (issue 18). Nothing is downloaded: the rows are written
here (tests/helpers/raw_benchmarks.py).
"""

import asyncio
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from helpers.raw_benchmarks import BUILDERS, write_parquet
from PIL import Image
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

from revisual_verl.data.benchmarks import BENCHMARKS
from revisual_verl.data.cli import main
from revisual_verl.data.mixed_dataset import MixedModalRLDataset
from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def run_eval(benchmark, source, out, *flags):
    return main(["prepare", "eval", "--benchmark", benchmark, "--input", str(source), "--output", str(out), *flags])


def converted(tmp_path, name, *flags):
    """The raw rows of one benchmark and what the CLI made of them: (raw, report, rows)."""
    raw = BUILDERS[name](tmp_path)
    out = tmp_path / "out"
    assert run_eval(name, raw.path, out, "--no-progress", *flags) == 0
    report = json.loads((out / "report.json").read_text())
    return raw, report, pq.read_table(out / "train.parquet").to_pylist()


def lettered(content: str, letter: str, text: str) -> bool:
    """Whether the prompt shows ``text`` as option ``letter``: ``(B) text``, ``B. text``, ``B:text``, ``B) text``."""
    return re.search(rf"(?:\({letter}\)|\b{letter}[.:)])\s*{re.escape(text)}", content) is not None


def test_every_benchmark_the_paper_reports_has_a_converter():
    names = ("mathverse", "mathvision", "mathvista", "dynamath", "wemath", "logicvista")
    assert set(BENCHMARKS) == {*names, "aime24", "aime25", "math500", "gpqa"} == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_benchmark_converts_its_rows_and_skips_each_bad_one_with_its_reason(tmp_path, name):
    raw, report, rows = converted(tmp_path, name)
    assert (report["part"], report["benchmark"]) == ("eval", name)
    assert report["dataset"] == BENCHMARKS[name].source()
    assert {row["index"]: row["reason"] for row in report["skipped"]["rows"]} == raw.skipped
    assert all(row["detail"] for row in report["skipped"]["rows"])
    assert report["train_rows"] == report["rows_kept"] == len(rows) == len(raw.kept)
    # The whole benchmark in the train split's file, no validation file: verl is given it as validation data.
    assert report["files"] == {"train": ["train.parquet"]}
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["report.json", "train.parquet"]
    # Every row, in input order: a benchmark is never sampled or split.
    assert [row["extra_info"]["index"] for row in rows] == sorted(raw.kept)
    for row in rows:
        expected, info = raw.kept[row["extra_info"]["index"]], row["extra_info"]
        assert row["data_source"] == info["benchmark"] == name and info["split"] == "test"
        assert row["ability"] == BENCHMARKS[name].ability
        assert row["reward_model"]["style"] == "rule" and info["answer"] == row["reward_model"]["ground_truth"]
        assert info["question_type"] == expected.question_type
        assert [image["bytes"] for image in row["images"]] == expected.images
        content = row["prompt"][0]["content"]
        assert [message["role"] for message in row["prompt"]] == ["user"]
        # One placeholder per image, ahead of the question; the benchmark's own markers are gone.
        assert content.count("<image>") == len(expected.images)
        assert content.startswith("<image>" * len(expected.images)) and not re.search(r"<image\s*\d", content)
        assert content.endswith(REVISUAL_INSTRUCTION)
        assert info["unit"] == expected.unit
        for letter, text in zip(LETTERS, info["choices"]):
            assert lettered(content, letter, text), (letter, text, content)
        if expected.ground_truth is not None:
            assert row["reward_model"]["ground_truth"] == expected.ground_truth
            assert info["choices"] == expected.choices


def test_multiple_choice_rows_whose_options_are_only_in_the_picture_are_noted(tmp_path):
    _, report, _ = converted(tmp_path, "mathverse")
    assert report["notes"] == {
        "choices_not_listed": 1,  # the Vision Only question
        "free_form": 2,
        "multiple_choice": 2,
        "rows_without_images": 1,  # the Text Only question
    }


def test_gpqa_shuffles_its_options_by_seed_and_question_and_records_the_letter(tmp_path):
    raw, report, rows = converted(tmp_path, "gpqa")
    right = {"Which particle mediates the electromagnetic force?": "The photon"}
    right["Which particle carries the strong force?"] = "The gluon"
    for row in rows:
        info = row["extra_info"]
        letter = row["reward_model"]["ground_truth"]
        assert info["choices"][LETTERS.index(letter)] == right[info["problem"]]
        assert len(info["choices"]) == 4 and len(set(info["choices"])) == 4
    # The order belongs to the question, not to the row's place in the file: reversed rows get the same letters.
    source = pq.read_table(raw.path)
    reversed_rows = write_parquet(
        tmp_path / "reversed.parquet",
        source.to_pylist()[::-1],
        {name: source.schema.field(name).type for name in source.schema.names},
    )
    assert run_eval("gpqa", reversed_rows, tmp_path / "again", "--no-progress") == 0
    again = pq.read_table(tmp_path / "again" / "train.parquet").to_pylist()
    by_question = {row["extra_info"]["problem"]: row["extra_info"]["choices"] for row in rows}
    assert {row["extra_info"]["problem"]: row["extra_info"]["choices"] for row in again} == by_question
    # Another seed, another order for at least one question.
    assert run_eval("gpqa", raw.path, tmp_path / "seeded", "--no-progress", "--seed", "3") == 0
    seeded = pq.read_table(tmp_path / "seeded" / "train.parquet").to_pylist()
    assert [row["extra_info"]["choices"] for row in seeded] != [row["extra_info"]["choices"] for row in rows]


def test_a_save_to_disk_folder_with_image_features_converts_as_docs_eval_says(tmp_path):
    """docs/eval.md fetches each benchmark with ``load_dataset(...).save_to_disk(DIR)``: image features and all."""
    import datasets

    raw = BUILDERS["mathvista"](tmp_path)
    rows = pq.read_table(raw.path).to_pylist()
    special = {
        "decoded_image": datasets.Image(),
        "choices": datasets.List(datasets.Value("string")),
        "precision": datasets.Value("float64"),
    }
    features = datasets.Features({name: special.get(name, datasets.Value("string")) for name in rows[0]})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    assert run_eval("mathvista", tmp_path / "saved", tmp_path / "out", "--no-progress") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["skipped"]["by_reason"] == {"invalid_choices": 1, "missing_image": 1, "undecodable_image": 1}
    converted_rows = pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()
    # Row 3's picture is a path relative to the input; a saved dataset's folder is its input folder, and the picture
    # is not there: it is skipped as undecodable, while the bytes of the others came through.
    assert [row["reward_model"]["ground_truth"] for row in converted_rows] == ["B", "5"]
    assert [row["images"][0]["bytes"] for row in converted_rows] == [raw.kept[0].images[0], raw.kept[1].images[0]]


@pytest.fixture
def image_data_config(verl_data_config):
    """verl's default: no length filter (it needs qwen_vl_utils for image rows, absent here)."""
    verl_data_config.filter_overlong_prompts = False
    return verl_data_config


@pytest.fixture
def all_benchmarks(tmp_path):
    """Every benchmark converted: {name: (raw, its train.parquet)}."""
    prepared = {}
    for name, build in BUILDERS.items():
        folder = tmp_path / name
        folder.mkdir()
        raw = build(folder)
        assert run_eval(name, raw.path, folder / "out", "--no-progress") == 0
        prepared[name] = (raw, str(folder / "out" / "train.parquet"))
    return prepared


def rollout_inputs(row, processor):
    """What verl's agent loop does with a row: take out the images, apply the chat template, run the processor."""
    content = row["raw_prompt"][0]["content"]
    images = [part["image"] for part in content if part["type"] == "image"] if isinstance(content, list) else []
    text = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=images or None, return_tensors="pt"), images


@pytest.mark.parametrize("dataset_class", ["RLHFDataset", "MixedModalRLDataset"])
def test_the_converted_benchmarks_load_through_verl_together(
    all_benchmarks, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor, dataset_class
):
    files = [path for _, path in all_benchmarks.values()]
    if dataset_class == "RLHFDataset":
        dataset = RLHFDataset(files, tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor)
    else:
        dataset = create_rl_dataset(files, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor)
        assert type(dataset) is MixedModalRLDataset
    expected = {(name, index): kept for name, (raw, _) in all_benchmarks.items() for index, kept in raw.kept.items()}
    assert len(dataset) == len(expected)
    pad_id = tiny_tokenizer.convert_tokens_to_ids("<|image_pad|>")
    seen = set()
    for position in range(len(dataset)):
        row = dataset[position]
        key = (row["data_source"], row["extra_info"]["index"])
        seen.add(key)
        inputs, images = rollout_inputs(row, tiny_qwen2_vl_processor)
        assert len(images) == len(expected[key].images) and all(isinstance(i, Image.Image) for i in images)
        if images:
            assert int((inputs["input_ids"] == pad_id).sum()) == int(inputs["image_grid_thw"].prod(dim=-1).sum()) // 4
        assert row["reward_model"]["ground_truth"] == row["extra_info"]["answer"]
        if expected[key].choices is not None:
            assert list(row["extra_info"]["choices"]) == expected[key].choices
    assert seen == set(expected)
    batch = collate_fn([dataset[position] for position in range(len(dataset))])
    assert sorted(set(batch["data_source"])) == sorted(BUILDERS)


# --- the reward on the converted rows -------------------------------------------------------------------------------


def reward_manager(tokenizer):
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.reward import load_reward_manager

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer", overrides=["reward.reward_manager.name=revisual", "reward.num_workers=1"]
        )
    return load_reward_manager(config, tokenizer)


def scored_item(tokenizer, row: dict, response: str):
    """One rollout of a dataset row as the reward loop hands it over: the row's non-tensor fields ride along."""
    from verl import DataProto

    prompt_ids = torch.tensor(tokenizer.encode("prompt"), dtype=torch.int64)
    response_ids = torch.tensor(tokenizer.encode(response), dtype=torch.int64)
    input_ids = torch.cat([prompt_ids, response_ids])
    tensors = {
        "prompts": prompt_ids[None],
        "responses": response_ids[None],
        "input_ids": input_ids[None],
        "attention_mask": torch.ones_like(input_ids)[None],
    }
    non_tensors = {key: np.array([row[key]], dtype=object) for key in ("data_source", "reward_model", "extra_info")}
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)


# (benchmark, input index, final answer, accuracy)
REWARD_CASES = [
    ("mathvista", 0, "B", 1.0),  # the right letter
    ("mathvista", 0, "\\frac{8}{11}", 1.0),  # the right option's text, in another spelling
    ("mathvista", 0, "(B) 8/11", 1.0),
    ("mathvista", 0, "A", 0.0),
    ("mathvista", 0, "3/11", 0.0),  # a wrong option's text
    ("mathvista", 0, "(A) 8/11", 0.0),  # the right text under a wrong letter
    ("mathvista", 1, "5 \\text{ cm}", 1.0),  # free form, with the unit
    ("mathvista", 1, "6", 0.0),
    ("mathverse", 0, "4", 1.0),  # options read from the question text
    ("wemath", 0, "60^\\circ", 1.0),  # options read from WeMath's option field
    ("dynamath", 1, "3.14", 1.0),
    ("logicvista", 1, "C, A", 1.0),  # several right options
    ("logicvista", 1, "A", 0.0),
    ("math500", 0, "{-2021, 2021}", 1.0),  # a set of both signs against "\pm 2021"
    ("gpqa", 0, "\\text{The photon}", 1.0),
    ("gpqa", 0, "\\text{The gluon}", 0.0),
]


def test_the_reward_scores_converted_rows_by_letter_or_option_text(
    all_benchmarks, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    manager = reward_manager(tiny_tokenizer)
    rows = {}
    for name, (_, path) in all_benchmarks.items():
        dataset = RLHFDataset([path], tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor)
        for position in range(len(dataset)):
            row = dataset[position]
            rows[(name, row["extra_info"]["index"])] = row
    gpqa_letter = rows[("gpqa", 0)]["reward_model"]["ground_truth"]
    cases = [*REWARD_CASES, ("gpqa", 0, gpqa_letter, 1.0)]

    async def score_all():
        items = [
            scored_item(tiny_tokenizer, rows[(name, index)], f"<think>t</think> \\boxed{{{answer}}}")
            for name, index, answer, _ in cases
        ]
        return await asyncio.gather(*(manager.run_single(item) for item in items))

    results = asyncio.run(score_all())
    got = [
        (name, index, answer, result["reward_extra_info"]["acc"])
        for (name, index, answer, _), result in zip(cases, results)
    ]
    assert got == cases


# --- the guarantees every converter gives ----------------------------------------------------------------------------


def test_a_failed_or_empty_run_keeps_the_previous_output(tmp_path, capsys):
    raw = BUILDERS["math500"](tmp_path)
    out = tmp_path / "out"
    assert run_eval("math500", raw.path, out, "--no-progress") == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    nothing_good = tmp_path / "bad.jsonl"
    nothing_good.write_text('{"problem": "What?", "answer": ""}\n{"answer": "1"}\n', encoding="utf-8")
    assert run_eval("math500", nothing_good, out, "--no-progress") == 1
    assert "no row could be converted: read 2 rows, skipped all of them" in capsys.readouterr().err
    assert run_eval("math500", raw.path, out, "--no-progress", "--strict") == 1  # its row 1 has no answer
    assert f"row 1 of {raw.path} rejected (missing_answer)" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_image_paths_resolve_inside_the_data_or_an_allowed_root_only(tmp_path):
    raw = BUILDERS["wemath"](tmp_path)  # its row 1 names ../outside.png, beside the data folder
    allowed = tmp_path / "allowed"
    assert run_eval("wemath", raw.path, allowed, "--no-progress", "--allow-image-root", str(tmp_path)) == 0
    report = json.loads((allowed / "report.json").read_text())
    assert report["train_rows"] == 2 and "image_outside_data" not in report["skipped"]["by_reason"]


def test_the_output_folder_rules_hold_for_a_benchmark(tmp_path, capsys):
    raw = BUILDERS["aime24"](tmp_path)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "train.parquet").write_bytes(b"someone else's")
    assert run_eval("aime24", raw.path, theirs, "--no-progress") == 1
    assert "it holds train.parquet, not written by revisual-data" in capsys.readouterr().err
    assert (theirs / "train.parquet").read_bytes() == b"someone else's"
    # A run replaces a previous run's files, whichever part wrote them: a benchmark's report lists no val file.
    textrl = tmp_path / "textrl.jsonl"
    textrl.write_text("".join(f'{{"problem": "{n} + {n}?", "answer": "{2 * n}"}}\n' for n in range(4)))
    mine = tmp_path / "mine"
    assert main(["prepare", "textrl", "-i", str(textrl), "-o", str(mine), "--no-progress", "--val-size", "1"]) == 0
    assert run_eval("aime24", raw.path, mine, "--no-progress") == 0
    assert sorted(path.name for path in mine.iterdir()) == ["report.json", "train.parquet"]
    assert run_eval("aime24", raw.path, mine, "--no-progress", "--shard-rows", "1") == 0
    assert sorted(path.name for path in mine.iterdir()) == ["report.json", "train-00000.parquet", "train-00001.parquet"]
    assert main(["prepare", "textrl", "-i", str(textrl), "-o", str(mine), "--no-progress", "--val-size", "1"]) == 0
    assert sorted(path.name for path in mine.iterdir()) == ["report.json", "train.parquet", "val.parquet"]


def test_the_report_names_the_split_when_the_input_says_it(tmp_path):
    import datasets

    raw = BUILDERS["math500"](tmp_path)
    assert run_eval("math500", raw.path, tmp_path / "from_file", "--no-progress") == 0
    assert json.loads((tmp_path / "from_file" / "report.json").read_text())["split"] is None  # a file does not say
    rows = [{"problem": "What is $1 + 1$?", "answer": "2"}, {"problem": "What is $2 + 2$?", "answer": "4"}]
    saved = datasets.Dataset.from_list(rows, split=datasets.NamedSplit("test"))
    saved.save_to_disk(str(tmp_path / "saved"))
    assert run_eval("math500", tmp_path / "saved", tmp_path / "from_saved", "--no-progress") == 0
    assert json.loads((tmp_path / "from_saved" / "report.json").read_text())["split"] == "test"
    datasets.DatasetDict({"test": saved, "other": saved}).save_to_disk(str(tmp_path / "both"))
    assert run_eval("math500", tmp_path / "both", tmp_path / "chosen", "--no-progress", "--split", "other") == 0
    assert json.loads((tmp_path / "chosen" / "report.json").read_text())["split"] == "other"


def test_a_prompt_over_the_token_limit_is_skipped(tmp_path, tiny_tokenizer_dir):
    raw = BUILDERS["aime24"](tmp_path)
    # The tiny tokenizer makes a token of every byte: the two prompts are 296 and 291 tokens long.
    flags = ["--no-progress", "--tokenizer", str(tiny_tokenizer_dir), "--max-prompt-tokens", "293"]
    assert run_eval("aime24", raw.path, tmp_path / "out", *flags) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["skipped"]["by_reason"] == {"prompt_too_long": 1}  # "Find the number of ways." is the longer


def test_progress_bar_unless_no_progress(tmp_path, capsys):
    raw = BUILDERS["aime24"](tmp_path)
    assert run_eval("aime24", raw.path, tmp_path / "a", "--progress") == 0
    assert re.search(r"train\.parquet: 100%.*2/2 \[", capsys.readouterr().err)  # the bar names the input file
    assert run_eval("aime24", raw.path, tmp_path / "b", "--no-progress") == 0
    assert capsys.readouterr().err == ""


def test_help_and_eval_argument_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["prepare", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "--benchmark" in shown and "train.parquet" in shown
    for name, benchmark in BENCHMARKS.items():
        assert name in shown and benchmark.dataset in shown.replace("\n", " ")
    source = BUILDERS["aime24"](tmp_path).path
    for argv, message in [
        (["prepare", "eval", "-i", str(source), "-o", str(tmp_path / "o")], "eval needs a benchmark"),
        (["prepare", "eval", "--benchmark", "mmmu", "-i", str(source), "-o", "o"], "invalid choice: 'mmmu'"),
        (["prepare", "eval", "--benchmark", "aime24", "-i", str(source), "-o", "o", "--val-size", "3"], "--val-size"),
        (
            ["prepare", "eval", "--benchmark", "aime24", "-i", str(source), "-o", "o", "--data-source", "x"],
            "data_source",
        ),
        (["prepare", "textrl", "--benchmark", "aime24", "-i", str(source), "-o", "o"], "benchmark applies to eval"),
    ]:
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        assert message in capsys.readouterr().err
