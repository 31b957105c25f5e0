"""revisual_verl.recipes.merged_model on real directories: a stage is finished only when its merged
model loads the way the next stage loads it (config, tokenizer, processor for a vision-language model)."""

from __future__ import annotations

import shutil

import pytest

from revisual_verl.recipes.merged_model import MergedModelError, check_merged_model, main


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    from revisual_verl.cpu.tiny_model import build_tiny_qwen25_vl

    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-vlm"), seed=0)


def copy_without(source, tmp_path, *names):
    target = tmp_path / "hf"
    shutil.copytree(source, target)
    for name in names:
        (target / name).unlink()
    return target


def test_a_complete_vlm_directory_loads(tiny_vlm, capsys):
    assert "Processor" in check_merged_model(str(tiny_vlm))
    assert main([str(tiny_vlm)]) == 0


def test_a_vlm_without_its_processor_does_not_load(tiny_vlm, tmp_path, capsys):
    target = copy_without(tiny_vlm, tmp_path, "processor_config.json")
    with pytest.raises(MergedModelError, match="processor"):
        check_merged_model(str(target))
    assert main([str(target)]) == 1
    assert "processor" in capsys.readouterr().err


def test_a_directory_without_tokenizer_does_not_load(tiny_vlm, tmp_path):
    target = tmp_path / "hf"
    shutil.copytree(tiny_vlm, target)
    for path in list(target.glob("tokenizer*")) + list(target.glob("vocab*")) + list(target.glob("merges*")):
        path.unlink()
    with pytest.raises(MergedModelError, match="tokenizer"):
        check_merged_model(str(target))


def test_a_directory_without_config_does_not_load(tmp_path):
    with pytest.raises(MergedModelError, match="config.json"):
        check_merged_model(str(tmp_path))
