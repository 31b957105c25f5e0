"""The base model's pre-training data says what its pictures show, and the script writes a model the recipe loads."""

import random

import pytest

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
    with pytest.raises(SystemExit):
        pretrain.main(["--output", str(out)])  # an existing directory is never overwritten
