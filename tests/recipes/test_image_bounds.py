"""Images are resized by the processor into the authors' bounds (262,144..4,194,304 pixels), not dropped.

The stage configs set verl's ``data.mm_processor_kwargs``, which verl hands to the processor both in the
prompt-length filter (``filter_overlong_prompts``) and in the rollout's agent loop.
"""

from PIL import Image
from verl.utils.tokenizer import build_multimodal_processor_inputs

from revisual_verl.cpu.tiny_model import build_tiny_qwen2_vl_processor
from revisual_verl.recipes.command import parse_command
from revisual_verl.recipes.dry_run import compose

MIN_PIXELS, MAX_PIXELS = 262_144, 4_194_304
PATCH = 28  # Qwen2.5-VL: 14-pixel patches merged 2x2: one token per 28x28 pixels
PROMPT = "<|vision_start|><|image_pad|><|vision_end|>"


def image_tokens(processor, image, kwargs):
    inputs = build_multimodal_processor_inputs(processor, text=[PROMPT], images=[image], mm_processor_kwargs=kwargs)
    t, h, w = inputs["image_grid_thw"][0].tolist()
    return t * h * w // 4, h * w * 14 * 14


def test_rl_stages_bound_images_through_the_processor(stage_argv):
    for stage in (2, 3):
        config = compose(parse_command(stage_argv(stage)))
        assert dict(config.data.mm_processor_kwargs) == {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}


def test_a_large_image_is_resized_under_the_prompt_budget_instead_of_dropped():
    # Qwen2.5-VL's own default bounds (3136..12,845,056 pixels).
    processor = build_tiny_qwen2_vl_processor(min_pixels=56 * 56, max_pixels=12_845_056)
    large = Image.new("RGB", (4200, 4200), (120, 30, 200))
    tokens_default, _ = image_tokens(processor, large, {})
    tokens_bounded, pixels = image_tokens(processor, large, {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS})
    # Table 5's 8192-token prompt budget: verl's filter would drop the first, keeps the second.
    assert tokens_default > 8192 >= tokens_bounded
    assert MIN_PIXELS <= pixels <= MAX_PIXELS


def test_a_small_image_is_enlarged_to_the_lower_bound():
    processor = build_tiny_qwen2_vl_processor(min_pixels=56 * 56, max_pixels=12_845_056)
    _, pixels = image_tokens(
        processor, Image.new("RGB", (200, 150)), {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    )
    assert MIN_PIXELS <= pixels <= MAX_PIXELS
