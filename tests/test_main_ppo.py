"""python -m revisual_verl.main_ppo: verl's entry point with the plugin's config."""

import os
import subprocess
import sys


def run_main(*args):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "revisual_verl.main_ppo", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_composes_plugin_keys_without_plus():
    out = run_main("--cfg", "job", "algorithm.pad.tau_end=0.25", "algorithm.pad.priority=power")
    assert out.returncode == 0, out.stderr
    assert "adv_estimator: pad" in out.stdout
    assert "tau_end: 0.25" in out.stdout and "priority: power" in out.stdout
    assert "trainer_mode: pad_sync" in out.stdout


def test_ignored_freeze_key_fails_before_ray_starts():
    out = run_main("actor_rollout_ref.actor.freeze_vision_tower=True")
    assert out.returncode != 0
    assert "REVISUAL_FREEZE_VISION_TOWER" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_bad_pad_setting_fails_before_ray_starts():
    out = run_main("algorithm.pad.rho=-1")
    assert out.returncode != 0
    assert "algorithm.pad.rho" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout


def test_row_counting_loss_mode_fails_before_ray_starts():
    out = run_main("actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum")
    assert out.returncode != 0
    assert "loss_agg_mode" in out.stderr + out.stdout
    assert "ray init kwargs" not in out.stdout
