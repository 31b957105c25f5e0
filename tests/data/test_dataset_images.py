"""MixedModalRLDataset never hands a training step a row whose images cannot be decoded (issue 12, item 5).

The parquet here is written by hand, as another tool would write it, so none of the converter's checks ran.
"""

import io
import sys
import types
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.raw_grammar import corrupt_images, png_bytes
from PIL import Image, ImageFile
from verl.trainer.ppo.utils import create_rl_dataset

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
GOOD_ROWS = 6


def rl_row(number: int, images: list[dict]) -> dict:
    return {
        "data_source": "handmade",
        "prompt": [{"role": "user", "content": "<image>" * len(images) + f" Question {number}?"}],
        "images": images,
        "reward_model": {"style": "rule", "ground_truth": str(number)},
        "extra_info": {"index": number},
    }


def write_handmade(tmp_path):
    """Good image rows, a text row, and one row per corrupt image (the second image of two, so the first is fine)."""
    rows = [rl_row(n, [{"bytes": png_bytes(40 + n, 30), "path": None}]) for n in range(GOOD_ROWS)]
    rows.append(rl_row(GOOD_ROWS, []))
    bad = dict(corrupt_images())
    bad["no_bytes"] = None
    bad["extreme_aspect_ratio"] = png_bytes(1000, 2)
    for number, (kind, data) in enumerate(bad.items(), start=100):
        rows.append(rl_row(number, [{"bytes": png_bytes(), "path": None}, {"bytes": data, "path": f"{kind}.png"}]))
    schema = pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("images", pa.list_(IMAGE)),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", pa.struct([("index", pa.int64())])),
        ]
    )
    path = tmp_path / "handmade.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path), len(bad)


def rollout_images(row, processor):
    """The images of a dataset row, decoded and run through the processor as verl's rollout does."""
    content = row["raw_prompt"][0]["content"]
    parts = content if isinstance(content, list) else []
    images = [part["image"].convert("RGB") for part in parts if part["type"] == "image"]
    text = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
    processor(text=[text], images=images or None, return_tensors="pt")
    return images


def fake_qwen_vl_utils():
    """qwen_vl_utils as verl calls it from its length filter: torchvision, which it needs, is absent here."""

    def process_vision_info(messages, image_patch_size=14, return_video_metadata=False):
        images = []
        for message in messages:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part.get("type") == "image":
                    image = part["image"].convert("RGB")
                    side = 2 * image_patch_size
                    width, height = (max(side, round(size / side) * side) for size in image.size)
                    if max(image.size) / min(image.size) > 200:
                        raise ValueError("absolute aspect ratio must be smaller than 200")
                    images.append(image.resize((width, height)))
        return images or None, None

    module = types.ModuleType("qwen_vl_utils")
    module.process_vision_info = process_vision_info
    return module


@pytest.mark.parametrize("length_filter", [False, True], ids=["no_filter", "verl_filter"])
def test_rows_with_undecodable_images_never_reach_a_training_step(
    tmp_path, verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor, monkeypatch, length_filter
):
    path, bad_rows = write_handmade(tmp_path)
    verl_data_config.filter_overlong_prompts = length_filter
    if length_filter:
        monkeypatch.setitem(sys.modules, "qwen_vl_utils", fake_qwen_vl_utils())
    dataset = create_rl_dataset([path], verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor)
    assert len(dataset) == GOOD_ROWS + 1
    assert dataset.dropped_rows["undecodable_image"] == bad_rows
    assert dataset.dropped_rows["overlong_prompt"] == 0
    assert dataset.modality_counts == {"image": GOOD_ROWS, "text": 1}
    seen = []
    for position in range(len(dataset)):
        row = dataset[position]
        rollout_images(row, tiny_qwen2_vl_processor)
        seen.append(row["extra_info"]["index"])
    assert seen == list(range(GOOD_ROWS + 1))


def test_max_samples_and_split_keep_only_decodable_rows(
    tmp_path, verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor
):
    path, bad_rows = write_handmade(tmp_path)
    verl_data_config.filter_overlong_prompts = False
    verl_data_config.shuffle, verl_data_config.seed = True, 1
    dataset = create_rl_dataset([path], verl_data_config, tiny_tokenizer, tiny_qwen2_vl_processor, max_samples=10)
    indices = [dataset[i]["extra_info"]["index"] for i in range(len(dataset))]
    assert all(index <= GOOD_ROWS for index in indices)
    assert len(dataset) + dataset.dropped_rows["undecodable_image"] == 10
    for part in dataset.split(2):
        for position in range(len(part)):
            rollout_images(part[position], tiny_qwen2_vl_processor)


def test_a_decompression_bomb_is_refused_from_its_header_before_any_pixel_is_decoded(monkeypatch):
    from revisual_verl.data import images as image_checks

    decoded = []
    original = ImageFile.ImageFile.load

    def counting_load(image):
        decoded.append(image.size)
        return original(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    for kind in ("bomb", "large"):
        with pytest.raises(image_checks.ImageProblem, match="pixels"):
            image_checks.check_image_bytes(corrupt_images()[kind])
    assert decoded == []
    assert image_checks.check_image_bytes(png_bytes(50, 40)) == (50, 40)
    assert decoded and set(decoded) == {(50, 40)}


@pytest.mark.parametrize("kind", sorted(corrupt_images()))
def test_every_corrupt_image_fails_the_shared_check(kind):
    from revisual_verl.data import images as image_checks

    with pytest.raises(image_checks.ImageProblem):
        image_checks.check_image_bytes(corrupt_images()[kind])
    # ... and verl's own path would indeed fail on it, so dropping it loses nothing trainable.
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017, PT011  any PIL error ends a step
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.open(io.BytesIO(corrupt_images()[kind])).convert("RGB")
