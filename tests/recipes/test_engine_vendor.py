"""Every stage trains through the revisual engine vendor, which carries the text-only forward fix."""

import subprocess
from pathlib import Path

import fake_verl

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def run_stage1(tmp_path, sample_data, **env):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    fake_verl.install(bin_dir)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    settings = {"MODEL_PATH": str(model), "DATA_DIR": str(sample_data), "OUTPUT_DIR": str(tmp_path / "out"), **env}
    result = subprocess.run(
        ["bash", str(RECIPES / "run_stage1.sh")],
        env=fake_verl.env_for(tmp_path, bin_dir, log, **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (call,) = [c for c in fake_verl.read_log(log) if fake_verl.module_of(c)]
    return call


def test_stage_one_sft_runs_with_the_revisual_engine_vendor(tmp_path, sample_data):
    call = run_stage1(tmp_path, sample_data)
    assert fake_verl.module_of(call) == "verl.trainer.sft_trainer"
    assert call["engine_vendor"] == "revisual"


def test_a_vendor_chosen_by_the_user_is_kept(tmp_path, sample_data):
    assert run_stage1(tmp_path, sample_data, VERL_ENGINE_VENDOR="acme")["engine_vendor"] == "acme"
