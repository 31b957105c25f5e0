"""Which parameters belong to the vision tower, and freezing them (plain torch, no verl).

Names are matched after removing the segments that wrappers insert (FSDP1, activation checkpointing,
torch.compile, PEFT), so the same prefixes work before and after wrapping.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# Qwen2-VL / Qwen2.5-VL: "visual." in transformers < 4.52, "model.visual." since (Qwen3-VL too).
DEFAULT_VISION_PREFIXES = ("visual.", "model.visual.")
_WRAPPER_SEGMENTS = frozenset({"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"})
_PEFT_PREFIX = "base_model.model."


def normalize_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Prefixes as module paths ending in "." so "visual." cannot match "visual_proj.weight"."""
    out = []
    for prefix in prefixes:
        prefix = prefix.strip()
        if not prefix or prefix == ".":
            raise ValueError(f"empty vision module prefix in {list(prefixes)!r}")
        out.append(prefix if prefix.endswith(".") else prefix + ".")
    if not out:
        raise ValueError("no vision module prefix given")
    return tuple(dict.fromkeys(out))


def canonical_param_name(name: str) -> str:
    """``name`` without wrapper segments: what the unwrapped Hugging Face model calls the parameter."""
    name = ".".join(part for part in name.split(".") if part not in _WRAPPER_SEGMENTS)
    return name.removeprefix(_PEFT_PREFIX)


def is_vision_param(name: str, prefixes: Iterable[str] = DEFAULT_VISION_PREFIXES) -> bool:
    canonical = canonical_param_name(name)
    return any(canonical.startswith(prefix) for prefix in normalize_prefixes(prefixes))


def freeze_vision_params(module: torch.nn.Module, prefixes: Iterable[str] = DEFAULT_VISION_PREFIXES) -> list[str]:
    """Set ``requires_grad=False`` on every vision parameter of ``module``; returns their names.

    A frozen parameter never receives a gradient, so no optimizer (weight decay included) can move
    it even if it were left in a param group. Raises when nothing matches: a typo in the prefixes
    must not silently train the tower the user meant to freeze.
    """
    prefixes = normalize_prefixes(prefixes)
    frozen = []
    for name, param in module.named_parameters():
        if is_vision_param(name, prefixes):
            param.requires_grad_(False)
            frozen.append(name)
    if not frozen:
        top = sorted({canonical_param_name(n).split(".")[0] for n, _ in module.named_parameters()})
        raise ValueError(
            f"freezing the vision tower: no parameter name starts with any of {list(prefixes)} "
            f"(top-level modules: {top}); set the vision module prefix for this model"
        )
    return frozen


def vision_root_modules(
    module: torch.nn.Module, prefixes: Iterable[str] = DEFAULT_VISION_PREFIXES
) -> list[tuple[str, torch.nn.Module]]:
    """The modules the prefixes name (e.g. ``model.visual``), outermost only."""
    roots = {prefix[:-1] for prefix in normalize_prefixes(prefixes)}
    found = []
    for name, sub in module.named_modules():
        canonical = canonical_param_name(name)
        if canonical in roots and not any(canonical.startswith(done + ".") for done, _ in found):
            found.append((canonical, sub))
    return found


def trainable_named_parameters(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, param) for name, param in module.named_parameters() if param.requires_grad]
