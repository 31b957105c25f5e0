"""config/device and config/sft_device: the CPU mode as a Hydra config group that the stage configs choose."""

from importlib.resources import files

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

CONFIG_DIR = files("revisual_verl") / "config"


def leaves(mapping, prefix=""):
    """Every ``dotted.key -> value`` of a nested mapping."""
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def overlay(group):
    return dict(leaves(yaml.safe_load((CONFIG_DIR / group / "cpu.yaml").read_text())))


@pytest.mark.parametrize(
    "stage, group",
    [("stage2_multimodal_rl", "device"), ("stage3_text_rl", "device"), ("stage1_coldstart_sft", "sft_device")],
)
def test_every_cpu_setting_wins_over_the_stage(plugin_config, stage, group):
    cpu = plugin_config(stage, [f"{group}=cpu"])
    gpu = plugin_config(stage)
    settings = overlay(group)
    assert len(settings) > 5
    for key, value in settings.items():
        assert OmegaConf.select(cpu, key) == value, key
    # The stage's own values stand on the GPU: the overlay changed something the stage sets.
    changed = [key for key, value in settings.items() if OmegaConf.select(gpu, key, default=None) != value]
    assert "trainer.device" in changed or "actor_rollout_ref.rollout.name" in changed


def overlay_of(group, device):
    return dict(leaves(yaml.safe_load((CONFIG_DIR / group / f"{device}.yaml").read_text())))


def test_gpu_is_the_default_and_adds_verls_tested_settings(plugin_config):
    stage2 = plugin_config("stage2_multimodal_rl")
    assert stage2 == plugin_config("stage2_multimodal_rl", ["device=gpu"])
    # The stage's own values stand beside the overlay.
    assert stage2.actor_rollout_ref.model.use_remove_padding is True
    assert stage2.actor_rollout_ref.actor.use_dynamic_bsz is True
    assert stage2.actor_rollout_ref.ref.fsdp_config.param_offload is True
    assert OmegaConf.select(stage2, "ray_kwargs.ray_init.runtime_env.worker_process_setup_hook") is None
    # What verl's Qwen2.5-VL example runs with (examples/grpo_trainer/run_qwen2_5_vl_7b_fsdp.sh).
    gpu = overlay_of("device", "gpu")
    assert gpu["actor_rollout_ref.actor.strategy"] == "fsdp2" and gpu["actor_rollout_ref.ref.strategy"] == "fsdp2"
    assert gpu["actor_rollout_ref.model.use_fused_kernels"] is True
    for stage in ("stage2_multimodal_rl", "stage3_text_rl"):
        composed = plugin_config(stage)
        for key, value in gpu.items():
            assert OmegaConf.select(composed, key) == value, (stage, key)
        # Not verl's default: the overlay is what sets it.
        cpu = plugin_config(stage, ["device=cpu"])
        assert OmegaConf.select(cpu, "actor_rollout_ref.model.use_fused_kernels") is False
    stage1 = plugin_config("stage1_coldstart_sft")
    assert stage1 == plugin_config("stage1_coldstart_sft", ["sft_device=gpu"])
    assert stage1.engine.strategy == "fsdp2"


def test_the_gpu_strategy_reaches_the_engine_config_verl_builds(plugin_config):
    from verl.utils.config import omega_conf_to_dataclass

    for stage in ("stage2_multimodal_rl", "stage3_text_rl"):
        composed = plugin_config(stage)
        OmegaConf.resolve(composed)
        actor = omega_conf_to_dataclass(composed.actor_rollout_ref.actor)
        # verl copies actor.strategy into the engine config, which picks FSDP1 or FSDP2 in every worker.
        assert actor.engine.strategy == "fsdp2", stage
        assert actor.engine.entropy_from_logits_with_chunking and actor.engine.entropy_checkpointing
        assert type(actor.engine).__name__ == "RevisualFSDPEngineConfig"
    sft = plugin_config("stage1_coldstart_sft")
    OmegaConf.resolve(sft)
    assert omega_conf_to_dataclass(sft.engine).strategy == "fsdp2"


def test_the_stage_settings_outside_the_overlay_stay(plugin_config):
    stage3 = plugin_config("stage3_text_rl", ["device=cpu"])
    actor = stage3.actor_rollout_ref.actor
    assert actor.freeze_vision_tower is True and actor.fsdp_config.entropy.schedule == "exponential"
    assert stage3.algorithm.pad.rho == 1.5 and actor.kl_loss_type == "low_var_kl"
    # A user's override comes after the group.
    assert (
        plugin_config(
            "stage3_text_rl", ["device=cpu", "actor_rollout_ref.rollout.name=vllm"]
        ).actor_rollout_ref.rollout.name
        == "vllm"
    )


def test_an_unknown_device_is_refused(plugin_config):
    with pytest.raises(ConfigCompositionException, match="device"):
        plugin_config("stage2_multimodal_rl", ["device=tpu"])
