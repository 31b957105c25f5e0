"""verl entry point (group ``verl.plugins``): registers the plugin in verl, lazily.

verl imports this module inside ``import verl`` in every process it starts (driver, TaskRunner,
workers, reward workers), and logs any error here at DEBUG only. So this module imports nothing
heavy and registers nothing itself. It only tells Python's import system: "right after verl module
``M`` has been imported, import our module that registers into ``M``'s registry". A process that
never imports ``M`` never pays for the component, and a process that does (because it is about to
look a name up there) gets the component registered before its lookup can run. See docs/plugin.md.

Each component registers on its own: one that cannot import (a missing optional dependency in some
process) is logged as a WARNING naming it, is kept in :data:`failed`, and the others still register.
:func:`registered` reads the registries back, for tests and start-up checks.

To add a component, add one :class:`Component` to :data:`COMPONENTS`.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import NamedTuple

logger = logging.getLogger(__name__)

PACKAGE = "revisual_verl"


class Component(NamedTuple):
    key: str
    """Its key in :func:`registered`'s report."""
    selects: str
    """What a user sets to pick it (for messages)."""
    after: tuple[str, ...]
    """verl modules: registration runs right after the first of them has been imported (or at once,
    when one already is). Pick the package whose ``__init__`` imports the registry, see docs/plugin.md."""
    module: str
    """The plugin module whose import registers the component."""
    registry: tuple[str, ...]
    """Where verl keeps the names, ``"module:attribute.path"``: :func:`registered` reads them back there."""


COMPONENTS: tuple[Component, ...] = (
    Component(
        key="adv_estimator",
        selects="algorithm.adv_estimator=pad",
        after=("verl.trainer.ppo.core_algos",),
        module="revisual_verl.pad.estimator",
        registry=("verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY",),
    ),
    Component(
        key="trainer_mode",
        selects="trainer.v1.trainer_mode=pad_sync",
        after=("verl.trainer.ppo.v1",),
        module="revisual_verl.pad.trainer",
        registry=("verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY",),
    ),
    Component(
        key="reward_manager",
        selects="reward.reward_manager.name=revisual",
        after=("verl.experimental.reward_loop.reward_manager",),
        module="revisual_verl.reward.manager",
        registry=("verl.experimental.reward_loop.reward_manager.registry:REWARD_MANAGER",),
    ),
    Component(
        key="engine",
        selects="engine vendor revisual (VERL_ENGINE_VENDOR=revisual)",
        after=("verl.workers.engine",),
        module="revisual_verl.engine.registration",
        registry=("verl.workers.engine.base:EngineRegistry._engines",),
    ),
    Component(
        key="platform",
        selects="the CPU mode's platform (VERL_PLATFORM=cpu)",
        # Loaded by `import verl` itself (verl/utils/device.py), so this registers at once, in every
        # process, before anything can resolve the platform.
        after=("verl.plugin.platform",),
        module="revisual_verl.cpu.platform_registration",
        registry=("verl.plugin.platform.platform_manager:PlatformRegistry._platforms",),
    ),
    Component(
        key="rollout",
        selects="actor_rollout_ref.rollout.name=hf",
        after=("verl.workers.rollout",),
        module="revisual_verl.cpu.rollout_registration",
        registry=(
            "verl.workers.rollout.replica:RolloutReplicaRegistry._registry",
            "verl.workers.rollout.base:_ROLLOUT_REGISTRY",
        ),
    ),
)

failed: dict[str, str] = {}
"""Component module -> why it could not register in this process."""


def _unavailable(component: Component, error: Exception) -> None:
    if component.module in failed:
        return
    failed[component.module] = f"{type(error).__name__}: {error}"
    logger.warning(
        "revisual-verl: %s is not available in this process (%s)", component.selects, failed[component.module]
    )


def _register(component: Component) -> None:
    """Import the component's module (its import registers it); never raises."""
    try:
        importlib.import_module(component.module)
    except Exception as error:  # noqa: BLE001  runs inside verl's own import: it must never break it
        _unavailable(component, error)


class _RegisterAfterExec:
    """Wraps the loader of a watched verl module: executes it, then registers what waited for it."""

    def __init__(self, loader, watcher: _RegistryWatcher):
        self._loader = loader
        self._watcher = watcher

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module) -> None:
        # The module never sees this wrapper: it runs, and stays, with its own loader.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._watcher.loaded(module.__name__)

    def __getattr__(self, name):
        loader = self.__dict__.get("_loader")
        if loader is None:
            raise AttributeError(name)
        return getattr(loader, name)


class _RegistryWatcher:
    """A ``sys.meta_path`` finder that only watches: it lets the other finders find the module and
    wraps the loader of the few modules components wait for. It takes itself off ``sys.meta_path``
    once nothing waits any more."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: dict[str, list[Component]] = {}

    def wait(self, component: Component) -> None:
        """Register ``component`` after its first verl module is imported, or now if one already is."""
        if any(name in sys.modules for name in component.after):
            _register(component)
            return
        with self._lock:
            for name in component.after:
                self._waiting.setdefault(name, []).append(component)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def waiting_for(self) -> set[str]:
        with self._lock:
            return set(self._waiting)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self._waiting:
            return None
        spec = self._spec_from_later_finders(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisterAfterExec(spec.loader, self)
        return spec

    def _spec_from_later_finders(self, fullname, path, target):
        finders = list(sys.meta_path)
        start = finders.index(self) + 1 if self in finders else 0
        for finder in finders[start:]:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def loaded(self, fullname: str) -> None:
        with self._lock:
            ready = self._waiting.pop(fullname, [])
            for component in ready:
                for other in component.after:
                    if other != fullname and component in self._waiting.get(other, ()):
                        self._waiting[other].remove(component)
                        if not self._waiting[other]:
                            del self._waiting[other]
            if not self._waiting and self in sys.meta_path:
                sys.meta_path.remove(self)
        for component in ready:
            _register(component)


watcher = _RegistryWatcher()
for _component in COMPONENTS:
    watcher.wait(_component)


def _resolve(path: str):
    module_name, _, attributes = path.partition(":")
    obj = importlib.import_module(module_name)
    for attribute in attributes.split("."):
        obj = getattr(obj, attribute)
    return obj


def _is_ours(value) -> bool:
    # Some registries hold classes or functions, some "package.module.Class" strings.
    module = value if isinstance(value, str) else str(getattr(value, "__module__", ""))
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _key_text(key) -> str:
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _our_names(registry, prefix: str = "") -> list[str]:
    """Keys of a (nested) registry dict whose values come from this package, nested keys joined by "/"."""
    names = []
    for key, value in registry.items():
        name = prefix + _key_text(key)
        if isinstance(value, dict):
            names += _our_names(value, name + "/")
        elif _is_ours(value):
            names.append(name)
    return names


def registered() -> dict[str, list[str]]:
    """What this plugin has in verl's registries, read back from the registries themselves.

    Imports each component's verl modules (which registers it, as it would in a process that uses
    it): a start-up check, not something to call on an import path. A component that cannot register
    here reports ``[]``, and :data:`failed` says why.
    """
    report = {}
    for component in COMPONENTS:
        try:
            for name in component.after:
                importlib.import_module(name)
            report[component.key] = sorted(name for path in component.registry for name in _our_names(_resolve(path)))
        except Exception as error:  # noqa: BLE001  report every component, whatever one of them does
            _unavailable(component, error)
            report[component.key] = []
    return report
