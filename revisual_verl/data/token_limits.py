"""Prompt lengths in tokens, measured with the chat template the trainer will apply."""

from __future__ import annotations


def load_tokenizer(name_or_path: str):
    """A tokenizer from a local directory (or the local Hugging Face cache); nothing is downloaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)


class ChatTokenCounter:
    """Counts the tokens of a conversation as rendered by the tokenizer's chat template.

    ``<image>`` placeholders are counted as the text they are; the vision tokens an image expands into depend on
    the processor and the image size, and verl's ``filter_overlong_prompts`` counts them when it loads the data.
    A tokenizer without a chat template falls back to the plain text of the messages.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))

    def count(self, messages: list[dict], add_generation_prompt: bool) -> int:
        if self.has_template:
            text = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=add_generation_prompt, tokenize=False
            )
        else:
            text = "\n".join(message["content"] for message in messages)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
