"""The base model's pre-training data says what its pictures show, and the script writes a model the recipe loads."""

import asyncio
import io
import random

import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from revisual_verl.synthetic_task import pretrain
from revisual_verl.synthetic_task.digits import render_digit


@pytest.fixture(scope="module")
def processor():
    from revisual_verl.cpu.tiny_model import (
        NO_DEFAULT_SYSTEM_CHAT_TEMPLATE,
        build_tiny_qwen2_vl_processor,
        build_tiny_tokenizer,
    )

    return build_tiny_qwen2_vl_processor(build_tiny_tokenizer(NO_DEFAULT_SYSTEM_CHAT_TEMPLATE))


def test_every_target_is_what_the_pictures_and_digits_say(processor, digit_reader):
    rng = random.Random(3)
    kinds = {"describe": 0, "repeat": 0, "fact": 0}
    for _ in range(300):
        sample = pretrain.mixed_sample(rng, processor, render_digit)
        pictured = [digit_reader(image)[0] for image in sample.images]
        assert list(sample.digits) == pictured  # what the alignment term pulls each picture toward, in order
        target = sample.target.removesuffix("<|im_end|>").removesuffix("<|endoftext|>")
        if "Which digit" in sample.text:
            kinds["describe"] += 1
            assert target == str(pictured[0])
        elif "Repeat:" in sample.text:
            kinds["repeat"] += 1
            # The digits in order, each pictured one read from its image, each written one from the text.
            body = sample.text.split("Repeat:")[1].split(".")[0]
            pictures = iter(pictured)
            expected = []
            for token in body.replace(pretrain.IMAGE_TOKENS, " P ").split():
                if token == "P":
                    expected.append(str(next(pictures)))
                elif token.isdigit():
                    expected.append(token)
            assert target == " ".join(expected)
        else:
            kinds["fact"] += 1
            first, second = sample.text.removesuffix("=").split("+")
            first = pictured[0] if sample.images else int(first)
            assert int(target) == first + int(second)
    assert all(count > 30 for count in kinds.values()), kinds


def test_the_mix_rate_decays_linearly_to_its_floor():
    steps = 800
    factors = [pretrain.decayed_rate_factor(step, steps) for step in range(steps)]
    assert factors[0] == 1.0
    assert factors[400] == pytest.approx(0.5)
    assert factors[600] == pytest.approx(0.25)
    # The last twentieth stays at the floor: never zero, never below.
    assert factors[760] == pytest.approx(0.05) and min(factors) == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert pretrain.decayed_rate_factor(0, 0) == 1.0  # a phase of no steps builds its schedule without failing


def test_the_mix_gives_addition_facts_the_largest_share(processor):
    rng = random.Random(5)
    counts = {"describe": 0, "repeat": 0, "fact": 0}
    draws = 2000
    for _ in range(draws):
        text = pretrain.mixed_sample(rng, processor, render_digit).text
        counts["describe" if "Which digit" in text else "repeat" if "Repeat:" in text else "fact"] += 1
    # Shares 0.15 / 0.25 / 0.6: binomial sd at most 0.011 on 2000 draws, so 0.04 is over 3.5 sds.
    assert counts["describe"] / draws == pytest.approx(pretrain.DESCRIBE_SHARE, abs=0.04)
    assert counts["repeat"] / draws == pytest.approx(pretrain.REPEAT_SHARE, abs=0.04)
    assert counts["fact"] / draws == pytest.approx(1 - pretrain.DESCRIBE_SHARE - pretrain.REPEAT_SHARE, abs=0.04)
    assert counts["fact"] > counts["describe"] + counts["repeat"]


def test_the_alignment_term_turns_vision_outputs_toward_the_digits_word_embeddings():
    """A few steps on pictures with the term leave each vision output pointing nearly along its digit's word
    embedding; without it they do not. (That the trained base's outputs point at the right digit among the ten is
    checked on the learning run's own base, tests/recipes/test_learning_run.py: this tiny model, this briefly
    trained, points its outputs mostly along what the ten embeddings share; measured, the nearest of the ten is
    the pictured digit for 13% of pictures.)"""
    base = pretrain.base_processor()
    shape = pretrain.BaseModelShape(hidden_size=32, layers=1)
    rng = random.Random(99)
    held = [pretrain.describe_sample(rng, base, render_digit) for _ in range(40)]
    _, _, _, extra, pictured = pretrain._batch(held, base, base.tokenizer)
    distance = {}
    for weight in (0.0, 1.0):
        model = pretrain.new_base_model(base.tokenizer, shape, seed=0)
        logged = []
        pretrain._train(
            model,
            lambda r: pretrain.describe_sample(r, base, render_digit),
            steps=60,
            batch=16,
            lr=3e-3,
            rng=random.Random(0),
            processor=base,
            tokenizer=base.tokenizer,
            label="pictures",
            log=logged.append,
            decay=False,
            align_weight=weight,
        )
        assert "alignment" in logged[-1]
        with torch.no_grad():
            distance[weight] = pretrain.alignment_loss(model, extra, pictured, base.tokenizer).item()
    # Measured: 0.03 with the term, 0.79 without.
    assert distance[1.0] < 0.2 and distance[0.0] > 0.5, distance


def test_alignment_moves_the_vision_tower_not_the_word_embeddings():
    base = pretrain.base_processor()
    model = pretrain.new_base_model(base.tokenizer, pretrain.BaseModelShape(hidden_size=32, layers=1), seed=0)
    rng = random.Random(1)
    # Pictures one to a sample and several to a sample: the digits line up with the vision tokens, in order.
    samples = [pretrain.describe_sample(rng, base, render_digit) for _ in range(3)]
    while sum(len(sample.images) > 1 for sample in samples) < 2:
        sample = pretrain.repeat_sample(rng, base, render_digit)
        if sample.images:
            samples.append(sample)
    _, _, _, extra, pictured = pretrain._batch(samples, base, base.tokenizer)
    assert pictured == [digit for sample in samples for digit in sample.digits]
    assert len(pictured) == int(extra["image_grid_thw"].prod(-1).sum()) // 4  # one vision token per picture
    loss = pretrain.alignment_loss(model, extra, pictured, base.tokenizer)
    assert 0.0 < loss.item() <= 2.0
    loss.backward()
    assert model.get_input_embeddings().weight.grad is None  # the target is held fixed
    assert model.model.visual.merger.mlp[-1].weight.grad.abs().sum() > 0
    assert pretrain.alignment_loss(model, {}, [], base.tokenizer).item() == 0.0  # a batch without pictures
    unlabelled = pretrain.Sample(samples[0].text, samples[0].images, samples[0].target)
    with pytest.raises(ValueError, match="1 pictures but 0 pictured digits"):
        pretrain._batch([unlabelled], base, base.tokenizer)


def test_the_script_writes_a_model_the_recipe_loads(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    logged = []
    out = pretrain.build_base_model(
        tmp_path / "base",
        describe_steps=2,
        mixed_steps=2,
        batch=4,
        shape=pretrain.BaseModelShape(hidden_size=32, layers=1),
        log=logged.append,
    )
    assert not (tmp_path / "base.partial").exists()
    processor = AutoProcessor.from_pretrained(out)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(out)
    assert model.config.text_config.head_dim == 16 and model.config.text_config.num_attention_heads == 2
    # No default system turn: the prompt is the user's turn alone.
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert any("greedy accuracy" in line for line in logged)
    # The pictures alone at a constant rate; the mix's rate decays (its second and last step at half the rate).
    assert [line.split("lr ")[1].split()[0] for line in logged if "step 2/2" in line] == ["0.001", "0.0005"]
    with pytest.raises(SystemExit):
        pretrain.main(["--output", str(out)])  # an existing directory is never overwritten
    # It says what made it: --reuse with the same settings keeps it, with another seed refuses it.
    same = ["--output", str(out), "--reuse", "--describe-steps", "2", "--mixed-steps", "2", "--batch", "4"]
    same += ["--hidden-size", "32", "--layers", "1"]
    assert pretrain.main(same) == 0
    assert pretrain.main([*same, "--seed", "1"]) == 2


def test_the_base_sees_pictures_as_verls_rollout_shows_them(tmp_path, processor):
    """The pixels pre-training gives the processor for a picture are the ones verl's rollout gives it for the
    same picture in a prepared mmrl row (verl resizes every picture before the processor; a direct call does not)."""
    from hydra import compose, initialize_config_module
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from revisual_verl.data.cli import main as revisual_data
    from revisual_verl.synthetic_task import generate

    raw = tmp_path / "raw"
    counts = ["--coldstart", "0", "--image-train", "3", "--text-train", "0", "--heldout", "1"]
    assert generate.main(["--output", str(raw), *counts]) == 0
    prepared = tmp_path / "mmrl"
    assert (
        revisual_data(
            [
                "prepare",
                "mmrl",
                "-i",
                str(raw / "mmrl.parquet"),
                "-o",
                str(prepared),
                "--val-size",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        data_config = compose(config_name="ppo_trainer", overrides=["data.filter_overlong_prompts=false"]).data
    dataset = RLHFDataset([str(prepared / "train.parquet")], processor.tokenizer, data_config, processor=processor)
    rows = pq.read_table(prepared / "train.parquet").to_pylist()
    assert len(dataset) == len(rows) == 3
    patch = processor.image_processor.patch_size
    # What the learning run sets as data.mm_processor_kwargs; the agent loop passes them to the processor.
    bounds = {"min_pixels": pretrain.PICTURE_PIXELS, "max_pixels": pretrain.PICTURE_PIXELS}
    base = pretrain.base_processor()
    for index, row in enumerate(rows):
        images, _ = asyncio.run(RLHFDataset.process_vision_info(dataset[index]["raw_prompt"], patch, data_config))
        verl_view = processor(text=[pretrain.IMAGE_TOKENS], images=images, return_tensors="pt", **bounds)
        picture = Image.open(io.BytesIO(row["images"][0]["bytes"]))
        ours = pretrain.encode(pretrain.Sample(pretrain.IMAGE_TOKENS, [picture], ""), base)
        # One language-model token per picture, and the very pixels verl's rollout shows.
        assert ours["image_grid_thw"].tolist() == verl_view["image_grid_thw"].tolist() == [[1, 2, 2]]
        assert torch.equal(ours["pixel_values"], verl_view["pixel_values"])
