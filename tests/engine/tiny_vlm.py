"""A tiny Qwen2.5-VL built from a config (no download), and batches for it. Test support."""

import torch

IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END = 120, 121, 122, 123
PATCH_DIM = 3 * 2 * 14 * 14  # channels * temporal_patch_size * patch_size**2
IMAGE_GRID = (1, 4, 4)  # 16 patches, merged 2x2 into 4 image tokens
IMAGE_TOKENS = 4


def tiny_qwen25_vl_config():
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 128,
            "max_position_embeddings": 256,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "fullatt_block_indexes": [1],
        },
        image_token_id=IMAGE_TOKEN,
        video_token_id=VIDEO_TOKEN,
        vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
    )


def tiny_qwen25_vl(seed: int = 0):
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(tiny_qwen25_vl_config())


def prompt_ids(gen: torch.Generator, batch: int, length: int, images: bool) -> torch.Tensor:
    """Random token ids; with ``images`` each row holds one image: vision start, 4 image tokens, vision end."""
    ids = torch.randint(3, 100, (batch, length), generator=gen)
    if images:
        ids[:, 1 : 3 + IMAGE_TOKENS] = torch.tensor([VISION_START] + [IMAGE_TOKEN] * IMAGE_TOKENS + [VISION_END])
    return ids


def image_inputs(gen: torch.Generator, batch: int) -> dict:
    """``pixel_values``/``image_grid_thw`` for one image a row, as the Qwen2-VL processor lays them out."""
    return {
        "pixel_values": torch.randn(batch * IMAGE_GRID[0] * IMAGE_GRID[1] * IMAGE_GRID[2], PATCH_DIM, generator=gen),
        "image_grid_thw": torch.tensor([IMAGE_GRID] * batch),
    }
