"""Lets verl 0.9.1's Qwen2-VL / Qwen2.5-VL forward run micro-batches that hold no image (transformers 5.x).

For a micro-batch without pixels, verl's ``_get_input_embeds`` (verl/models/transformers/qwen2_vl.py)
runs the vision tower on a dummy 16-patch image and adds ``0.0 * output.mean()`` to the text
embeddings, so that every rank runs the tower in every step (FSDP's collectives must match across
ranks) while the result stays unchanged. The line dates from transformers 4.x, whose tower returned
the merged image embeddings as a tensor. Since transformers 5.0 the tower returns a
``BaseModelOutputWithPooling`` whose ``pooler_output`` holds those embeddings, and which has no
``mean()``: the step fails with an ``AttributeError``. verl's image path unwraps the output; only the
dummy path does not.

The fix here changes no verl or transformers code. A forward hook on this model instance's tower
returns the same output as a :class:`VisionOutputWithMean`, a ``BaseModelOutputWithPooling`` whose
``mean()`` is ``pooler_output.mean()``: the mean of what the 4.x tower returned, so the dummy path
computes exactly what verl meant. Everything else still reads the fields: verl's image path and
transformers' own ``get_image_features`` behave as before, and outputs of any other type (a tensor
from transformers 4.x, or a subclass with more fields) pass through untouched.

Remove this once verl's dummy path unwraps the tower's output itself: the test
``test_verl_text_only_forward_fails_without_the_hook`` then fails, which is the signal.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.hooks import RemovableHandle
from transformers.modeling_outputs import BaseModelOutputWithPooling

# Model types whose forward verl routes through qwen2_vl.py's _get_input_embeds (monkey_patch.py).
AFFECTED_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl"})
# Qwen2-VL's tower is ``model.visual`` with transformers >= 4.52 and ``visual`` before.
TOWER_ATTRIBUTE = "visual"
# Set on a tower that carries the hook, so that building twice never stacks two hooks.
_HOOK_HANDLE_ATTRIBUTE = "_revisual_vision_output_hook"


@dataclasses.dataclass
class VisionOutputWithMean(BaseModelOutputWithPooling):
    """The tower's output, plus the ``mean()`` verl's dummy-image path calls on it."""

    def mean(self, *args, **kwargs) -> torch.Tensor:
        return self.pooler_output.mean(*args, **kwargs)


def add_mean_to_vision_output(module: torch.nn.Module, args, output):
    """Forward hook: re-types a plain ``BaseModelOutputWithPooling``; returns None (keep) for anything else.

    Only the exact base class is re-typed: a subclass may carry fields this class would drop.
    """
    if type(output) is not BaseModelOutputWithPooling:
        return None
    return VisionOutputWithMean(**{field.name: getattr(output, field.name) for field in dataclasses.fields(output)})


def model_type_of(model: torch.nn.Module) -> str | None:
    # PEFT's PeftModel forwards ``config`` to the wrapped transformers model.
    return getattr(getattr(model, "config", None), "model_type", None)


def vision_towers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of each Qwen2-VL / Qwen2.5-VL vision tower in ``model``; [] for other models."""
    if model_type_of(model) not in AFFECTED_MODEL_TYPES:
        return []
    return [(name, sub) for name, sub in model.named_modules() if name.rsplit(".", 1)[-1] == TOWER_ATTRIBUTE]


def install_vision_output_hook(model: torch.nn.Module) -> list[str]:
    """Hook every vision tower of ``model`` (this instance only); returns the names of the towers hooked now.

    A no-op, returning [], for a model that is not Qwen2-VL / Qwen2.5-VL, has no tower, or is hooked
    already. Call it before FSDP wraps the model: FSDP keeps a module's hooks, and names are plain then.
    """
    hooked = []
    for name, tower in vision_towers(model):
        if getattr(tower, _HOOK_HANDLE_ATTRIBUTE, None) is not None:
            continue
        handle = tower.register_forward_hook(add_mean_to_vision_output)
        setattr(tower, _HOOK_HANDLE_ATTRIBUTE, handle)
        hooked.append(name)
    return hooked


def remove_vision_output_hook(model: torch.nn.Module) -> int:
    """Undo :func:`install_vision_output_hook`; returns how many hooks were removed."""
    removed = 0
    for _, tower in vision_towers(model):
        handle: RemovableHandle | None = getattr(tower, _HOOK_HANDLE_ATTRIBUTE, None)
        if handle is not None:
            handle.remove()
            setattr(tower, _HOOK_HANDLE_ATTRIBUTE, None)
            removed += 1
    return removed
