"""``python -m revisual_verl.recipes.merged_model DIR``: does a merged stage directory load?

run_all.sh counts a stage as finished only when its merged Hugging Face directory loads the way
the next stage will load it: the model config, the tokenizer and, for a vision-language model
(a config with a ``vision_config``), the multimodal processor. A merge that wrote config.json but
could not save the processor would otherwise pass, and the next stage would fail late.
No weights are read. Exit status 0 when it loads, 1 (with the reason on stderr) when it does not.
"""

from __future__ import annotations

import argparse
import os
import sys


class MergedModelError(RuntimeError):
    """The directory is not a loadable model for the next stage; the message says which part."""


def is_vision_language(config) -> bool:
    return getattr(config, "vision_config", None) is not None


def check_merged_model(path: str) -> str:
    """Load config, tokenizer and (for a VLM) processor from ``path``; a one-line summary, or raise."""
    if not os.path.isdir(path):
        raise MergedModelError(f"{path} is not a directory")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise MergedModelError(f"{path} has no config.json")
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as error:  # noqa: BLE001  transformers raises several types for a bad config
        raise MergedModelError(f"{path}: the model config does not load ({type(error).__name__}: {error})") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as error:  # noqa: BLE001
        raise MergedModelError(f"{path}: the tokenizer does not load ({type(error).__name__}: {error})") from error
    # Without its files transformers 5 builds an empty tokenizer instead of failing.
    if len(tokenizer) < 2:
        raise MergedModelError(
            f"{path}: the tokenizer has no vocabulary ({len(tokenizer)} token(s)); tokenizer files missing?"
        )
    parts = [type(config).__name__, type(tokenizer).__name__]
    if is_vision_language(config):
        try:
            processor = AutoProcessor.from_pretrained(path)
        except Exception as error:  # noqa: BLE001
            raise MergedModelError(
                f"{path}: a vision-language model ({config.model_type}) whose processor does not load "
                f"({type(error).__name__}: {error})"
            ) from error
        # AutoProcessor falls back to the tokenizer when no processor config is there.
        if getattr(processor, "image_processor", None) is None:
            raise MergedModelError(
                f"{path}: a vision-language model ({config.model_type}) without an image processor "
                f"(AutoProcessor gave {type(processor).__name__}; processor config missing?)"
            )
        parts.append(type(processor).__name__)
    return f"{path} loads: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.recipes.merged_model",
        description="Check that a merged stage directory loads (config, tokenizer, processor for a VLM).",
    )
    parser.add_argument("path")
    args = parser.parse_args(argv)
    try:
        print(check_merged_model(args.path))
    except MergedModelError as error:
        print(f"[revisual] ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
