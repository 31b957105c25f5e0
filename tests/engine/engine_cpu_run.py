"""Runs verl's FSDP actor engine, as the revisual vendor selects it, on CPU (gloo, world size 1).

Test support for tests/engine/test_fsdp_engine.py, run in a subprocess because verl resolves its
platform once: the caller sets VERL_PLATFORM=cpu (the CPU mode's platform) and
VERL_ENGINE_VENDOR=revisual; the revisual engine's settings come as ``--engine-settings JSON`` and are
put in a ``RevisualFSDPEngineConfig`` (the actor's engine config, as verl's conversion of the stage
configs builds it). Builds a tiny Qwen2.5-VL from a config,
trains a few updates through verl's ppo_loss on text-only and/or image batches, optionally
checkpoints and resumes, optionally builds a forward-only reference engine the way verl's ref worker
does, and prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from functools import partial

import torch
import torch.distributed as dist
from tiny_vlm import image_inputs, prompt_ids, tiny_qwen25_vl


def _only(values):
    if values is None:
        return None
    assert isinstance(values, list) and len(values) == 1, values
    return values[0]


def save_tiny_model(path: str) -> None:
    tiny_qwen25_vl().save_pretrained(path)


def rollout_batch(
    seed: int, images: bool, batch: int = 4, prompt_len: int = 8, response_len: int = 6, equal_lengths: bool = False
):
    """A left/right padded rollout batch converted with verl's own left_right_2_no_padding.

    One response is shorter than the others unless ``equal_lengths`` (every row then has one length, which
    makes torch pack the 3-D position ids ragged along the rope axes: see mrope_position_ids).

    With ``images`` every prompt holds one image (vision start, 4 image tokens, vision end) and the
    batch carries ``multi_modal_inputs`` as verl's dataset produces them.
    """
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.padding import left_right_2_no_padding

    gen = torch.Generator().manual_seed(seed)
    prompts = prompt_ids(gen, batch, prompt_len, images)
    responses = torch.randint(3, 100, (batch, response_len), generator=gen)
    attention_mask = torch.ones(batch, prompt_len + response_len, dtype=torch.long)
    if not equal_lengths:
        attention_mask[1, prompt_len + 4 :] = 0  # one shorter response
    response_mask = attention_mask[:, prompt_len:].clone()
    text_pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    # Qwen2.5-VL's 4-row positions (text, then t/h/w mrope); equal rows for a text-only sequence.
    position_ids = text_pos.unsqueeze(1).expand(batch, 4, -1).contiguous()
    data = TensorDict(
        {
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": attention_mask,
            "response_mask": response_mask,
            "position_ids": position_ids,
            "old_log_probs": torch.full((batch, response_len), -4.0),
            "advantages": torch.randn(batch, response_len, generator=gen),
        },
        batch_size=[batch],
    )
    # Packs input_ids/position_ids into jagged tensors and sets loss_mask, as verl does after rollout.
    data = left_right_2_no_padding(data)
    if images:
        rows = [image_inputs(gen, 1) for _ in range(batch)]
        tu.assign_non_tensor(data, multi_modal_inputs=rows)
    tu.assign_non_tensor(
        data,
        temperature=1.0,
        use_remove_padding=False,
        use_dynamic_bsz=False,
        micro_batch_size_per_gpu=2,
        global_batch_size=batch,
        calculate_entropy=False,  # what verl's trainer sends when actor.entropy_coeff == 0
        use_fused_kernels=False,
    )
    return data


def as_sft_batch(data):
    """The rollout batch as verl's SFT trainer feeds it: a jagged loss mask (here every token) for sft_loss."""
    ids = data["input_ids"]
    data["loss_mask"] = torch.nested.nested_tensor_from_jagged(torch.ones_like(ids.values()), offsets=ids.offsets())
    return data


def build_engine(
    model_dir: str,
    strategy: str,
    weight_decay: float,
    forward_only: bool = False,
    optimizer: str = "AdamW",
    lr: float = 1e-2,
    clip_grad: float = 1.0,
    engine_settings: dict | None = None,
):
    from verl.trainer.config import CheckpointConfig
    from verl.workers.config import FSDPEngineConfig, FSDPOptimizerConfig, HFModelConfig
    from verl.workers.engine import EngineRegistry

    model_config = HFModelConfig(
        path=model_dir,
        load_tokenizer=False,
        override_config={"attn_implementation": "sdpa"},
        use_remove_padding=False,
        enable_gradient_checkpointing=False,
    )
    engine_cls = FSDPEngineConfig
    extra = {}
    if engine_settings is not None:
        from revisual_verl.engine.config import EntropyScheduleConfig, RevisualFSDPEngineConfig

        engine_cls = RevisualFSDPEngineConfig
        extra = dict(engine_settings)
        if "entropy" in extra:
            extra["entropy"] = EntropyScheduleConfig(**extra["entropy"])
    engine_config = engine_cls(
        **extra,
        strategy=strategy,
        model_dtype="fp32",
        mixed_precision={"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"},
        use_torch_compile=False,
        forward_only=forward_only,  # what verl's ref worker sets (actor_rollout_ref.ref.fsdp_config)
    )
    optimizer_config = FSDPOptimizerConfig(
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, clip_grad=clip_grad, total_training_steps=100
    )
    return EngineRegistry.new(
        model_type="language_model",
        backend=strategy,
        model_config=model_config,
        engine_config=engine_config,
        optimizer_config=optimizer_config,
        checkpoint_config=CheckpointConfig(),
    )


def actor_loss(entropy_coeff: float, freeze_vision_tower: bool):
    from verl.workers.config import FSDPActorConfig
    from verl.workers.utils.losses import ppo_loss

    config = FSDPActorConfig(
        strategy="fsdp",
        rollout_n=1,
        ppo_micro_batch_size_per_gpu=2,
        entropy_coeff=entropy_coeff,
        freeze_vision_tower=freeze_vision_tower,
    )
    return partial(ppo_loss, config=config)


def snapshot(engine) -> dict[str, torch.Tensor]:
    from torch.distributed.tensor import DTensor

    out = {}
    for name, param in engine.module.named_parameters():
        tensor = param.full_tensor() if isinstance(param, DTensor) else param
        out[name] = tensor.detach().clone()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="fsdp2", choices=["fsdp", "fsdp2"])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--verl-entropy-coeff", type=float, default=0.0)
    parser.add_argument("--verl-freeze-key", action="store_true")
    parser.add_argument(
        "--batches",
        default="image",
        help="comma-separated kinds, cycled over the updates: 'image' (every prompt holds an image) or 'text'",
    )
    parser.add_argument(
        "--loss", default="ppo", choices=["ppo", "sft"], help="verl's ppo_loss (RL stages) or sft_loss (stage 1)"
    )
    parser.add_argument(
        "--engine-settings",
        default=None,
        help="JSON of RevisualFSDPEngineConfig fields (freeze_vision_tower, vision_prefixes, entropy={...}); "
        "without it the engine gets verl's plain FSDPEngineConfig",
    )
    parser.add_argument("--equal-lengths", action="store_true", help="every row of a batch has the same length")
    parser.add_argument("--ref", action="store_true", help="also run a forward-only reference engine")
    parser.add_argument("--resume-updates", type=int, default=0, help="save, rebuild, load, then train this many")
    args = parser.parse_args()
    settings = json.loads(args.engine_settings) if args.engine_settings else None
    kinds = [kind.strip() for kind in args.batches.split(",")]
    if not kinds or any(kind not in ("image", "text") for kind in kinds):
        parser.error(f"--batches: expected a comma-separated list of 'image'/'text', got {args.batches!r}")

    dist.init_process_group("gloo", init_method=f"file://{tempfile.mktemp()}", rank=0, world_size=1)
    from revisual_verl.engine.vision_freeze import is_vision_param

    result = {"engine_cls": None, "updates": []}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        save_tiny_model(model_dir)
        engine = build_engine(model_dir, args.strategy, args.weight_decay, engine_settings=settings)
        result["engine_cls"] = type(engine).__name__
        engine.initialize()
        result["vision_output_hooks"] = getattr(engine, "vision_output_hooks", None)
        prefixes = getattr(engine, "revisual_settings", None)
        prefixes = prefixes.vision_prefixes if prefixes else ("visual.", "model.visual.")
        optimized = {id(p) for group in engine.optimizer.param_groups for p in group["params"]}
        names = [(n, p) for n, p in engine.module.named_parameters()]
        result["optimizer_vision_params"] = sum(
            1 for n, p in names if id(p) in optimized and is_vision_param(n, prefixes)
        )
        result["optimizer_params"] = len(optimized)
        result["vision_params"] = sum(1 for n, _ in names if is_vision_param(n, prefixes))

        if args.loss == "sft":
            from verl.workers.utils.losses import sft_loss

            loss_fn = partial(sft_loss, config=None)  # as verl's SFT trainer builds it
        else:
            loss_fn = actor_loss(args.verl_entropy_coeff, args.verl_freeze_key)
        before = snapshot(engine)

        def train(engine, count, seed0):
            for i in range(count):
                images = kinds[len(result["updates"]) % len(kinds)] == "image"
                data = rollout_batch(seed=seed0 + i, images=images, equal_lengths=args.equal_lengths)
                if args.loss == "sft":
                    data = as_sft_batch(data)
                with engine.train_mode():
                    out = engine.train_batch(data, loss_function=loss_fn)
                metrics = out["metrics"]
                result["updates"].append(
                    {
                        "images": images,
                        # The engine reports one value per update, as a list (verl flattens metric lists).
                        "entropy_coeff": _only(metrics.get("entropy_coeff")),
                        "update": _only(metrics.get("entropy_schedule_update")),
                        "loss": float(sum(out["loss"])),
                        # Metric.aggregate() sums the micro-batch parts of a globally normalised loss.
                        "pg_loss": metrics["actor/pg_loss"].aggregate() if "actor/pg_loss" in metrics else None,
                        "entropy_loss": (
                            metrics["actor/entropy_loss"].aggregate() if "actor/entropy_loss" in metrics else None
                        ),
                        "optimizer_updates": getattr(engine, "optimizer_updates", lambda: None)(),
                    }
                )

        train(engine, args.updates, seed0=0)
        after = snapshot(engine)
        vision_same = [torch.equal(before[n], after[n]) for n in before if is_vision_param(n, prefixes)]
        language_same = [torch.equal(before[n], after[n]) for n in before if not is_vision_param(n, prefixes)]
        result["vision_all_identical"] = all(vision_same)
        result["vision_any_changed"] = not all(vision_same)
        result["language_changed"] = sum(1 for same in language_same if not same)
        result["language_params"] = len(language_same)

        if args.resume_updates:
            ckpt = os.path.join(tmp, "ckpt")
            engine.save_checkpoint(ckpt, global_step=args.updates)
            resumed = build_engine(model_dir, args.strategy, args.weight_decay, engine_settings=settings)
            resumed.initialize()
            result["fresh_engine_updates"] = resumed.optimizer_updates()
            resumed.load_checkpoint(ckpt)
            result["resumed_engine_updates"] = resumed.optimizer_updates()
            train(resumed, args.resume_updates, seed0=100)
            final = snapshot(resumed)
            result["vision_identical_after_resume"] = all(
                torch.equal(before[n], final[n]) for n in before if is_vision_param(n, prefixes)
            )
        if args.ref:
            result["ref"] = run_reference(model_dir, args.strategy)
    dist.destroy_process_group()
    print(json.dumps(result))


def run_reference(model_dir: str, strategy: str) -> dict:
    """A forward-only engine from the same registry, as verl's ref worker builds it; log-probs of each kind."""
    from torch.distributed.fsdp import CPUOffloadPolicy
    from verl.workers.engine.fsdp import transformer_impl

    def unpinned_offload(pin_memory: bool = True) -> CPUOffloadPolicy:
        return CPUOffloadPolicy(pin_memory=False)

    ref = build_engine(model_dir, strategy, weight_decay=0.0, forward_only=True)
    # verl offloads a forward-only FSDP2 model to pinned CPU memory; pinning needs an accelerator.
    original = transformer_impl.CPUOffloadPolicy
    transformer_impl.CPUOffloadPolicy = unpinned_offload
    try:
        ref.initialize()
    finally:
        transformer_impl.CPUOffloadPolicy = original
    out = {"engine_cls": type(ref).__name__, "vision_output_hooks": getattr(ref, "vision_output_hooks", None)}
    for kind in ("text", "image"):
        data = rollout_batch(seed=200, images=kind == "image")
        with ref.eval_mode():
            log_probs = ref.infer_batch(data)["model_output"]["log_probs"]
        values = log_probs.values() if log_probs.is_nested else log_probs
        out[f"{kind}_log_probs_finite"] = bool(torch.isfinite(values).all())
        out[f"{kind}_log_probs_count"] = int(values.numel())
    return out


if __name__ == "__main__":
    main()
