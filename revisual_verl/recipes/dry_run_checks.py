"""Checks a composed training config the way verl would at start-up, without GPUs, Ray or weights.

Each check runs on its own and records its outcome, so one dry run lists every problem at once
instead of stopping at the first. The checks call verl's own code wherever verl has it
(``validate_config``, its dataclass conversions, its registries, its dataset-class loader).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import os
from collections.abc import Callable, Iterable

from omegaconf import DictConfig, OmegaConf, open_dict

from revisual_verl.recipes import data_checks

OK, WARN, SKIP, ERROR = "ok", "warn", "skip", "error"


@dataclasses.dataclass
class Finding:
    level: str
    what: str
    detail: str = ""

    def line(self) -> str:
        return f"  {self.level:<5} {self.what}" + (f": {self.detail}" if self.detail else "")


@dataclasses.dataclass
class Report:
    findings: list[Finding] = dataclasses.field(default_factory=list)

    def add(self, level: str, what: str, detail: str = "") -> None:
        self.findings.append(Finding(level, what, detail))

    def check(self, what: str, fn: Callable[[], str | None]) -> None:
        """Run ``fn``; an exception is an error finding, a returned string is the ok detail."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # verl prints progress chatter while checking
                detail = fn()
        except Exception as error:  # noqa: BLE001  every failure is reported, not raised
            self.add(ERROR, what, _one_line(error))
        else:
            self.add(OK, what, detail or "")

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return " ".join(text.split())


def _model_dir(path: str | None) -> str | None:
    """The local model directory, or None when the path is a dry-run placeholder or not there yet."""
    if not path:
        return None
    local = os.path.expanduser(str(path))
    return local if os.path.isfile(os.path.join(local, "config.json")) else None


def check_model(report: Report, model_section: DictConfig, key: str, needs_processor: bool = False) -> None:
    """Load tokenizer, processor and HF config (never weights) when the model directory exists."""
    path = model_section.get("path")
    if _model_dir(path) is None:
        report.add(
            SKIP,
            key,
            f"{path} is not a model directory (no config.json): tokenizer/processor/config not loaded. "
            "A dry run needs no model; a real run does",
        )
        return

    def load():
        from verl.utils.config import omega_conf_to_dataclass

        with _quiet_warnings():
            model = omega_conf_to_dataclass(model_section)
        if needs_processor and model.processor is None:
            raise ValueError(f"{path} has no loadable (multimodal) processor, but this stage's prompts have images")
        kind = "processor" if model.processor is not None else "tokenizer only"
        return f"{model.architectures[0]} ({kind}) from {path}"

    report.check(f"{key} -> HFModelConfig", load)


def check_data(
    report: Report,
    data: DictConfig,
    split_key: str,
    required: Iterable[str],
    batch_size: int | None,
    images: str | None = None,
) -> None:
    """``images``: "required" (some rows must carry images), "unexpected" (text-only stage), or None."""
    key = f"data.{split_key}"
    paths = data_checks.as_paths(OmegaConf.to_container(data, resolve=True).get(split_key))
    if not paths:
        report.add(SKIP, key, "not set")
        return
    image_key = data.get("image_key") if images else None
    required = list(required) + ([image_key] if images == "required" else [])
    try:
        summary = data_checks.summarize(paths, key, image_key=image_key)
        data_checks.check_columns(summary, key, required)
    except data_checks.DataCheckError as error:
        report.add(ERROR, key, str(error))
        return
    counted = "" if summary.images is None else f", {summary.images} images"
    report.add(OK, key, f"{summary.rows} rows in {len(paths)} file(s){counted}, columns {sorted(summary.columns)}")
    if images == "required" and summary.images == 0:
        report.add(ERROR, key, f"no row has an image in column {image_key!r}, but this stage trains on images")
    if images == "unexpected" and summary.images:
        report.add(WARN, key, f"{summary.images} images in a text-only stage (they will be fed to the model)")
    if batch_size and summary.rows < batch_size:
        report.add(
            WARN,
            key,
            f"{summary.rows} rows < data.train_batch_size {batch_size}: an epoch would have no full batch "
            "(fine for sample data in a dry run, not for training)",
        )


def _section(config: DictConfig, key: str) -> DictConfig:
    return OmegaConf.select(config, key)


def _convert(config: DictConfig, key: str) -> Callable[[], str]:
    def convert():
        from verl.utils.config import omega_conf_to_dataclass

        return type(omega_conf_to_dataclass(_section(config, key))).__name__

    return convert


def _convert_ref(config: DictConfig) -> str:
    """The ref section as verl's worker converts it: its log_prob_* keys renamed to the actor's names."""
    from verl.utils.config import omega_conf_to_dataclass

    ref = OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.ref, resolve=True))
    renames = {
        "log_prob_micro_batch_size": "ppo_micro_batch_size",
        "log_prob_micro_batch_size_per_gpu": "ppo_micro_batch_size_per_gpu",
        "log_prob_use_dynamic_bsz": "use_dynamic_bsz",
        "log_prob_max_token_len_per_gpu": "ppo_max_token_len_per_gpu",
    }
    with open_dict(ref):
        ref.ppo_mini_batch_size = config.actor_rollout_ref.actor.ppo_mini_batch_size
        for old, new in renames.items():
            ref[new] = ref.pop(old, None)
        if ref.use_dynamic_bsz is None:
            ref.use_dynamic_bsz = False
    return type(omega_conf_to_dataclass(ref)).__name__


PLUGIN_ALGORITHM_BLOCKS = ("pad", "presample")


def _convert_algorithm(config: DictConfig) -> str:
    """verl's AlgoConfig on the algorithm section less the plugin's blocks (``pad``, ``presample``), which it
    does not know."""
    from verl.utils.config import omega_conf_to_dataclass

    algorithm = OmegaConf.to_container(config.algorithm, resolve=True)
    for block in PLUGIN_ALGORITHM_BLOCKS:
        algorithm.pop(block, None)
    return type(omega_conf_to_dataclass(OmegaConf.create(algorithm))).__name__


def _check_adv_estimator(config: DictConfig) -> str:
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    name = config.algorithm.adv_estimator
    name = getattr(name, "value", name)
    if name not in ADV_ESTIMATOR_REGISTRY:
        raise KeyError(
            f"algorithm.adv_estimator={name!r} is not registered; registered: {sorted(ADV_ESTIMATOR_REGISTRY)}"
        )
    return f"{name!r} registered ({ADV_ESTIMATOR_REGISTRY[name].__module__})"


def _check_pad(config: DictConfig) -> str:
    from revisual_verl.pad.config import PadConfig, check_loss_agg_mode

    pad = PadConfig.from_algorithm(config.algorithm)
    check_loss_agg_mode(config.actor_rollout_ref.actor.loss_agg_mode)
    return (
        f"t_low={pad.t_low} t_high={pad.t_high} rho={pad.rho} tau {pad.tau_start}->{pad.tau_end} ({pad.tau_schedule})"
    )


def _check_presample(config: DictConfig) -> str:
    from revisual_verl.pad.trainer import PAD_TRAINER_MODE
    from revisual_verl.presample.config import PresampleConfig

    presample = PresampleConfig.from_algorithm(config.algorithm)
    if not presample.enable:
        return "off"
    from revisual_verl.presample.adapter import unsupported

    why_not = unsupported(config)
    if why_not:
        raise ValueError(f"algorithm.presample.enable=true cannot run with {why_not}")
    mode = config.trainer.v1.get("trainer_mode", None) if config.trainer.get("use_v1", False) else None
    if mode != PAD_TRAINER_MODE:
        raise ValueError(
            f"algorithm.presample.enable=true needs trainer.use_v1=true and trainer.v1.trainer_mode={PAD_TRAINER_MODE} "
            f"(got {mode!r}): only that trainer skips prompts before rollout"
        )
    return (
        f"on: easy >= {presample.easy_threshold}, hard <= {presample.hard_threshold}, "
        f"target uniform share {presample.target_uniform_share}, p_start {presample.p_start}"
    )


def _check_trainer_mode(config: DictConfig) -> str:
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    mode = config.trainer.v1.trainer_mode
    if mode not in TRAINER_REGISTRY:
        raise KeyError(f"trainer.v1.trainer_mode={mode!r} is not registered; registered: {sorted(TRAINER_REGISTRY)}")
    return f"{mode!r} -> {TRAINER_REGISTRY[mode].__name__}"


def _check_reward_manager(config: DictConfig) -> str:
    manager = config.reward.reward_manager
    if manager.source == "register":
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

        if manager.name not in REWARD_MANAGER:
            raise KeyError(
                f"reward.reward_manager.name={manager.name!r} is not in verl's reward-loop registry; "
                f"registered: {sorted(REWARD_MANAGER)}"
            )
        detail = f"{manager.name!r} registered ({REWARD_MANAGER[manager.name].__module__})"
        return detail + _check_reward_kwargs(config, REWARD_MANAGER[manager.name])
    if manager.source == "importlib":
        from verl.utils.import_utils import load_extern_object

        load_extern_object(manager.module.path, manager.name)
        return f"{manager.name} loaded from {manager.module.path}"
    raise ValueError(f"reward.reward_manager.source={manager.source!r}: expected 'register' or 'importlib'")


def _check_reward_kwargs(config: DictConfig, manager_cls: type) -> str:
    """Managers of this plugin read ``reward.reward_kwargs`` through ``settings_from_config(config)`` in
    their module; calling it here turns a misspelt key into a dry-run error instead of a worker crash."""
    module = importlib.import_module(manager_cls.__module__)
    read_settings = getattr(module, "settings_from_config", None)
    if read_settings is None:
        return ""
    settings = read_settings(config)
    return f"; reward_kwargs -> {settings}"


def _check_rl_dataset_class(config: DictConfig) -> str:
    from verl.utils.dataset.rl_dataset import RLHFDataset, get_dataset_class

    cls = get_dataset_class(config.data)
    if not issubclass(cls, RLHFDataset):
        # verl's workers call RLHFDataset class methods on the configured class.
        raise TypeError(f"{cls.__module__}.{cls.__name__} does not subclass verl's RLHFDataset")
    return f"{cls.__module__}.{cls.__name__}"


def _check_ppo_batches(config: DictConfig) -> str:
    """The mini-batch arithmetic verl's workers rely on, which validate_config skips under dynamic batch sizes."""
    actor, data = config.actor_rollout_ref.actor, config.data
    mini, prompts = actor.ppo_mini_batch_size, data.train_batch_size
    if mini > prompts:
        raise ValueError(f"actor_rollout_ref.actor.ppo_mini_batch_size={mini} > data.train_batch_size={prompts}")
    if prompts % mini:
        raise ValueError(
            f"data.train_batch_size={prompts} is not a multiple of actor_rollout_ref.actor.ppo_mini_batch_size={mini}"
        )
    world = int(config.trainer.nnodes) * int(config.trainer.n_gpus_per_node)
    sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    if world % sp:
        raise ValueError(f"{world} GPUs do not split into Ulysses groups of {sp} (ulysses_sequence_parallel_size)")
    responses = mini * config.actor_rollout_ref.rollout.n
    data_parallel = world // sp
    if responses < data_parallel:
        raise ValueError(f"a mini-batch of {responses} responses cannot feed {data_parallel} data-parallel ranks")
    # verl asserts this at the first update (verl/workers/engine_workers.py, train_mini_batch).
    if responses % data_parallel:
        raise ValueError(
            f"a mini-batch of {responses} responses (actor_rollout_ref.actor.ppo_mini_batch_size={mini} x "
            f"rollout.n={config.actor_rollout_ref.rollout.n}) does not divide over {data_parallel} data-parallel "
            f"ranks ({config.trainer.nnodes} node(s) x {config.trainer.n_gpus_per_node} GPUs / sequence parallel "
            f"{sp}); verl would stop at the first update"
        )
    return f"{prompts // mini} mini-batches of {responses} responses in a step's rollout"


def _check_optimizer_updates(config: DictConfig) -> str:
    """The most optimizer updates a step makes with the settings that act, and where stage 3's entropy
    warm-up (counted in updates) ends at that rate."""
    from revisual_verl.engine.settings import ACTOR_ENGINE_KEY, convert_engine_section
    from revisual_verl.pad.config import PadConfig
    from revisual_verl.pad.estimator import PAD_ESTIMATOR
    from revisual_verl.pad.updates import first_step_after_warmup, updates_per_step

    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    estimator = getattr(config.algorithm.adv_estimator, "value", config.algorithm.adv_estimator)
    pad_sync = config.trainer.get("use_v1", False) and config.trainer.v1.get("trainer_mode", None) == "pad_sync"
    pad = PadConfig.from_algorithm(config.algorithm) if estimator == PAD_ESTIMATOR else None
    count = updates_per_step(
        rollout_rows=int(config.data.train_batch_size) * int(rollout.n),
        mini_batch_rows=int(actor.ppo_mini_batch_size) * int(rollout.n),
        epochs=int(actor.get("ppo_epochs", 1) or 1),
        pad=pad,
        compact=bool(pad is not None and pad.compact and pad_sync),
    )
    text = f"at most {count.most} per step ({count.rule}: <= {count.rows} rows)"
    if count.varies:
        text += "; varies per step with PAD's effective set (metric pad/optimizer_updates)"
    section = OmegaConf.select(config, ACTOR_ENGINE_KEY, default=None)
    schedule = getattr(convert_engine_section(section, ACTOR_ENGINE_KEY), "entropy", None) if section else None
    if schedule is not None and schedule.schedule != "none":
        step = first_step_after_warmup(int(schedule.warmup_updates), count.most)
        later = ", later when PAD keeps fewer rows" if count.varies else ""
        text += f"; entropy warm-up of {schedule.warmup_updates} updates: bonus from step {step} at the earliest{later}"
    return text


def _check_rollout_parallelism(config: DictConfig) -> str:
    rollout = config.actor_rollout_ref.rollout
    replica = int(rollout.tensor_model_parallel_size) * int(rollout.get("pipeline_model_parallel_size", 1) or 1)
    replica *= int(rollout.get("data_parallel_size", 1) or 1)
    per_node = int(config.trainer.n_gpus_per_node)
    world = int(config.trainer.nnodes) * per_node
    if world % replica:
        raise ValueError(
            f"{world} GPUs (trainer.nnodes x trainer.n_gpus_per_node) do not split into rollout replicas of "
            f"{replica} GPUs (tensor x pipeline x data parallel)"
        )
    # A replica larger than a node spans whole nodes (verl/workers/rollout/replica.py asserts it).
    if replica % min(per_node, replica):
        raise ValueError(
            f"a rollout replica of {replica} GPUs does not fill whole nodes of {per_node} GPUs "
            "(trainer.n_gpus_per_node)"
        )
    return f"{world // replica} {rollout.name} replica(s) of {replica} GPU(s)"


def _check_kl_estimators(config: DictConfig) -> str:
    """Each configured KL estimator, run once through verl's own kl_penalty on a toy pair of log-probs."""
    import torch
    from verl.trainer.ppo.core_algos import kl_penalty

    used = {}
    if config.actor_rollout_ref.actor.use_kl_loss:
        used["actor_rollout_ref.actor.kl_loss_type"] = config.actor_rollout_ref.actor.kl_loss_type
    if config.algorithm.get("use_kl_in_reward", False):
        used["algorithm.kl_penalty"] = config.algorithm.kl_penalty
    for key, name in used.items():
        try:
            kl_penalty(torch.zeros(1, 2), torch.zeros(1, 2), kl_penalty=name)
        except (NotImplementedError, ValueError, KeyError) as error:
            raise ValueError(f"{key}={name!r} is not a KL estimator verl knows ({error})") from error
    return ", ".join(f"{k}={v}" for k, v in used.items()) or "no KL term"


def _check_engine_settings(config: DictConfig) -> str:
    """The start-up check revisual_verl.main_ppo runs: the actor's engine section converts (a bad
    value names its key), verl's actor.freeze_vision_tower is not ignored, the vendor is set; and
    Ray's runtime_env env_vars are strings."""
    from revisual_verl.engine.settings import RUNTIME_ENV_KEY, check_trainer_config, runtime_env_vars

    for name, value in runtime_env_vars(config).items():
        if not isinstance(value, str):
            raise TypeError(f"{RUNTIME_ENV_KEY}.{name}={value!r}: Ray needs a string; quote it")
    return check_trainer_config(config).summary()


def _check_sft_engine_settings(config: DictConfig, sets_vendor: bool) -> str:
    from revisual_verl.engine.settings import ENGINE_VENDOR, VENDOR_ENV, check_sft_config

    environ = dict(os.environ)
    if sets_vendor:
        environ.setdefault(VENDOR_ENV, ENGINE_VENDOR)
    return check_sft_config(config, environ).summary()


def _check_plugin() -> str:
    # verl swallows plugin import errors; importing the plugin module here surfaces them.
    plugin = importlib.import_module("revisual_verl.plugin")
    registered = plugin.registered() if hasattr(plugin, "registered") else {}
    return ", ".join(f"{k}={v}" for k, v in registered.items())


def _resolved(report: Report, config: DictConfig) -> DictConfig | None:
    """The config with every interpolation resolved, or None (and a failed check) when one does not."""
    resolved = None

    def resolve():
        nonlocal resolved
        resolved = OmegaConf.create(OmegaConf.to_container(config, resolve=True))
        return "every ${...} interpolation resolves"

    report.check("config resolves", resolve)
    return resolved


def validate_ppo(config: DictConfig, *, require_images: bool) -> Report:
    """Everything verl checks or converts before its first rollout, minus what needs GPUs."""
    report = Report()
    report.check("revisual_verl plugin loads", _check_plugin)

    resolved = _resolved(report, config)
    if resolved is None:
        return report

    def verl_validate():
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import validate_config

        with _quiet_warnings():
            use_ref, use_critic = need_reference_policy(resolved), need_critic(resolved)
            validate_config(config=resolved, use_reference_policy=use_ref, use_critic=use_critic)
        return f"reference policy {'on' if use_ref else 'off'}, critic {'on' if use_critic else 'off'}"

    report.check("verl validate_config (incl. actor -> ActorConfig)", verl_validate)
    report.check("PPO mini-batches", lambda: _check_ppo_batches(resolved))
    report.check("optimizer updates", lambda: _check_optimizer_updates(resolved))
    report.check("rollout parallelism", lambda: _check_rollout_parallelism(resolved))
    report.check("KL estimators", lambda: _check_kl_estimators(resolved))
    report.check("actor_rollout_ref.rollout -> dataclass", _convert(resolved, "actor_rollout_ref.rollout"))
    report.check(
        "actor_rollout_ref.rollout.checkpoint_engine -> dataclass",
        _convert(resolved, "actor_rollout_ref.rollout.checkpoint_engine"),
    )
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    with _quiet_warnings():
        if need_reference_policy(resolved):
            report.check("actor_rollout_ref.ref -> dataclass", lambda: _convert_ref(resolved))
        if need_critic(resolved):
            report.check("critic -> dataclass", _convert(resolved, "critic"))
    report.check("distillation -> dataclass", _convert(resolved, "distillation"))
    report.check("algorithm (less pad, presample) -> AlgoConfig", lambda: _convert_algorithm(resolved))
    report.check("algorithm.adv_estimator", lambda: _check_adv_estimator(resolved))
    if getattr(resolved.algorithm.adv_estimator, "value", resolved.algorithm.adv_estimator) == "pad":
        report.check("algorithm.pad", lambda: _check_pad(resolved))
    report.check("algorithm.presample", lambda: _check_presample(resolved))
    if resolved.trainer.get("use_v1", False):
        report.check("trainer.v1.trainer_mode", lambda: _check_trainer_mode(resolved))
    report.check("reward.reward_manager", lambda: _check_reward_manager(resolved))
    report.check("data.custom_cls (dataset class)", lambda: _check_rl_dataset_class(resolved))
    report.check("engine settings (actor_rollout_ref.actor.fsdp_config)", lambda: _check_engine_settings(config))

    data = resolved.data
    required = [data.prompt_key, data.reward_fn_key, "reward_model"]
    images = "required" if require_images else "unexpected"
    check_data(report, data, "train_files", required, data.train_batch_size, images)
    check_data(report, data, "val_files", required, None, images)
    check_model(report, resolved.actor_rollout_ref.model, "actor_rollout_ref.model", needs_processor=require_images)
    return report


def validate_sft(config: DictConfig, *, sets_vendor: bool = False) -> Report:
    """What verl's SFT trainer converts and checks in its constructor, minus the process group.

    ``sets_vendor``: the entry point sets VERL_ENGINE_VENDOR=revisual itself (the plugin's SFT entries).
    """
    report = Report()
    resolved = _resolved(report, config)
    if resolved is None:
        return report
    for key in ("engine", "optim", "checkpoint", "profiler"):
        report.check(f"{key} -> dataclass", _convert(resolved, key))
    report.check("engine settings (engine)", lambda: _check_sft_engine_settings(config, sets_vendor))

    def batch_sizes():
        data, trainer = resolved.data, resolved.trainer
        world = int(trainer.nnodes) * int(trainer.n_gpus_per_node)
        sp = int(resolved.engine.get("ulysses_sequence_parallel_size", 1) or 1)
        if world % sp:
            raise ValueError(f"nnodes*n_gpus_per_node={world} is not divisible by ulysses_sequence_parallel_size={sp}")
        dp = world // sp
        if data.train_batch_size % dp:
            raise ValueError(
                f"data.train_batch_size={data.train_batch_size} is not divisible by the {dp} data-parallel ranks"
            )
        per_rank = data.train_batch_size // dp
        if not data.use_dynamic_bsz:
            if per_rank % data.micro_batch_size_per_gpu:
                raise ValueError(
                    f"per-rank batch {per_rank} is not a multiple of data.micro_batch_size_per_gpu="
                    f"{data.micro_batch_size_per_gpu}"
                )
            accumulation = per_rank // data.micro_batch_size_per_gpu
            return f"{dp} data-parallel ranks x {per_rank} sequences, gradient accumulation {accumulation}"
        if data.max_token_len_per_gpu < data.max_length:
            raise ValueError(
                f"data.max_token_len_per_gpu={data.max_token_len_per_gpu} < data.max_length={data.max_length}: "
                "a full-length sequence would not fit a micro-batch"
            )
        return f"{dp} data-parallel ranks x {per_rank} sequences, dynamic micro-batches"

    report.check("batch sizes", batch_sizes)

    def truncation():
        if resolved.data.truncation not in ("error", "left", "right"):
            raise ValueError(f"data.truncation={resolved.data.truncation!r}: expected error, left or right")
        return f"max_length {resolved.data.max_length}, truncation {resolved.data.truncation}"

    report.check("data.max_length / truncation", truncation)
    if resolved.data.custom_cls.get("path"):

        def custom_cls():
            from verl.utils.import_utils import load_extern_object

            cls = load_extern_object(resolved.data.custom_cls.path, resolved.data.custom_cls.name)
            return f"{cls.__module__}.{cls.__name__}"

        report.check("data.custom_cls (dataset class)", custom_cls)
    check_data(report, resolved.data, "train_files", [resolved.data.messages_key], resolved.data.train_batch_size)
    check_data(report, resolved.data, "val_files", [resolved.data.messages_key], None)
    check_model(report, resolved.model, "model")
    return report


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
