"""verl finds the plugin through its entry point: in a fresh interpreter and inside a Ray actor."""

import json
import os
import subprocess
import sys

PROBE = """
import json
import verl  # only verl: the entry point must do the rest
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY
print(json.dumps({"pad": "pad" in ADV_ESTIMATOR_REGISTRY, "pad_sync": "pad_sync" in TRAINER_REGISTRY}))
"""


def run_probe(**env):
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env={**os.environ, **env}, cwd="/"
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_interpreter_registers_through_the_entry_point():
    assert run_probe() == {"pad": True, "pad_sync": True}


def test_nothing_registers_when_verl_plugins_are_off():
    # Proves the registration above came from verl's entry-point loading, not from an import side path.
    assert run_probe(VERL_USE_EXTERNAL_PLUGINS="none") == {"pad": False, "pad_sync": False}


def test_ray_actor_registers_through_the_entry_point(ray_local):
    @ray_local.remote
    class Probe:
        def registries(self):
            import verl  # noqa: F401
            from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
            from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

            return os.getpid(), "pad" in ADV_ESTIMATOR_REGISTRY, "pad_sync" in TRAINER_REGISTRY

    actor = Probe.remote()
    pid, has_pad, has_trainer = ray_local.get(actor.registries.remote(), timeout=300)
    assert pid != os.getpid()
    assert has_pad and has_trainer


def test_registered_reports_what_the_registries_hold():
    from revisual_verl.plugin import registered

    got = registered()
    assert "pad" in got["adv_estimator"] and "pad_sync" in got["trainer_mode"]


def test_one_component_that_cannot_import_does_not_take_the_others_down(tmp_path):
    # A process without TransferQueue cannot import the pad_sync trainer; the estimator, the reward
    # manager and the engine vendor must still register, and the failure must be visible.
    (tmp_path / "transfer_queue.py").write_text("raise ImportError('TransferQueue is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    probe = (
        "import json, verl\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "import revisual_verl.plugin as plugin\n"
        "print(json.dumps({'pad': 'pad' in ADV_ESTIMATOR_REGISTRY, 'revisual': 'revisual' in REWARD_MANAGER,"
        " 'failed': sorted(plugin.failed)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd="/", check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "pad": True,
        "revisual": True,
        "failed": ["revisual_verl.pad.trainer"],
    }
    assert "trainer.v1.trainer_mode=pad_sync is not available" in out.stderr
