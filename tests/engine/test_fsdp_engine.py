"""The revisual engine inside verl's real FSDP engine code, on CPU.

verl resolves its platform once per process, so each run goes through a subprocess (engine_cpu_run.py)
on the CPU mode's platform (VERL_PLATFORM=cpu: CPU + gloo) that selects the engine through verl's engine
registry (VERL_ENGINE_VENDOR=revisual).
There FSDP2 wraps a tiny Qwen2.5-VL, and train_batch runs forward, verl's ppo_loss, backward and AdamW,
on image batches and on text-only ones (which verl 0.9.1 can run only with the engine's vision-output
hook). FSDP1 needs a GPU for sync_module_states, so its part (the wrap plan) is checked in-process.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_vlm import tiny_qwen25_vl
from verl.utils.fsdp_utils import get_fsdp_wrap_policy

from revisual_verl.engine.fsdp_engine import make_vision_tower_fsdp1_unit
from revisual_verl.engine.vision_freeze import DEFAULT_VISION_PREFIXES, freeze_vision_params

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def run_engine(env: dict, *args: str, settings: dict | None = None) -> dict:
    if settings is not None:
        args = (*args, "--engine-settings", json.dumps(settings))
    full_env = {
        **os.environ,
        # Keeps the caller's PYTHONPATH, e.g. an overlay with another transformers version.
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        # The CPU mode's platform (revisual_verl/cpu/platform.py), registered by the plugin.
        "VERL_PLATFORM": "cpu",
        "VERL_ENGINE_VENDOR": "revisual",
        "OMP_NUM_THREADS": "1",
        **env,
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "engine_cpu_run.py"), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,  # the failure path reports stderr below
    )
    if proc.returncode != 0:
        raise AssertionError(f"engine run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


def test_stage3_engine_freezes_tower_anneals_entropy_and_resumes():
    settings = {
        "freeze_vision_tower": True,
        "entropy": {"schedule": "exponential", "warmup_updates": 1, "beta0": 0.5, "decay": 0.5},
    }
    result = run_engine(
        {},
        "--strategy",
        "fsdp2",
        "--batches",
        "text,image,text",
        "--updates",
        "3",
        "--resume-updates",
        "2",
        "--ref",
        settings=settings,
    )
    assert result["engine_cls"] == "RevisualFSDPEngine"
    # Each engine logs what it applied: the trained ones freeze and anneal, the reference does neither.
    applied = [line for line in result["stderr"].splitlines() if "revisual engine, rank 0" in line]
    trained = [line for line in applied if "trained model" in line]
    assert len(trained) == 2, applied  # the first engine and the resumed one
    for line in trained:
        assert "freeze_vision_tower=True" in line and "entropy.schedule=exponential" in line
        assert "entropy.beta0=0.5" in line and "entropy.warmup_updates=1 (optimizer updates)" in line
    (ref_line,) = [line for line in applied if "forward-only model" in line]
    assert "freeze_vision_tower=False" in ref_line and "entropy.schedule=none" in ref_line
    # Stage 3 is text RL: text-only updates train (verl alone fails on them), mixed with an image batch.
    assert result["vision_output_hooks"] == ["model.visual"]
    assert [u["images"] for u in result["updates"]] == [False, True, False, False, True]
    # Freezing: the optimizer holds no vision tensor, the tower is bit-identical, every language tensor moved.
    assert result["vision_params"] == 30 and result["optimizer_vision_params"] == 0
    assert result["optimizer_params"] == result["language_params"] == 27
    assert result["vision_all_identical"] and result["language_changed"] == 27
    assert result["vision_identical_after_resume"]
    # Annealing: u counts optimizer updates, continues after save/load, and the loss uses the schedule.
    updates = result["updates"]
    assert [u["update"] for u in updates] == [0, 1, 2, 3, 4]
    assert [u["entropy_coeff"] for u in updates] == [0.0, 0.5, 0.25, 0.125, 0.0625]
    assert result["fresh_engine_updates"] == 0 and result["resumed_engine_updates"] == 3
    assert updates[0]["entropy_loss"] is None  # warm-up: verl's trainer asked for no entropy, none computed
    for u in updates[1:]:
        assert u["entropy_loss"] > 1.0
        assert math.isclose(u["loss"], u["pg_loss"] - u["entropy_coeff"] * u["entropy_loss"], rel_tol=1e-5)
    # The KL reference model: verl's ref worker asks the same registry, so it gets this engine and the hook.
    ref = result["ref"]
    assert ref["engine_cls"] == "RevisualFSDPEngine" and ref["vision_output_hooks"] == ["model.visual"]
    assert ref["text_log_probs_finite"] and ref["image_log_probs_finite"]
    assert ref["text_log_probs_count"] == ref["image_log_probs_count"] == 54  # 4 rows x 14 tokens, 2 padded


def run_verls_own_engine(*args: str) -> dict:
    # verl's stock FSDP engine is registered for cuda/npu only: select it as a GPU run would.
    return run_engine({"VERL_ENGINE_VENDOR": "", "VERL_ENGINE_DEVICE": "cuda"}, "--strategy", "fsdp2", *args)


def test_verls_own_engine_fails_on_a_text_only_batch():
    # The control for the text batches above: without the revisual vendor, verl 0.9.1 + transformers 5 fail.
    with pytest.raises(AssertionError, match="'BaseModelOutputWithPooling' object has no attribute 'mean'"):
        run_verls_own_engine("--batches", "text", "--updates", "1")


def test_a_batch_whose_rows_all_have_one_length_trains():
    # torch packs such a batch's 3-D position ids ragged along the rope axes and verl's workaround then breaks
    # them; the engine rebuilds them (mrope_position_ids) before splitting the batch into micro-batches.
    result = run_engine({}, "--strategy", "fsdp2", "--batches", "image,text", "--updates", "2", "--equal-lengths")
    assert result["engine_cls"] == "RevisualFSDPEngine"
    assert [u["images"] for u in result["updates"]] == [True, False]
    assert all(math.isfinite(u["loss"]) for u in result["updates"])
    assert result["language_changed"] == 27


def test_verls_own_engine_fails_on_a_batch_whose_rows_all_have_one_length():
    # The control for the test above; when verl builds these position ids right itself, this fails and
    # mrope_position_ids can go.
    with pytest.raises(AssertionError, match="The size of tensor a \\(4\\) must match the size of tensor b"):
        run_verls_own_engine("--batches", "image", "--updates", "1", "--equal-lengths")


def test_stage1_sft_loss_trains_text_only_batches():
    # verl's SFT trainer builds its model through the same engine registry, and stage 1 is text-only.
    result = run_engine({}, "--strategy", "fsdp2", "--loss", "sft", "--batches", "text", "--updates", "2")
    assert result["engine_cls"] == "RevisualFSDPEngine" and result["vision_output_hooks"] == ["model.visual"]
    losses = [u["loss"] for u in result["updates"]]
    assert all(4.0 < loss < 5.5 for loss in losses)  # about ln(128): a random tiny model's token NLL
    assert result["language_changed"] == 27


def test_baseline_engine_without_revisual_settings_trains_the_tower():
    result = run_engine({}, "--strategy", "fsdp2", "--batches", "text,image", "--updates", "2")
    assert result["engine_cls"] == "RevisualFSDPEngine"
    assert result["optimizer_vision_params"] == result["vision_params"] == 30
    assert result["vision_any_changed"]
    assert all(math.isfinite(u["loss"]) for u in result["updates"])
    assert result["updates"][0]["entropy_coeff"] is None  # no schedule: verl's constant coefficient


def test_verl_freeze_key_without_the_engine_setting_fails_loudly():
    with pytest.raises(AssertionError, match="actor.freeze_vision_tower=True but this worker's engine config"):
        run_engine({}, "--strategy", "fsdp2", "--batches", "image", "--updates", "1", "--verl-freeze-key")


def fsdp1_units(model, prefixes_frozen: bool, isolate: bool):
    """Which parameters each FSDP1 unit of verl's wrap policy would flatten together."""
    if prefixes_frozen:
        freeze_vision_params(model, DEFAULT_VISION_PREFIXES)
    if isolate:
        make_vision_tower_fsdp1_unit(model, DEFAULT_VISION_PREFIXES, {})
    policy = get_fsdp_wrap_policy(model, config={})
    wrapped = {
        name for name, m in model.named_modules() if name and policy(module=m, recurse=False, nonwrapped_numel=0)
    }
    units: dict[str, list] = {}
    for name, param in model.named_parameters():
        parts = name.split(".")
        owner = next((".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if ".".join(parts[:i]) in wrapped), "")
        units.setdefault(owner, []).append(param.requires_grad)
    return units


def test_fsdp1_plan_gives_the_tower_its_own_unit():
    units = fsdp1_units(tiny_qwen25_vl(), prefixes_frozen=True, isolate=False)
    assert len(set(units[""])) == 2  # verl's plan alone: the root unit mixes frozen and trained tensors
    units = fsdp1_units(tiny_qwen25_vl(), prefixes_frozen=True, isolate=True)
    assert "model.visual" in units
    assert all(len(set(flags)) == 1 for flags in units.values())
    assert units["model.visual"] == [False] * len(units["model.visual"])


def test_fsdp1_plan_errors_name_the_setting_to_change():
    model = tiny_qwen25_vl()
    with pytest.raises(ValueError, match="Qwen2_5_VisionTransformerPretrainedModel.*transformer_layer_cls_to_wrap"):
        make_vision_tower_fsdp1_unit(
            model, DEFAULT_VISION_PREFIXES, {"transformer_layer_cls_to_wrap": ["Qwen2_5_VLDecoderLayer"]}
        )
    with pytest.raises(ValueError, match="use_orig_params=True"):
        make_vision_tower_fsdp1_unit(model, DEFAULT_VISION_PREFIXES, {"min_num_params": 1000})
    with pytest.raises(ValueError, match="no module is named"):
        make_vision_tower_fsdp1_unit(model, ("vision_tower.",), {})
