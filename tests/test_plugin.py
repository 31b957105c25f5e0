"""verl finds the plugin through its entry point, in a fresh interpreter and inside a Ray actor, and
loading it costs ``import verl`` nothing: no heavy module, no printed line (docs/plugin.md)."""

import json
import os
import re
import subprocess
import sys

import pytest

from revisual_verl import plugin

# What a process selecting each name runs, starting from a fresh interpreter that has only done
# `import verl`: verl's own lookup, entered through the module verl itself imports for it.
SELECT = {
    "pad": ("from verl.trainer.ppo.core_algos import get_adv_estimator_fn\nfound = get_adv_estimator_fn('pad')\n"),
    "pad_sync": (
        # the registry module itself first (not the package verl's main_ppo imports)
        "from verl.trainer.ppo.v1.trainer_base import get_trainer_cls\nfound = get_trainer_cls('pad_sync')\n"
    ),
    "revisual": (
        # as verl's config check does (verl/workers/config/reward.py), then verl's lookup
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "assert 'revisual' in REWARD_MANAGER\n"
        "from verl.trainer.ppo.reward import resolve_reward_manager_cls\n"
        "from omegaconf import OmegaConf\n"
        "found = resolve_reward_manager_cls(OmegaConf.create({'reward': {'reward_manager': {'source': 'register',"
        " 'name': 'revisual'}}}))\n"
    ),
    "engine vendor": (
        "import os\n"
        "os.environ.update(VERL_ENGINE_VENDOR='revisual', VERL_ENGINE_DEVICE='cuda')\n"
        "from verl.workers.engine.base import EngineRegistry\n"
        "found = EngineRegistry.get_engine_cls('language_model', 'fsdp2')\n"
    ),
    "cpu platform": (
        # verl resolves its platform once, from VERL_PLATFORM, on first use
        "import os\n"
        "os.environ['VERL_PLATFORM'] = 'cpu'\n"
        "from verl.plugin.platform import get_platform\n"
        "found = type(get_platform())\n"
    ),
    "hf rollout": (
        # as verl's LLMServerManager and its hybrid worker look rollouts up
        "from verl.workers.rollout.replica import get_rollout_replica_class\n"
        "from verl.workers.rollout.base import get_rollout_class\n"
        "assert get_rollout_class('hf', 'async').__name__ == 'HFServerAdapter'\n"
        "found = get_rollout_replica_class('hf')\n"
    ),
}
EXPECTED = {
    "pad": "revisual_verl.pad.estimator.compute_pad_advantage",
    "pad_sync": "revisual_verl.pad.trainer.PadSyncTrainer",
    "revisual": "revisual_verl.reward.manager.RevisualRewardManager",
    "engine vendor": "revisual_verl.engine.fsdp_engine.RevisualFSDPEngine",
    "cpu platform": "revisual_verl.cpu.platform.CpuPlatform",
    "hf rollout": "revisual_verl.cpu.hf_rollout.HFRolloutReplica",
}
REPORT = (
    "import json\n"
    "import revisual_verl.plugin as plugin\n"
    "print(json.dumps({'found': f'{found.__module__}.{found.__qualname__}', 'failed': plugin.failed}))\n"
)

# Modules the plugin used to pull into every verl process; none may load on `import verl` now.
HEAVY = [
    "hydra",
    "datasets",
    "peft",
    "accelerate",
    "fastapi",
    "uvicorn",
    "pandas",
    "pyarrow",
    "verl.trainer.ppo.core_algos",
    "verl.trainer.ppo.v1",
    "verl.workers.engine",
    "verl.experimental.reward_loop",
    "revisual_verl.pad.estimator",
    "revisual_verl.pad.trainer",
    "revisual_verl.reward.manager",
    "revisual_verl.engine.registration",
]

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+")


def python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, cwd="/", check=True
    )


def last_json(out: subprocess.CompletedProcess):
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def import_verl(tmp_path_factory):
    """`import verl` in a fresh interpreter with the plugin's entry point on and off: output and modules."""
    runs = {}
    for policy in ("auto", "none"):
        modules = tmp_path_factory.mktemp(policy) / "modules.json"
        code = f"import sys, json\nimport verl\njson.dump(sorted(sys.modules), open({str(modules)!r}, 'w'))\n"
        out = python(code, VERL_USE_EXTERNAL_PLUGINS=policy)
        runs[policy] = {"stdout": out.stdout, "stderr": out.stderr, "modules": set(json.loads(modules.read_text()))}
    return runs


def test_import_verl_loads_only_the_plugin_module(import_verl):
    with_plugin, without = import_verl["auto"]["modules"], import_verl["none"]["modules"]
    # The CPU platform registers at once: verl resolves its platform before any lazy hook could run.
    assert with_plugin - without == {
        "revisual_verl",
        "revisual_verl.plugin",
        "revisual_verl.cpu",
        "revisual_verl.cpu.platform",
        "revisual_verl.cpu.platform_registration",
    }
    assert [name for name in HEAVY if name in with_plugin] == []


def test_import_verl_prints_nothing_plain_verl_does_not(import_verl):
    def lines(run, stream):
        return [TIMESTAMP.sub("<time>", line) for line in run[stream].splitlines()]

    for stream in ("stdout", "stderr"):
        assert lines(import_verl["auto"], stream) == lines(import_verl["none"], stream)


@pytest.mark.parametrize("name", SELECT)
def test_fresh_interpreter_selecting_a_name_finds_it(name):
    out = python("import verl  # only verl: the entry point must do the rest\n" + SELECT[name] + REPORT)
    assert last_json(out) == {"found": EXPECTED[name], "failed": {}}


# Components whose verl module `import verl` itself imports, so they register when the plugin loads
# (docs/plugin.md, "Eager registrations"). Every other one must wait.
EAGER: set[str] = {"platform"}


@pytest.mark.parametrize("key", [component.key for component in plugin.COMPONENTS])
def test_each_component_registers_right_after_its_verl_module_and_not_before(key):
    code = (
        "import importlib, json, sys, verl\n"
        "import revisual_verl.plugin as plugin\n"
        f"component = next(c for c in plugin.COMPONENTS if c.key == {key!r})\n"
        "loaded_on_import_verl = component.module in sys.modules\n"
        "importlib.import_module(component.after[0])\n"
        "names = [n for path in component.registry for n in plugin._our_names(plugin._resolve(path))]\n"
        "print(json.dumps({'loaded_on_import_verl': loaded_on_import_verl, 'registered': bool(names),"
        " 'failed': plugin.failed}))\n"
    )
    assert last_json(python(code)) == {"loaded_on_import_verl": key in EAGER, "registered": True, "failed": {}}


def test_fresh_interpreter_with_every_registry_imported_stops_watching():
    # Once every component has registered, nothing of the plugin stays on the import path, and the
    # watched verl modules keep their own loaders.
    code = (
        "import sys, json, verl\n" + "".join(SELECT.values()) + "import revisual_verl.plugin as plugin\n"
        "import verl.trainer.ppo.v1 as v1, verl.trainer.ppo.core_algos as core_algos\n"
        "print(json.dumps({'watching': plugin.watcher in sys.meta_path,"
        " 'waiting': sorted(plugin.watcher.waiting_for()),"
        " 'loaders': sorted({type(m.__loader__).__name__ for m in (v1, core_algos)}),"
        " 'spec_loaders': sorted({type(m.__spec__.loader).__name__ for m in (v1, core_algos)})}))\n"
    )
    assert last_json(python(code)) == {
        "watching": False,
        "waiting": [],
        "loaders": ["SourceFileLoader"],
        "spec_loaders": ["SourceFileLoader"],
    }


def test_nothing_registers_when_verl_plugins_are_off():
    # Proves the registrations above come from verl's entry-point loading, not from an import side path.
    code = (
        "import json, verl\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "print(json.dumps(['pad' in ADV_ESTIMATOR_REGISTRY, 'pad_sync' in TRAINER_REGISTRY,"
        " 'revisual' in REWARD_MANAGER]))\n"
    )
    assert last_json(python(code, VERL_USE_EXTERNAL_PLUGINS="none")) == [False, False, False]


def test_ray_actor_selecting_each_name_finds_it(ray_local):
    @ray_local.remote
    class Probe:
        def select(self):
            import verl  # noqa: F401

            found = {}
            for name, code in SELECT.items():
                scope = {}
                exec(code, scope)  # noqa: S102  the same lookups as the fresh-interpreter test
                found[name] = f"{scope['found'].__module__}.{scope['found'].__qualname__}"
            import revisual_verl.plugin as plugin

            return os.getpid(), found, dict(plugin.failed)

    # As the CPU mode's workers are started: VERL_PLATFORM is in the process environment from the start.
    probe = Probe.options(runtime_env={"env_vars": {"VERL_PLATFORM": "cpu"}}).remote()
    pid, found, failed = ray_local.get(probe.select.remote(), timeout=300)
    assert pid != os.getpid()
    assert found == EXPECTED
    assert failed == {}


def test_registered_reports_what_the_registries_hold():
    from revisual_verl.plugin import registered

    assert registered() == {
        "adv_estimator": ["pad"],
        "trainer_mode": ["pad_sync"],
        "reward_manager": ["revisual"],
        "engine": sorted(
            f"language_model/{backend}/{device}/revisual"
            for backend in ("fsdp", "fsdp2")
            for device in ("cuda", "npu", "cpu")
        ),
        "platform": ["cpu"],
        "rollout": ["hf", "hf/async"],
    }


def test_one_component_that_cannot_import_does_not_take_the_others_down():
    # The engine module cannot import in this process (as with a missing optional dependency): verl's
    # own engine package must still import, the other components must register, and the failure must
    # be a visible warning and an empty entry in registered().
    code = (
        "import sys, json\n"
        "sys.modules['revisual_verl.engine.fsdp_engine'] = None  # makes importing it fail\n"
        "import verl\n"
        "from verl.workers.engine import EngineRegistry, FSDPEngineWithLMHead\n"
        "import revisual_verl.plugin as plugin\n"
        "got = plugin.registered()\n"
        "print(json.dumps({'registered': {k: bool(v) for k, v in got.items()}, 'failed': sorted(plugin.failed),"
        " 'verl_engine': EngineRegistry.get_engine_cls('language_model', 'fsdp2') is FSDPEngineWithLMHead}))\n"
    )
    out = python(code, VERL_ENGINE_DEVICE="cuda")
    assert last_json(out) == {
        "registered": {
            "adv_estimator": True,
            "trainer_mode": True,
            "reward_manager": True,
            "engine": False,
            "platform": True,
            "rollout": True,
        },
        "failed": ["revisual_verl.engine.registration"],
        "verl_engine": True,
    }
    assert "engine vendor revisual (VERL_ENGINE_VENDOR=revisual) is not available" in out.stderr
