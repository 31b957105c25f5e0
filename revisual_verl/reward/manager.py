"""verl adapter: reward manager ``revisual`` in verl's reward-loop registry.

Select it with ``reward.reward_manager.name=revisual``; settings come from ``reward.reward_kwargs``
(see :class:`~revisual_verl.reward.settings.RewardSettings`). verl's ``compute_score`` (the default or a
``reward.custom_reward_function``) is not used: the accuracy check is this plugin's own. A row's
``extra_info["choices"]`` (the options of a multiple-choice row, as ``revisual-data prepare eval`` writes them) lets
a response answer with the right option's letter or its text (:mod:`revisual_verl.reward.choices`).
"""

import asyncio
import dataclasses

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from revisual_verl.reward.accuracy import usable_cpus
from revisual_verl.reward.composite import breakdown, checker_for
from revisual_verl.reward.pool_size import pool_processes, ray_cpu_nodes
from revisual_verl.reward.settings import RewardSettings

MANAGER_NAME = "revisual"


def settings_from_config(config) -> RewardSettings:
    """Read ``reward.reward_kwargs`` from the trainer config (absent section = defaults)."""
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = reward.get("reward_kwargs") if reward is not None else None
    return RewardSettings.from_mapping(kwargs)


def sized_for_node(settings: RewardSettings, config) -> RewardSettings:
    """``settings`` with ``workers`` set to this reward worker's share of the node's CPUs
    (:mod:`revisual_verl.reward.pool_size`), from verl's ``reward.num_workers`` and the Ray cluster."""
    reward = config.get("reward") if hasattr(config, "get") else None
    reward_workers = int((reward.get("num_workers", 1) if reward is not None else 1) or 1)
    workers = pool_processes(usable_cpus(), reward_workers, ray_cpu_nodes(), settings.workers)
    return dataclasses.replace(settings, workers=workers)


@register(MANAGER_NAME)
class RevisualRewardManager(RewardManagerBase):
    """Accuracy + format + efficient-length reward; response length counted from the attention mask."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        self.settings = sized_for_node(settings_from_config(config), config)
        self.checker = checker_for(self.settings)

    def _read_item(self, data: DataProto) -> tuple[str, int, object, object, str]:
        """(decoded response, its token count, ground truth, choices, data source) of the row to score; runs in an
        executor thread. ``choices`` is None for a row without options."""
        item = data[-1:][0]  # multi-sequence outputs are scored on their last sequence, as verl's managers do
        response_ids = item.batch["responses"]
        response_width = response_ids.shape[-1]
        num_tokens = int(item.batch["attention_mask"][-response_width:].sum())
        text = self.tokenizer.decode(response_ids[:num_tokens], skip_special_tokens=True)
        reward_model = item.non_tensor_batch.get("reward_model")
        ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        extra_info = item.non_tensor_batch.get("extra_info")
        choices = extra_info.get("choices") if isinstance(extra_info, dict) else None
        source = item.non_tensor_batch.get("data_source")
        return text, num_tokens, ground_truth, choices, source if isinstance(source, str) else "unknown"

    async def run_single(self, data: DataProto) -> dict:
        # Row slicing, the token count and decoding all run in the executor: verl starts every request of a batch
        # in one turn of the event loop, so work done here before the first await would add up across the batch.
        # The running loop, not the one captured at construction: callers may construct and score on different loops.
        read = await asyncio.get_running_loop().run_in_executor(None, self._read_item, data)
        text, num_tokens, ground_truth, choices, source = read
        verdict = await self.checker.check_async(text, ground_truth, choices)
        result = breakdown(text, num_tokens, verdict, self.settings)
        # The row's data source beside acc and pred: verl's dump of validation generations
        # (trainer.validation_data_dir) keeps only the reward's extra info, and the evaluation report groups by it.
        return {"reward_score": result.score, "reward_extra_info": {**result.extra_info(), "data_source": source}}
