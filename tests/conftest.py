"""Shared fixtures. Tests mirror the package layout: tests/<module path>/test_*.py."""

import os

import pytest

# verl's accelerator probe and Ray's token auth are noise on a CPU-only test machine.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole session (started lazily, shared by every test that needs it)."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started_here:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level tokenizer with Qwen2's special tokens and a Qwen2-VL-style chat template (tests/helpers)."""
    from helpers.tiny_models import build_tiny_tokenizer

    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    """The tiny tokenizer saved to a directory, for code that takes a tokenizer path."""
    from helpers.tiny_models import save_tiny_tokenizer

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"))


@pytest.fixture(scope="session")
def tiny_qwen2_vl_processor(tiny_tokenizer):
    """A real Qwen2VLProcessor (Qwen2-VL image processor + the tiny tokenizer), images capped at 56x56 pixels."""
    from helpers.tiny_models import build_tiny_qwen2_vl_processor

    return build_tiny_qwen2_vl_processor(tiny_tokenizer)


@pytest.fixture
def plugin_config():
    """Composes one of the plugin's configs: ``plugin_config("stage3_text_rl", ["device=cpu"])`` (tests/helpers)."""
    from helpers.plugin_config import compose_plugin_config

    return compose_plugin_config
