"""revisual_verl.cpu.driver: a driver with trainer.device=cpu resolves verl's cpu platform, or says what to export."""

import os
import subprocess
import sys


def run(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=300
    )


def test_a_fresh_driver_resolves_the_cpu_platform():
    done = run(
        "from revisual_verl.cpu.driver import select_cpu_platform; select_cpu_platform(); "
        "from verl.utils.device import get_device_name; print('device', get_device_name())"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "device cpu" in done.stdout


def test_main_ppo_without_the_platform_exported_fails_saying_what_to_export(tmp_path):
    # verl's trainer resolves its platform at import: too late to switch, so the entry point refuses, before Ray.
    done = subprocess.run(
        [sys.executable, "-m", "revisual_verl.main_ppo", "--config-name=stage2_multimodal_rl", "device=cpu"],
        env={k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "export VERL_PLATFORM=cpu" in done.stderr
