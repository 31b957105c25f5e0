"""The vision-output hook against verl's own patched Qwen2.5-VL forward, on a tiny model built from a config."""

import pytest
import torch
from tiny_vlm import image_inputs, prompt_ids, tiny_qwen25_vl
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl
from transformers.models.qwen2_vl import modeling_qwen2_vl
from verl.models.transformers.monkey_patch import apply_monkey_patch
from verl.models.transformers.qwen2_vl import _get_input_embeds
from verl.utils.transformers_compat import unpack_visual_output

from revisual_verl.engine.vision_output_compat import (
    VisionOutputWithMean,
    add_mean_to_vision_output,
    install_vision_output_hook,
    remove_vision_output_hook,
    vision_towers,
)

BATCH, LENGTH = 2, 10


@pytest.fixture
def verl_patched_model(monkeypatch):
    """A tiny Qwen2.5-VL with verl's forward patch, as verl's FSDP engine builds it.

    verl patches the transformers classes; the fixture restores them afterwards so that other tests
    in this process see transformers' own forward.
    """
    for cls in (
        modeling_qwen2_5_vl.Qwen2_5_VLModel,
        modeling_qwen2_vl.Qwen2VLModel,
        modeling_qwen2_5_vl.Qwen2_5_VLForConditionalGeneration,
        modeling_qwen2_vl.Qwen2VLForConditionalGeneration,
    ):
        monkeypatch.setattr(cls, "forward", cls.forward)
    model = tiny_qwen25_vl()
    apply_monkey_patch(model, use_remove_padding=False, use_fused_kernels=False)
    return model


def verl_inputs(images: bool, seed: int = 0) -> dict:
    """What verl's prepare_model_inputs passes without remove-padding: 4-row mrope positions (text rows)."""
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        "input_ids": prompt_ids(gen, BATCH, LENGTH, images),
        "attention_mask": torch.ones(BATCH, LENGTH, dtype=torch.long),
        "position_ids": torch.arange(LENGTH).view(1, 1, -1).expand(4, BATCH, -1).contiguous(),
    }
    if images:
        inputs.update(image_inputs(gen, BATCH))
    return inputs


def test_verl_text_only_forward_fails_without_the_hook(verl_patched_model):
    # If this starts passing, verl unwraps the tower's output itself and the hook can go (docs/engine.md).
    with pytest.raises(AttributeError, match="mean"):
        verl_patched_model(**verl_inputs(images=False))


def test_verl_text_only_forward_runs_with_the_hook_and_adds_exactly_zero(verl_patched_model):
    model = verl_patched_model
    assert install_vision_output_hook(model) == ["model.visual"]
    inputs = verl_inputs(images=False)
    logits = model(**inputs).logits
    assert logits.shape == (BATCH, LENGTH, 128) and torch.isfinite(logits).all()

    # The dummy image adds 0.0 * mean: the embeddings are the token embeddings, bit for bit.
    inner = model.model
    embeds, _ = _get_input_embeds(inner, inputs["input_ids"])
    assert torch.equal(embeds, inner.get_input_embeddings()(inputs["input_ids"]))

    # Gradients: every tower parameter takes part (as FSDP needs) and gets exactly zero.
    logits.float().logsumexp(-1).sum().backward()
    tower_grads = [p.grad for p in inner.visual.parameters()]
    assert all(g is not None for g in tower_grads)
    assert all(torch.count_nonzero(g) == 0 for g in tower_grads)
    assert any(torch.count_nonzero(p.grad) > 0 for p in inner.language_model.parameters())


def test_image_logits_are_bit_identical_with_and_without_the_hook(verl_patched_model):
    model = verl_patched_model
    inputs = verl_inputs(images=True, seed=1)
    with torch.no_grad():
        plain = model(**inputs).logits
        install_vision_output_hook(model)
        hooked = model(**inputs).logits
    assert torch.isfinite(plain).all()
    assert torch.equal(plain, hooked)


def test_hooked_output_keeps_both_contracts():
    model = tiny_qwen25_vl()
    install_vision_output_hook(model)
    pixels = image_inputs(torch.Generator().manual_seed(2), 1)
    with torch.no_grad():
        out = model.model.visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"])
        # transformers' own image path reads pooler_output from the hooked output.
        features = model.model.get_image_features(**pixels)
    assert isinstance(out, VisionOutputWithMean) and isinstance(out, BaseModelOutputWithPooling)
    embeds, _ = unpack_visual_output(out)  # verl's image path
    assert embeds.shape == (4, 32)
    assert torch.equal(out.mean(), embeds.mean())
    assert torch.equal(out.last_hidden_state, out["last_hidden_state"])
    assert torch.equal(torch.cat(features.pooler_output), embeds)


def test_install_is_idempotent_removable_and_per_instance():
    model, other = tiny_qwen25_vl(), tiny_qwen25_vl()
    assert install_vision_output_hook(model) == ["model.visual"]
    assert install_vision_output_hook(model) == []  # a second build step adds no second hook
    assert len(model.model.visual._forward_hooks) == 1
    assert len(other.model.visual._forward_hooks) == 0  # the class is untouched
    assert remove_vision_output_hook(model) == 1
    assert len(model.model.visual._forward_hooks) == 0


def test_hook_passes_other_outputs_through():
    tensor = torch.ones(3)
    assert add_mean_to_vision_output(None, (), tensor) is None  # transformers 4.x towers return a tensor

    class MoreFields(BaseModelOutputWithPooling):
        pass

    richer = MoreFields(pooler_output=tensor)
    assert add_mean_to_vision_output(None, (), richer) is None  # a subclass keeps its own type and fields
    retyped = add_mean_to_vision_output(None, (), BaseModelOutputWithPooling(pooler_output=tensor))
    assert isinstance(retyped, VisionOutputWithMean) and retyped.pooler_output is tensor


def test_models_without_a_qwen2_vl_tower_are_left_alone():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text_model = Qwen2ForCausalLM(
        Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
    )
    assert vision_towers(text_model) == []
    assert install_vision_output_hook(text_model) == []

    class OtherVLM(torch.nn.Module):  # a "visual" module in a model verl does not route through qwen2_vl.py
        def __init__(self):
            super().__init__()
            self.visual = torch.nn.Linear(2, 2)

    assert install_vision_output_hook(OtherVLM()) == []


def test_a_lora_wrapped_model_gets_the_hook_too():
    # verl applies LoRA before _build_fsdp_module, where the engine installs the hook.
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_qwen25_vl(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert install_vision_output_hook(model) == ["base_model.model.model.visual"]
    pixels = image_inputs(torch.Generator().manual_seed(3), 1)
    with torch.no_grad():
        out = model.base_model.model.model.visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"])
    assert isinstance(out, VisionOutputWithMean)
