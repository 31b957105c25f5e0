"""MixedModalRLDataset's length filter keeps verl's rows but counts each dropped row under its true reason (issue 10).

verl's ``filter_overlong_prompts`` counts a row whose prompt raises while it is built as too long; here such a row
is counted in ``dropped_rows["prompt_processing_error"]`` and only a prompt over ``max_prompt_length`` tokens in
``dropped_rows["overlong_prompt"]``. The parquet files are written by hand, as another tool would write them.
"""

import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.raw_grammar import png_bytes
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.dataset.rl_dataset import RLHFDataset

from revisual_verl.data.mixed_dataset import MixedModalRLDataset

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(IMAGE)),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([("index", pa.int64())])),
    ]
)
# Bounds above the tiny processor's own (at most 56x56 pixels), so an image's token count depends on them.
MM_PROCESSOR_KWARGS = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
LOGGER = "revisual_verl.data.mixed_dataset"


def row(index: int, messages: list[dict], images: tuple[bytes, ...] = ()) -> dict:
    return {
        "data_source": "handmade",
        "prompt": messages,
        "images": [{"bytes": data, "path": None} for data in images],
        "reward_model": {"style": "rule", "ground_truth": str(index)},
        "extra_info": {"index": index},
    }


def write(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "handmade.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return str(path)


def malformed_rows(start: int, image: bytes | None = None) -> list[dict]:
    """Rows that pass the placeholder and image checks but whose prompt the chat template cannot build."""
    images = (image,) if image is not None else ()
    placeholder = "<image> " if image is not None else ""
    return [
        row(start, [{"role": None, "content": placeholder + "A message without a role."}], images),
        row(start + 1, [{"role": "user", "content": None}]),
        row(start + 2, []),
    ]


def kept_indices(dataset) -> list[int]:
    return [info["index"] for info in dataset.dataframe["extra_info"]]


def text_length(tokenizer, content: str) -> int:
    messages = [{"role": "user", "content": content}]
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"])


@pytest.mark.parametrize("workers", [1, 2])
def test_text_rows_are_dropped_as_overlong_only_past_the_limit_and_unbuildable_ones_apart(
    tmp_path, verl_data_config, tiny_tokenizer, caplog, capfd, workers
):
    limit = text_length(tiny_tokenizer, "x" * 40)
    rows = [
        row(0, [{"role": "user", "content": "x" * 10}]),
        row(1, [{"role": "user", "content": "x" * 40}]),  # exactly max_prompt_length tokens: kept
        row(2, [{"role": "user", "content": "x" * 41}]),  # one token over
        *malformed_rows(3),
    ]
    path = write(tmp_path, rows)
    verl_data_config.max_prompt_length = limit
    verl_data_config.filter_overlong_prompts_workers = workers
    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        dataset = create_rl_dataset([path], verl_data_config, tiny_tokenizer, processor=None)
    assert type(dataset) is MixedModalRLDataset
    assert kept_indices(dataset) == [0, 1]
    assert dataset.dropped_rows["overlong_prompt"] == 1
    assert dataset.dropped_rows["prompt_processing_error"] == 3
    logged = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert any(message.startswith("dropping row 3: ") and "TypeError" in message for message in logged)
    assert any(message.startswith("dropping row 4: ") and "TypeError" in message for message in logged)
    assert any(message.startswith("dropping row 5: ") for message in logged)
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err

    verl_dataset = RLHFDataset([path], tiny_tokenizer, verl_data_config, processor=None)
    assert kept_indices(verl_dataset) == kept_indices(dataset)


def test_only_the_first_few_unbuildable_rows_are_logged(tmp_path, verl_data_config, tiny_tokenizer, caplog):
    rows = [row(index, [{"role": None, "content": f"Question {index}"}]) for index in range(8)]
    rows.append(row(8, [{"role": "user", "content": "A good question."}]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        dataset = create_rl_dataset([write(tmp_path, rows)], verl_data_config, tiny_tokenizer, processor=None)
    assert kept_indices(dataset) == [8]
    assert dataset.dropped_rows["prompt_processing_error"] == 8 and dataset.dropped_rows["overlong_prompt"] == 0
    logged = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert [message.split(":")[0] for message in logged if message.startswith("dropping row")] == [
        f"dropping row {index}" for index in range(5)
    ]
    assert any("dropped 8 of 9 rows whose prompt cannot be built" in message for message in logged)


def test_with_the_filter_off_nothing_is_dropped_or_counted(tmp_path, verl_data_config, tiny_tokenizer):
    rows = [row(0, [{"role": "user", "content": "x" * 500}]), *malformed_rows(1)]
    verl_data_config.filter_overlong_prompts = False
    verl_data_config.max_prompt_length = 16
    dataset = create_rl_dataset([write(tmp_path, rows)], verl_data_config, tiny_tokenizer, processor=None)
    assert kept_indices(dataset) == [0, 1, 2, 3]
    assert dataset.dropped_rows["overlong_prompt"] == 0 and dataset.dropped_rows["prompt_processing_error"] == 0


def image_rows(count: int) -> list[dict]:
    """Image rows of differing image sizes and question lengths, and text rows, all of which can be built."""
    rows = []
    for index in range(count):
        side = 30 + 25 * index
        question = f"Question {index}: how many shapes?" + " Look closely." * (index % 3)
        if index % 4 == 3:
            rows.append(row(index, [{"role": "user", "content": question}]))
        else:
            rows.append(row(index, [{"role": "user", "content": "<image> " + question}], (png_bytes(side, 40),)))
    return rows


@pytest.fixture
def processor_data_config(verl_data_config):
    verl_data_config.mm_processor_kwargs = dict(MM_PROCESSOR_KWARGS)
    return verl_data_config


def test_processor_rows_keep_verls_choice_and_count_true_reasons(
    tmp_path, processor_data_config, tiny_tokenizer, tiny_qwen2_vl_processor, caplog, capfd
):
    good = image_rows(12)
    rows = good + malformed_rows(len(good), image=png_bytes(60, 60))
    path = write(tmp_path, rows)

    processor_data_config.filter_overlong_prompts = False
    unfiltered = MixedModalRLDataset([path], tiny_tokenizer, processor_data_config, processor=tiny_qwen2_vl_processor)
    lengths = [unfiltered.prompt_length(unfiltered.dataframe[position]) for position in range(len(good))]
    limit = sorted(lengths)[len(lengths) // 2]
    processor_data_config.filter_overlong_prompts = True
    processor_data_config.max_prompt_length = limit

    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        dataset = create_rl_dataset([path], processor_data_config, tiny_tokenizer, tiny_qwen2_vl_processor)
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err
    verl_dataset = RLHFDataset([path], tiny_tokenizer, processor_data_config, processor=tiny_qwen2_vl_processor)

    kept = kept_indices(dataset)
    assert kept == kept_indices(verl_dataset)
    assert kept == [index for index, length in enumerate(lengths) if length <= limit]
    assert limit in [lengths[index] for index in kept]  # a prompt of exactly max_prompt_length tokens is kept
    assert dataset.dropped_rows["overlong_prompt"] == len(good) - len(kept) > 0
    assert dataset.dropped_rows["prompt_processing_error"] == 3
    logged = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert any(message.startswith(f"dropping row {len(good)}: ") for message in logged)
    # Both kinds of rows were measured: image rows with their vision tokens, text rows with the processor.
    assert {"image", "text"} <= {"image" if good[index]["images"] else "text" for index in kept}
