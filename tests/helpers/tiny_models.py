"""Tiny tokenizers and processors for tests: the CPU mode's own builders (revisual_verl/cpu/tiny_model.py).

The tokenizer is byte-level BPE without merges: every UTF-8 byte is one token, so tokenization is
context-free (a conversation tokenized turn by turn equals the whole conversation tokenized at once,
which verl's MultiTurnSFTDataset checks).
"""

from __future__ import annotations

from pathlib import Path

from revisual_verl.cpu.tiny_model import (  # noqa: F401  re-exported for the tests
    QWEN_SPECIAL_TOKENS,
    QWEN_STYLE_CHAT_TEMPLATE,
    build_tiny_qwen2_vl_processor,
    build_tiny_tokenizer,
)


def save_tiny_tokenizer(directory: str | Path) -> Path:
    """Write the tiny tokenizer where ``AutoTokenizer.from_pretrained(directory)`` finds it."""
    directory = Path(directory)
    build_tiny_tokenizer().save_pretrained(directory)
    return directory
