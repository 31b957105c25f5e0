"""Build a tiny Qwen2.5-VL into a directory: random weights from a config, a real tokenizer, processor
and chat template assembled locally. No download. The CPU quickstart trains it through all three stages.

    python -m revisual_verl.cpu.tiny_model --output outputs/tiny-qwen2.5-vl

The tokenizer is byte-level BPE without merges (every UTF-8 byte is one token, any text encodes) plus
Qwen2's special tokens, so the model's vocabulary is 263 ids. The chat template renders like Qwen2-VL's
(a default system turn, ``<|im_start|>role\\n ... <|im_end|>\\n``, one vision block per image part).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Whitespace is emitted only through expressions, so the template itself adds none.
QWEN_STYLE_CHAT_TEMPLATE = (
    "{%- if not messages or messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] }}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' -%}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# The same turns without the default system turn: the tiny tokenizer spends a token per byte, and that turn
# would be the longest part of every short prompt (the CPU learning run's base model uses this one).
NO_DEFAULT_SYSTEM_CHAT_TEMPLATE = QWEN_STYLE_CHAT_TEMPLATE.replace(
    "{%- if not messages or messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif -%}",
    "",
)

# Image bounds of the tiny processor: at most 56x56 pixels, so an image is a handful of tokens.
TINY_MIN_PIXELS = 28 * 28
TINY_MAX_PIXELS = 56 * 56


def build_tiny_tokenizer(chat_template: str = QWEN_STYLE_CHAT_TEMPLATE):
    """A ``PreTrainedTokenizerFast`` over the 256 byte symbols plus Qwen2's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS,
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _qwen2_vl_processor_class():
    """Qwen2VLProcessor, made to accept the base video processor when torchvision is absent.

    Qwen2VLVideoProcessor needs torchvision (PyPI's build does not load beside torch 2.13 CPU), and
    without it ``transformers.BaseVideoProcessor`` is a placeholder that the processor's argument check
    compares against. The subclass keeps Qwen2VLProcessor's name and every behaviour but that check's
    class lookup; nothing here feeds it videos.
    """
    from transformers import Qwen2VLProcessor
    from transformers.utils import is_torchvision_available
    from transformers.video_processing_utils import BaseVideoProcessor

    if is_torchvision_available():
        return Qwen2VLProcessor

    class Qwen2VLProcessorWithoutTorchvision(Qwen2VLProcessor):
        @staticmethod
        def get_possibly_dynamic_module(module_name):
            if module_name == "BaseVideoProcessor":
                return BaseVideoProcessor
            return Qwen2VLProcessor.get_possibly_dynamic_module(module_name)

    # verl picks its rope helpers by the processor's class name.
    Qwen2VLProcessorWithoutTorchvision.__name__ = "Qwen2VLProcessor"
    Qwen2VLProcessorWithoutTorchvision.__qualname__ = "Qwen2VLProcessor"
    return Qwen2VLProcessorWithoutTorchvision


def build_tiny_qwen2_vl_processor(tokenizer=None, min_pixels: int = TINY_MIN_PIXELS, max_pixels: int = TINY_MAX_PIXELS):
    """A real Qwen2-VL processor: Qwen2-VL's image processor, the tiny tokenizer, and its chat template."""
    from transformers import Qwen2VLImageProcessorPil
    from transformers.utils import is_torchvision_available
    from transformers.video_processing_utils import BaseVideoProcessor

    tokenizer = tokenizer or build_tiny_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    if is_torchvision_available():
        from transformers import Qwen2VLVideoProcessor

        video_processor = Qwen2VLVideoProcessor()
    else:
        video_processor = BaseVideoProcessor()
    return _qwen2_vl_processor_class()(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def tiny_qwen25_vl_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    """A Qwen2.5-VL config sized for a CPU smoke run, its special ids taken from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 32768,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        architectures=["Qwen2_5_VLForConditionalGeneration"],
    )


def build_tiny_qwen25_vl(output: str | Path, seed: int = 0, hidden_size: int = 64, layers: int = 2) -> Path:
    """Write model weights, config, generation config, tokenizer and processor into ``output``."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    config = tiny_qwen25_vl_config(tokenizer, hidden_size=hidden_size, layers=layers)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id, pad_token_id=config.text_config.pad_token_id
    )
    model.save_pretrained(output)
    processor = build_tiny_qwen2_vl_processor(tokenizer)
    processor.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.cpu.tiny_model",
        description="Build a tiny random-weight Qwen2.5-VL (tokenizer, processor, chat template) for CPU smoke runs.",
    )
    parser.add_argument("--output", required=True, help="directory to write the Hugging Face model into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--hidden-size", type=int, default=64, help="language-model hidden size (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="language-model layers (default 2)")
    args = parser.parse_args(argv)
    path = build_tiny_qwen25_vl(args.output, seed=args.seed, hidden_size=args.hidden_size, layers=args.layers)
    with open(path / "config.json", encoding="utf-8") as f:
        architectures = json.load(f).get("architectures")
    print(f"tiny model {architectures} written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
