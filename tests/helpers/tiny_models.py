"""Tiny tokenizers and a Qwen2-VL-style processor, built on the spot so tests never download a model.

The tokenizer is byte-level BPE without merges: every UTF-8 byte is one token, so it encodes any text,
and tokenization is context-free (a conversation tokenized turn by turn equals the whole conversation
tokenized at once, which verl's MultiTurnSFTDataset checks). Special tokens follow Qwen2's names, and the
chat template renders like Qwen2-VL's: a default system turn, ``<|im_start|>role\\n ... <|im_end|>\\n``
turns, and ``<|vision_start|><|image_pad|><|vision_end|>`` for each image part.
"""

from __future__ import annotations

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

    Qwen2VLVideoProcessor needs torchvision, which the CPU test environment does not carry, and without it
    ``transformers.BaseVideoProcessor`` is a placeholder that the processor's argument check compares against.
    The subclass keeps Qwen2VLProcessor's name and every behaviour but that check's class lookup; no test
    feeds it videos.
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


def build_tiny_qwen2_vl_processor(tokenizer=None, min_pixels: int = 28 * 28, max_pixels: int = 56 * 56):
    """A real Qwen2-VL processor: Qwen2-VL's image processor, the tiny tokenizer, and its chat template.

    Small ``max_pixels`` keeps every image at a handful of patches (at most 4 image tokens), so tests stay fast.
    """
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


def save_tiny_tokenizer(directory: str | Path) -> Path:
    """Write the tiny tokenizer where ``AutoTokenizer.from_pretrained(directory)`` finds it."""
    directory = Path(directory)
    build_tiny_tokenizer().save_pretrained(directory)
    return directory
