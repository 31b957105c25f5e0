"""The plugin's lazy registration mechanics, on small stand-in packages (no verl): a component
registers right after the module it waits for is imported, never before, once, and never breaks that
import (docs/plugin.md)."""

import importlib
import importlib.util
import itertools
import logging
import sys
import textwrap

import pytest

from revisual_verl import plugin

_ids = itertools.count()


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A fresh watcher, a stand-in registry package ``fakeverl_N`` and a place for component modules."""
    n = next(_ids)
    pkg = f"fakeverl_{n}"
    (tmp_path / pkg).mkdir()
    # The package imports its registry module, as verl's packages do; it also carries a sibling
    # module that a component may import while the package is being imported.
    (tmp_path / pkg / "__init__.py").write_text("from .registry import REGISTRY, register\nfrom . import sibling\n")
    (tmp_path / pkg / "registry.py").write_text(
        textwrap.dedent(
            """
            REGISTRY = {}

            def register(name, obj):
                if name in REGISTRY and REGISTRY[name] is not obj:
                    raise ValueError(f"{name} registered twice")
                REGISTRY[name] = obj
            """
        )
    )
    (tmp_path / pkg / "sibling.py").write_text("VALUE = 1\n")
    (tmp_path / pkg / "other.py").write_text("OTHER = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin, "failed", {})
    watcher = plugin._RegistryWatcher()
    before = set(sys.modules)

    class World:
        def __init__(self):
            self.pkg = pkg
            self.watcher = watcher

        def component(self, body: str, after=None, name="comp") -> plugin.Component:
            module = f"{pkg}_{name}"
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(body).format(pkg=pkg))
            return plugin.Component(
                key=name,
                selects=f"the {name} component",
                after=tuple(after or (pkg,)),
                module=module,
                registry=(f"{pkg}.registry:REGISTRY",),
            )

        def registry(self) -> dict:
            return importlib.import_module(f"{pkg}.registry").REGISTRY

    yield World()
    if watcher in sys.meta_path:
        sys.meta_path.remove(watcher)
    for name in set(sys.modules) - before:
        if name.startswith(pkg):
            del sys.modules[name]


# Names bound by the package's __init__: importable only once the watched package has finished.
REGISTERS = """
    from {pkg} import register, sibling

    def thing():
        return sibling.VALUE

    register("thing", thing)
"""


def test_registers_only_once_the_watched_module_is_imported(world):
    comp = world.component(REGISTERS)
    world.watcher.wait(comp)
    assert world.pkg not in sys.modules and comp.module not in sys.modules
    assert world.watcher in sys.meta_path

    package = importlib.import_module(world.pkg)

    assert world.registry()["thing"].__module__ == comp.module
    assert plugin.failed == {}
    # Nothing waits any more: the watcher has left the import path, and the package kept its own loader.
    assert world.watcher not in sys.meta_path
    assert type(package.__loader__).__name__ == "SourceFileLoader"
    assert package.__spec__.loader is package.__loader__


def test_registers_at_once_when_the_module_is_already_imported(world):
    importlib.import_module(world.pkg)
    comp = world.component(REGISTERS)
    world.watcher.wait(comp)
    assert "thing" in world.registry()
    assert world.watcher not in sys.meta_path


def test_several_watched_modules_register_once_on_the_first(world):
    comp = world.component(REGISTERS, after=(f"{world.pkg}.other", world.pkg))
    world.watcher.wait(comp)
    importlib.import_module(f"{world.pkg}.other")  # imports the package first: it fires there
    assert "thing" in world.registry()
    assert world.watcher.waiting_for() == set()
    assert world.watcher not in sys.meta_path


def test_other_modules_are_left_alone(world):
    comp = world.component(REGISTERS, after=(f"{world.pkg}.other",))
    world.watcher.wait(comp)
    importlib.import_module(world.pkg)  # the package, not the watched submodule
    assert "thing" not in world.registry() and comp.module not in sys.modules
    assert world.watcher.waiting_for() == {f"{world.pkg}.other"}


def test_a_broken_component_warns_and_never_breaks_the_import_it_waits_for(world, caplog):
    broken = world.component("raise ImportError('optional dependency missing')\n", name="broken")
    fine = world.component(REGISTERS, name="fine")
    world.watcher.wait(broken)
    world.watcher.wait(fine)

    with caplog.at_level(logging.WARNING, logger=plugin.__name__):
        package = importlib.import_module(world.pkg)

    assert package.REGISTRY is world.registry() and sys.modules[world.pkg] is package
    assert "thing" in world.registry()
    assert plugin.failed == {broken.module: "ImportError: optional dependency missing"}
    assert "the broken component is not available in this process" in caplog.text


def test_a_component_imported_directly_before_its_module_registers_once(world):
    # revisual_verl.engine.registration's shape: the component imports the watched module itself.
    comp = world.component(REGISTERS)
    world.watcher.wait(comp)
    importlib.import_module(comp.module)
    assert list(world.registry()) == ["thing"]
    assert plugin.failed == {}
    assert world.watcher not in sys.meta_path


def test_the_plugins_components_wait_for_verl_modules_and_name_importable_registries():
    # Every entry of the real table is complete: verl modules to wait for, a module of this package,
    # and registries given as "module:attribute".
    keys = [component.key for component in plugin.COMPONENTS]
    assert len(set(keys)) == len(keys)
    for component in plugin.COMPONENTS:
        assert component.after and all(name.startswith("verl.") for name in component.after)
        assert component.module.startswith("revisual_verl.")
        assert importlib.util.find_spec(component.module) is not None
        for path in component.registry:
            module, _, attribute = path.partition(":")
            assert module.startswith("verl.") and attribute


def test_registered_reads_names_back_and_reports_a_component_that_cannot_register(world, monkeypatch, caplog):
    # Nested registries (verl's engine table) and "module.Class" strings (verl's rollout table) count
    # when they point into the package; other entries do not.
    comp = world.component(
        """
        from {pkg} import REGISTRY

        class Engine:
            pass

        REGISTRY["nested"] = {{"fsdp": {{("cuda", "ours"): Engine, ("cuda", "theirs"): dict}}}}
        REGISTRY[("hf", "async")] = "{pkg}_comp.Engine"
        REGISTRY["foreign"] = "elsewhere.Engine"
        """
    )
    missing = plugin.Component("missing", "the missing component", ("no_such_module_here",), "nope", ("x:Y",))
    monkeypatch.setattr(plugin, "COMPONENTS", (comp, missing))
    monkeypatch.setattr(plugin, "PACKAGE", comp.module)
    world.watcher.wait(comp)

    with caplog.at_level(logging.WARNING, logger=plugin.__name__):
        report = plugin.registered()

    assert report == {"comp": ["hf/async", "nested/fsdp/cuda/ours"], "missing": []}
    assert list(plugin.failed) == ["nope"]
    assert "the missing component is not available in this process" in caplog.text
