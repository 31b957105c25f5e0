import pytest


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    """A tiny Qwen2.5-VL written by the CPU mode's builder (random weights, real tokenizer and processor)."""
    from revisual_verl.cpu.tiny_model import build_tiny_qwen25_vl

    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen2.5-vl"), seed=0)
