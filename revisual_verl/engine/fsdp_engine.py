"""verl's FSDP actor engine with a frozen vision tower and an annealed entropy coefficient.

Selected through verl's engine registry (vendor ``revisual``, see :mod:`registration`), configured by
its engine config (:class:`revisual_verl.engine.config.RevisualFSDPEngineConfig`, verl config keys that
verl's own conversion hands to every worker). Each worker logs the settings it applied. Three hooks of
``FSDPEngine`` are extended:

- ``_build_fsdp_module``: on the CPU platform a forward-only FSDP2 module is wrapped without verl's
  pinned CPU offload (no driver to pin with). Every model it builds (actor, reference, SFT model) gets
  the vision-output hook of :mod:`vision_output_compat`, so verl's Qwen2-VL forward runs micro-batches
  without images. With freezing on, vision parameters get ``requires_grad=False`` before FSDP wraps the model
  (after LoRA/QAT), so they never get a gradient; under FSDP1 without ``use_orig_params`` the vision
  tower is made its own FSDP unit, since a FlatParameter cannot mix frozen and trained tensors.
- ``_build_optimizer``: only trainable parameters enter the param groups, so AdamW's decoupled
  weight decay, which moves any parameter in a group, never touches the tower.
- ``train_batch`` (one call = one optimizer update): the loss gets the scheduled coefficient.
- ``forward_backward_batch`` (log-prob passes and each update's micro-batches): 3-D position ids packed ragged
  along the rope axes (a batch whose rows all have one length) are rebuilt first (:mod:`mrope_position_ids`;
  docs/engine.md says what it cannot reach).
"""

from __future__ import annotations

import logging
import os

import torch
from verl.utils import tensordict_utils as tu
from verl.workers.config.optimizer import build_optimizer
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

from revisual_verl.engine.config import EngineSettings
from revisual_verl.engine.entropy import optimizer_updates_taken, with_entropy_coeff
from revisual_verl.engine.mrope_position_ids import fix_position_ids
from revisual_verl.engine.vision_freeze import freeze_vision_params, is_vision_param, vision_root_modules
from revisual_verl.engine.vision_output_compat import install_vision_output_hook

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))


class RevisualFSDPEngine(FSDPEngineWithLMHead):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # verl's plain FSDPEngineConfig (e.g. the reference model's section) gives the defaults.
        self.revisual_settings = EngineSettings.from_engine_config(self.engine_config)
        self.frozen_vision_params: list[str] = []
        self.vision_output_hooks: list[str] = []
        self._updates_without_optimizer_step = 0
        self._warned_no_step = False
        self._checked_actor_config = False
        role = "forward-only" if self.engine_config.forward_only else "trained"
        # Every worker says what it applies (not only rank 0): a worker that got other settings shows.
        logger.warning(
            "revisual engine, rank %s, %s model (%s): %s",
            self.rank,
            role,
            type(self.engine_config).__name__,
            self.applied_settings(),
        )

    def applied_settings(self) -> str:
        """The settings this engine acts on (freezing only for a trained model)."""
        settings = self.revisual_settings
        if self.engine_config.forward_only and settings.freeze_vision_tower:
            settings = type(settings)(False, settings.vision_prefixes, settings.entropy_schedule)
        return settings.summary()

    @property
    def freezes_vision(self) -> bool:
        return self.revisual_settings.freeze_vision_tower and not self.engine_config.forward_only

    def _build_fsdp_module(self, module):
        # After verl's monkey patch and LoRA, before FSDP: names are plain and FSDP keeps the hook.
        self.vision_output_hooks = install_vision_output_hook(module)
        if self.vision_output_hooks and self.rank == 0:
            logger.warning(
                "revisual engine: vision-output hook on %s (text-only micro-batches, verl 0.9.1 + transformers 5)",
                ", ".join(self.vision_output_hooks),
            )
        if self.freezes_vision:
            prefixes = self.revisual_settings.vision_prefixes
            self.frozen_vision_params = freeze_vision_params(module, prefixes)
            if self.engine_config.strategy == "fsdp" and not self.engine_config.use_orig_params:
                make_vision_tower_fsdp1_unit(module, prefixes, self.engine_config.wrap_policy)
            if self.rank == 0:
                count = sum(p.numel() for n, p in module.named_parameters() if is_vision_param(n, prefixes))
                logger.warning(
                    "revisual engine: vision tower frozen (%d tensors, %d parameters)",
                    len(self.frozen_vision_params),
                    count,
                )
        if self._pins_memory_without_accelerator():
            # verl gives every forward-only FSDP2 module (the reference) CPUOffloadPolicy(pin_memory=True)
            # (verl/workers/engine/fsdp/transformer_impl.py, _build_fsdp_module); pinning needs a GPU
            # driver, and on the CPU platform the parameters live in host memory already. So the wrap
            # runs as for a trained module, and forward_only is restored for everything after it.
            self.engine_config.forward_only = False
            try:
                return super()._build_fsdp_module(module)
            finally:
                self.engine_config.forward_only = True
        return super()._build_fsdp_module(module)

    def _pins_memory_without_accelerator(self) -> bool:
        from verl.utils.device import get_device_name

        return get_device_name() == "cpu" and self.engine_config.strategy == "fsdp2" and self.engine_config.forward_only

    def _build_optimizer(self, module):
        if not self.freezes_vision:
            return super()._build_optimizer(module)
        prefixes = self.revisual_settings.vision_prefixes
        params = []
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if is_vision_param(name, prefixes):
                raise RuntimeError(f"revisual engine: vision parameter {name} is still trainable after freezing")
            params.append(param)
        return build_optimizer(params, self.optimizer_config)

    def optimizer_updates(self) -> int:
        """Optimizer updates taken so far: the ``u`` of the entropy schedule (restored on resume)."""
        taken = optimizer_updates_taken(self.optimizer)
        if taken is not None:
            return taken
        if not self._warned_no_step:
            self._warned_no_step = True
            logger.warning(
                "revisual engine: optimizer %s keeps no 'step' state; counting updates in this process, "
                "so the entropy schedule restarts from 0 on resume",
                type(self.optimizer).__name__,
            )
        return self._updates_without_optimizer_step

    def train_batch(self, data, loss_function):
        self._check_actor_config(loss_function)
        schedule = self.revisual_settings.entropy_schedule
        if schedule is None:
            return super().train_batch(data, loss_function)
        update = self.optimizer_updates()
        coeff = schedule.at(update)
        if coeff != 0.0:
            # verl's trainer asks for entropy only when actor.entropy_coeff != 0; the schedule decides now.
            tu.assign_non_tensor(data, calculate_entropy=True)
        outputs = super().train_batch(data, with_entropy_coeff(loss_function, coeff))
        self._updates_without_optimizer_step += 1
        if self.is_mp_src_rank_with_outputs():
            # TrainingWorker gathers these across ranks and flattens each rank's list of values (one per
            # micro-batch in verl's own metrics), so each is a list; the trainer logs actor/<name>.
            outputs["metrics"]["entropy_coeff"] = [coeff]
            outputs["metrics"]["entropy_schedule_update"] = [float(update)]
        return outputs

    def forward_backward_batch(self, data, loss_function, forward_only=False):
        fix_position_ids(data)
        return super().forward_backward_batch(data, loss_function, forward_only=forward_only)

    def _check_actor_config(self, loss_function) -> None:
        """verl's ``actor.freeze_vision_tower`` must not be set while this engine trains the tower."""
        if self._checked_actor_config:
            return
        self._checked_actor_config = True
        config = getattr(loss_function, "keywords", {}).get("config", None)
        if bool(getattr(config, "freeze_vision_tower", False)) and not self.freezes_vision:
            raise RuntimeError(
                "actor.freeze_vision_tower=True but this worker's engine config "
                f"({type(self.engine_config).__name__}) does not freeze: verl ignores the key and the vision tower "
                "would train. Name revisual_verl.engine.config.RevisualFSDPEngineConfig as "
                "actor_rollout_ref.actor.fsdp_config._target_ (the revisual stage configs do)"
            )


def make_vision_tower_fsdp1_unit(module: torch.nn.Module, prefixes, wrap_policy) -> None:
    """Make each vision root module (e.g. ``model.visual``) an FSDP1 unit of its own.

    Its blocks are units already (``_no_split_modules``), but the patch embedding and merger would
    otherwise share the root FlatParameter with the trained embeddings, and FSDP1 without
    ``use_orig_params`` refuses a FlatParameter that mixes frozen and trained tensors.
    """
    roots = vision_root_modules(module, prefixes)
    if not roots:
        raise ValueError(
            f"freezing the vision tower under strategy=fsdp: no module is named by {list(prefixes)}; "
            "set actor_rollout_ref.actor.fsdp_config.use_orig_params=True or strategy=fsdp2"
        )
    class_names = sorted({type(sub).__name__ for _, sub in roots})
    wrap = wrap_policy or {}
    if wrap.get("disable", False) or wrap.get("min_num_params", 0) > 0:
        raise ValueError(
            "freezing the vision tower under strategy=fsdp needs the transformer-layer wrap policy "
            "(wrap_policy.disable=False, min_num_params=0) so the tower is its own FSDP unit; "
            "or set actor_rollout_ref.actor.fsdp_config.use_orig_params=True, or strategy=fsdp2"
        )
    explicit = wrap.get("transformer_layer_cls_to_wrap", None)
    if explicit is not None:
        missing = [name for name in class_names if name not in list(explicit)]
        if missing:
            raise ValueError(
                "freezing the vision tower under strategy=fsdp: add "
                f"{missing} to actor_rollout_ref.actor.fsdp_config.wrap_policy.transformer_layer_cls_to_wrap"
            )
        return
    # An instance attribute: only this model's wrap policy changes, not the transformers class.
    module._no_split_modules = sorted(set(getattr(module, "_no_split_modules", None) or ()) | set(class_names))
