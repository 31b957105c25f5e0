"""Vision-tower freezing on a tiny Qwen2.5-VL built from a config, with verl's own optimizer builder."""

import pytest
import torch
from tiny_vlm import image_inputs, prompt_ids, tiny_qwen25_vl
from verl.workers.config import FSDPOptimizerConfig
from verl.workers.config.optimizer import build_optimizer

from revisual_verl.engine.vision_freeze import (
    DEFAULT_VISION_PREFIXES,
    canonical_param_name,
    freeze_vision_params,
    is_vision_param,
    normalize_prefixes,
    trainable_named_parameters,
    vision_root_modules,
)

OPTIM = FSDPOptimizerConfig(lr=1e-2, weight_decay=0.1, total_training_steps=10)


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def lm_step(model, optimizer, *, images: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    input_ids = prompt_ids(gen, batch=2, length=12, images=images)
    extra = image_inputs(gen, batch=2) if images else {}
    optimizer.zero_grad()
    loss = model(input_ids=input_ids, labels=input_ids, **extra).loss
    if not images:
        # What verl's Qwen2-VL forward does on a text-only batch: the tower runs on a dummy image and 0 * its
        # output joins the loss, so an unfrozen tower holds zero gradients and AdamW's weight decay moves it.
        dummy = image_inputs(gen, batch=1)
        tower = model.model.visual(dummy["pixel_values"], grid_thw=dummy["image_grid_thw"])
        loss = loss + 0.0 * tower.pooler_output.sum()
    loss.backward()
    optimizer.step()


def split_changes(before, model):
    vision, language = {}, {}
    for name, p in model.named_parameters():
        (vision if is_vision_param(name) else language)[name] = not torch.equal(before[name], p.detach())
    return vision, language


def test_names_are_matched_through_wrappers():
    assert canonical_param_name("_fsdp_wrapped_module.model.visual._fsdp_wrapped_module.blocks.0.attn.qkv.weight") == (
        "model.visual.blocks.0.attn.qkv.weight"
    )
    assert canonical_param_name("base_model.model.visual._checkpoint_wrapped_module.merger.mlp.0.weight") == (
        "visual.merger.mlp.0.weight"
    )
    assert is_vision_param("_orig_mod.model.visual.patch_embed.proj.weight")
    assert is_vision_param("visual.blocks.0.norm1.weight")  # transformers < 4.52 naming
    assert not is_vision_param("model.language_model.layers.0.mlp.up_proj.weight")
    assert not is_vision_param("visual_proj.weight")  # a prefix is a module path, not a string prefix
    assert is_vision_param("vision_tower.encoder.weight", ["vision_tower"])
    assert normalize_prefixes(["vision_tower", "vision_tower.", " mm_projector "]) == ("vision_tower.", "mm_projector.")
    with pytest.raises(ValueError, match="empty"):
        normalize_prefixes(["visual.", " "])


def test_freezing_marks_exactly_the_vision_tower():
    model = tiny_qwen25_vl()
    frozen = freeze_vision_params(model)
    names = [n for n, _ in model.named_parameters()]
    assert frozen == [n for n in names if n.startswith("model.visual.")]
    assert {n for n, _ in trainable_named_parameters(model)} == set(names) - set(frozen)
    assert [name for name, _ in vision_root_modules(model)] == ["model.visual"]


def test_no_match_is_an_error_not_a_silent_no_op():
    model = tiny_qwen25_vl()
    with pytest.raises(ValueError, match="vision_tower.*top-level modules"):
        freeze_vision_params(model, ["vision_tower."])
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("images", [True, False], ids=["image-batch", "text-batch"])
def test_frozen_tower_is_bit_identical_after_optimizer_steps(images):
    model = tiny_qwen25_vl()
    freeze_vision_params(model, DEFAULT_VISION_PREFIXES)
    optimizer = build_optimizer([p for _, p in trainable_named_parameters(model)], OPTIM)
    before = snapshot(model)
    for seed in range(2):
        lm_step(model, optimizer, images=images, seed=seed)
    vision, language = split_changes(before, model)
    assert vision and not any(vision.values()), [n for n, changed in vision.items() if changed]
    assert all(language.values()), [n for n, changed in language.items() if not changed]
    assert all(p.grad is None for n, p in model.named_parameters() if is_vision_param(n))


def test_baseline_without_freezing_moves_the_tower():
    model = tiny_qwen25_vl()
    optimizer = build_optimizer(model.parameters(), OPTIM)
    before = snapshot(model)
    lm_step(model, optimizer, images=True, seed=0)
    vision, _ = split_changes(before, model)
    assert all(vision.values())


def test_baseline_weight_decay_alone_moves_a_tower_with_zero_gradients():
    # verl's Qwen2-VL forward runs the tower on a dummy image for text-only batches (0 * output),
    # so the tower holds zero gradients, and AdamW's decoupled weight decay still shrinks it.
    model = tiny_qwen25_vl()
    optimizer = build_optimizer(model.parameters(), OPTIM)
    before = snapshot(model)
    lm_step(model, optimizer, images=False, seed=0)
    assert all(p.grad is not None and not p.grad.any() for n, p in model.named_parameters() if is_vision_param(n))
    vision, _ = split_changes(before, model)
    nonzero = {name for name in vision if before[name].any()}  # decay cannot move a zero-initialised bias
    assert len(nonzero) > 10 and all(vision[name] for name in nonzero)
    weight = dict(model.named_parameters())["model.visual.blocks.0.attn.qkv.weight"]
    before_weight = before["model.visual.blocks.0.attn.qkv.weight"]
    # Zero gradients only: the change is the decay alone, factor (1 - lr * wd).
    assert torch.allclose(weight.detach(), before_weight * (1 - 1e-2 * 0.1), rtol=0, atol=1e-7)
