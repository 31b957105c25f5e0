import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers.raw_grammar import png_bytes
from PIL import Image
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

from revisual_verl.data.mixed_dataset import MixedModalRLDataset


def rollout_inputs(row, processor):
    """What verl's agent loop does with a dataset row: take the images out, apply the template, run the processor.

    verl takes the images out with qwen_vl_utils, which needs torchvision, absent from the CPU test environment;
    the image parts already hold the decoded PIL images that it would return (before its resize, which the
    Qwen2-VL image processor repeats).
    """
    images = [part["image"] for part in row["raw_prompt"][0]["content"] if part["type"] == "image"]
    text = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=images, return_tensors="pt"), images


@pytest.fixture
def image_data_config(verl_data_config):
    """verl's default: no length filter (it needs qwen_vl_utils for image rows)."""
    verl_data_config.filter_overlong_prompts = False
    return verl_data_config


def test_mixed_files_load_through_create_rl_dataset_and_collate(
    prepared_samples, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    files = [str(prepared_samples["mmrl"] / "train.parquet"), str(prepared_samples["textrl"] / "train.parquet")]
    dataset = create_rl_dataset(files, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor)
    assert type(dataset) is MixedModalRLDataset
    assert len(dataset) == 24 and dataset.modality_counts == {"image": 12, "text": 12}

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=8, shuffle=True, collate_fn=collate_fn, generator=torch.Generator().manual_seed(0)
    )
    seen_images = seen_texts = 0
    for batch in loader:
        assert batch["dummy_tensor"].shape == (len(batch["raw_prompt"]), 1)
        for position, prompt in enumerate(batch["raw_prompt"]):
            row = {"raw_prompt": prompt}
            content = prompt[0]["content"]
            if isinstance(content, list):
                seen_images += 1
                parts = [part for part in content if part["type"] == "image"]
                assert parts and all(isinstance(part["image"], Image.Image) for part in parts)
                inputs, images = rollout_inputs(row, tiny_qwen2_vl_processor)
                pad_id = tiny_tokenizer.convert_tokens_to_ids("<|image_pad|>")
                expected = int(inputs["image_grid_thw"].prod(dim=-1).sum()) // 4
                assert len(images) == len(parts)
                assert int((inputs["input_ids"] == pad_id).sum()) == expected > 0
            else:
                seen_texts += 1
                assert "\\boxed{}" in content and "<image>" not in content
            assert batch["reward_model"][position]["ground_truth"]
            assert batch["data_source"][position] in ("grammar_mmrl", "grammar_textrl")
    assert seen_images == 12 and seen_texts == 12


def test_verl_rlhf_dataset_reads_the_converted_parquet(
    prepared_samples, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    """The converter's output needs no custom class: verl's own RLHFDataset reads it and its collate batches it."""
    files = [str(prepared_samples["mmrl"] / "train.parquet"), str(prepared_samples["mmrl"] / "val.parquet")]
    dataset = RLHFDataset(files, tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor)
    batch = collate_fn([dataset[i] for i in range(len(dataset))])
    assert len(batch["raw_prompt"]) == 16
    assert sorted(info["index"] for info in batch["extra_info"]) == list(range(16))


def test_text_only_stage_needs_no_processor(prepared_samples, verl_data_config, tiny_tokenizer):
    files = [str(prepared_samples["textrl"] / "train.parquet")]
    dataset = create_rl_dataset(files, verl_data_config, tiny_tokenizer, processor=None)
    batch = collate_fn([dataset[i] for i in range(len(dataset))])
    assert len(batch["raw_prompt"]) == 12
    assert all(isinstance(prompt[0]["content"], str) for prompt in batch["raw_prompt"])


def test_image_rows_without_a_processor_fail_at_construction(prepared_samples, verl_data_config, tiny_tokenizer):
    with pytest.raises(ValueError, match="12 rows .* carry images but no processor"):
        create_rl_dataset([str(prepared_samples["mmrl"] / "train.parquet")], verl_data_config, tiny_tokenizer, None)


def test_the_length_filter_refuses_to_drop_image_rows_silently_without_qwen_vl_utils(
    prepared_samples, verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor, monkeypatch
):
    monkeypatch.setitem(sys.modules, "qwen_vl_utils", None)  # as where torchvision is missing
    files = [str(prepared_samples["mmrl"] / "train.parquet")]
    with pytest.raises(RuntimeError, match="qwen_vl_utils"):
        create_rl_dataset(files, verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor)


def test_rows_the_length_filter_drops_are_counted(prepared_samples, verl_data_config, tiny_tokenizer):
    files = [str(prepared_samples["textrl"] / "train.parquet")]
    prompts = pq.read_table(files[0]).column("prompt").to_pylist()
    lengths = [len(tiny_tokenizer.apply_chat_template(p, add_generation_prompt=True)["input_ids"]) for p in prompts]
    limit = sorted(lengths)[len(lengths) // 2]
    verl_data_config.max_prompt_length = limit
    dataset = create_rl_dataset(files, verl_data_config, tiny_tokenizer, processor=None)
    assert len(dataset) == sum(length <= limit for length in lengths)
    assert 0 < dataset.dropped_rows["overlong_prompt"] == len(prompts) - len(dataset) < len(prompts)


def write_foreign_files(tmp_path):
    """Three files whose schemas verl's plain dataset cannot concatenate."""
    image_struct = pa.struct([("bytes", pa.binary()), ("path", pa.null())])
    null_paths = pa.table(
        {
            "data_source": ["a"],
            "prompt": [[{"role": "user", "content": "<image> Count."}]],
            "images": pa.array([[{"bytes": png_bytes(), "path": None}]], pa.list_(image_struct)),
            "reward_model": [{"style": "rule", "ground_truth": 3}],
        }
    )
    pq.write_table(null_paths, tmp_path / "null_paths.parquet")
    features = datasets.Features(
        {
            "data_source": datasets.Value("string"),
            "prompt": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
            "images": datasets.List(datasets.Image()),
            "reward_model": {"style": datasets.Value("string"), "ground_truth": datasets.Value("float64")},
        }
    )
    rows = [
        {
            "data_source": "b",
            "prompt": [{"role": "user", "content": "<image><image> Compare."}],
            "images": [{"bytes": png_bytes(), "path": "x.png"}, {"bytes": png_bytes(20, 20), "path": "y.png"}],
            "reward_model": {"style": "rule", "ground_truth": 1.5},
        },
        {
            "data_source": "b",
            "prompt": [{"role": "user", "content": "<image> Only one placeholder for two images."}],
            "images": [{"bytes": png_bytes(), "path": None}, {"bytes": png_bytes(), "path": None}],
            "reward_model": {"style": "rule", "ground_truth": 2.0},
        },
    ]
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "image_feature.parquet"))
    pq.write_table(
        pa.table(
            {
                "data_source": ["c"],
                "prompt": [[{"role": "user", "content": "2 + 2?"}]],
                "reward_model": [{"style": "rule", "ground_truth": 4}],
            }
        ),
        tmp_path / "text_only.parquet",
    )
    return [str(tmp_path / name) for name in ("null_paths.parquet", "image_feature.parquet", "text_only.parquet")]


def test_files_with_differing_schemas_are_unified_and_bad_rows_dropped(
    tmp_path, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    files = write_foreign_files(tmp_path)
    with pytest.raises(ValueError, match="can't be aligned"):
        RLHFDataset(list(files), tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor)

    dataset = MixedModalRLDataset(list(files), tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor)
    assert len(dataset) == 3
    assert dataset.dropped_rows["image_placeholder_mismatch"] == 1
    assert dataset.modality_counts == {"image": 2, "text": 1}
    rows = [dataset[i] for i in range(3)]
    assert [row["data_source"] for row in rows] == ["a", "b", "c"]
    assert [row["reward_model"]["ground_truth"] for row in rows] == [3.0, 1.5, 4.0]
    for row in rows[:2]:
        inputs, images = rollout_inputs(row, tiny_qwen2_vl_processor)
        assert len(images) == len(row["raw_prompt"][0]["content"]) - 1
        assert inputs["image_grid_thw"].shape == (len(images), 3)
    collate_fn(rows)

    parts = dataset.split(3)
    assert [type(part) for part in parts] == [MixedModalRLDataset] * 3
    assert [part[0]["data_source"] for part in parts] == ["a", "b", "c"]


def test_modality_counts_and_the_processor_check_see_only_the_max_samples_subset(
    prepared_samples, image_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    files = [str(prepared_samples["textrl"] / "train.parquet"), str(prepared_samples["mmrl"] / "train.parquet")]
    # Unshuffled, the first five rows are text rows; the image rows behind them are never used, need no processor.
    image_data_config.shuffle = False
    dataset = MixedModalRLDataset(list(files), tiny_tokenizer, image_data_config, processor=None, max_samples=5)
    assert len(dataset) == 5 and dataset.modality_counts == {"image": 0, "text": 5}

    image_data_config.shuffle, image_data_config.seed = True, 3
    with pytest.raises(ValueError, match=r"^(\d+) rows .* carry images") as caught:
        MixedModalRLDataset(list(files), tiny_tokenizer, image_data_config, processor=None, max_samples=10)
    sampled = MixedModalRLDataset(
        list(files), tiny_tokenizer, image_data_config, processor=tiny_qwen2_vl_processor, max_samples=10
    )
    image_rows = sum(bool(images) for images in sampled.dataframe["images"])
    assert 0 < image_rows < 10 and caught.match(rf"^{image_rows} rows ")
    assert sampled.modality_counts == {"image": image_rows, "text": 10 - image_rows}
