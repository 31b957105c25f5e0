"""The reward manager through verl's own loading path, on DataProtos shaped like the reward loop's."""

import asyncio
import dataclasses

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from revisual_verl.reward.accuracy import usable_cpus
from revisual_verl.reward.length import efficient_length_reward
from revisual_verl.reward.metrics import REWARD_EXTRA_KEYS
from revisual_verl.reward.settings import RewardSettings

GOOD = "<think>3 * 4 = 12</think> The answer is \\boxed{\\dfrac{24}{2}}."


def verl_config(**reward_kwargs):
    overrides = ["reward.reward_manager.name=revisual", "reward.num_workers=1"]
    overrides += [f"+reward.reward_kwargs.{key}={value}" for key, value in reward_kwargs.items()]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def streamed_item(tokenizer, response: str, ground_truth, prompt: str = "What is 3 * 4?"):
    """One rollout as verl's agent loop sends it to a reward worker: unpadded, all-ones mask."""
    from verl import DataProto

    prompt_ids = torch.tensor(tokenizer.encode(prompt), dtype=torch.int64)
    response_ids = torch.tensor(tokenizer.encode(response), dtype=torch.int64)
    input_ids = torch.cat([prompt_ids, response_ids])
    batch = {
        "prompts": prompt_ids[None],
        "responses": response_ids[None],
        "input_ids": input_ids[None],
        "attention_mask": torch.ones_like(input_ids)[None],
        "position_ids": torch.arange(len(input_ids))[None],
    }
    non_tensor = {
        "data_source": np.array(["mmrl"], dtype=object),
        "reward_model": np.array([{"style": "rule", "ground_truth": ground_truth}], dtype=object),
        "extra_info": np.array([{"index": 0}], dtype=object),
        "__num_turns__": np.array([2]),
        "tool_extra_fields": np.array([{}], dtype=object),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor), len(response_ids)


def padded_batch(tokenizer, responses: list[str], ground_truths: list, prompt_width=16, response_width=64):
    """Rows as verl's RewardLoopManager batches them: left-padded prompts, right-padded responses."""
    from verl import DataProto

    pad = tokenizer.pad_token_id
    prompts, resps, masks = [], [], []
    for response in responses:
        p = tokenizer.encode("What is 3 * 4?")[-prompt_width:]
        r = tokenizer.encode(response)[:response_width]
        prompts.append([pad] * (prompt_width - len(p)) + p)
        resps.append(r + [pad] * (response_width - len(r)))
        masks.append([0] * (prompt_width - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (response_width - len(r)))
    prompts_t, responses_t = torch.tensor(prompts), torch.tensor(resps)
    batch = {
        "prompts": prompts_t,
        "responses": responses_t,
        "input_ids": torch.cat([prompts_t, responses_t], dim=1),
        "attention_mask": torch.tensor(masks),
    }
    non_tensor = {
        "data_source": np.array(["mmrl"] * len(responses), dtype=object),
        "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in ground_truths], dtype=object),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def load_through_verl(config, tokenizer):
    from verl.trainer.ppo.reward import load_reward_manager

    return load_reward_manager(config, tokenizer)


def test_verl_loads_the_manager_by_name_with_settings_from_reward_kwargs(tiny_tokenizer):
    from revisual_verl.reward.manager import RevisualRewardManager

    manager = load_through_verl(verl_config(length_budget=64, format_weight=0.1, accuracy_weight=0.8), tiny_tokenizer)
    assert isinstance(manager, RevisualRewardManager)
    expected = RewardSettings(length_budget=64, format_weight=0.1, accuracy_weight=0.8)
    # workers: null becomes this process's share of the CPUs (one reward worker here: all of them).
    assert manager.settings == dataclasses.replace(expected, workers=usable_cpus())


def test_run_single_scores_a_streamed_rollout(tiny_tokenizer):
    manager = load_through_verl(verl_config(length_budget=40), tiny_tokenizer)
    data, num_tokens = streamed_item(tiny_tokenizer, GOOD, "12")
    result = asyncio.run(manager.run_single(data))
    length = efficient_length_reward(num_tokens, 40)
    assert 0 < length < 1  # the budget is chosen so the length term is neither clipped at 0 nor at 1
    assert result["reward_score"] == pytest.approx(0.9 + 0.05 + 0.05 * length)
    info = result["reward_extra_info"]
    assert tuple(info) == REWARD_EXTRA_KEYS
    assert info["data_source"] == "mmrl"
    assert info["num_tokens"] == num_tokens
    assert (info["acc"], info["format"], info["timed_out"], info["bad_ground_truth"]) == (1.0, 1.0, 0, 0)
    assert info["length_reward"] == pytest.approx(length)


def test_an_empty_response_scores_zero(tiny_tokenizer):
    # A rollout that returns no token: no answer, no format, and no length bonus for saying nothing.
    manager = load_through_verl(verl_config(length_budget=40), tiny_tokenizer)
    data = padded_batch(tiny_tokenizer, ["", GOOD], ["12", "12"])
    empty, good = (asyncio.run(manager.run_single(data[i : i + 1])) for i in range(2))
    assert empty["reward_extra_info"]["num_tokens"] == 0
    assert empty["reward_score"] == 0.0
    assert good["reward_score"] > 0.9


def test_run_single_counts_tokens_from_the_attention_mask(tiny_tokenizer):
    manager = load_through_verl(verl_config(length_budget=40), tiny_tokenizer)
    texts = [GOOD, "<think>hmm</think> \\boxed{13}", "I give up"]
    data = padded_batch(tiny_tokenizer, texts, ["12", "12", "12"])
    results = [asyncio.run(manager.run_single(data[i : i + 1])) for i in range(len(texts))]
    assert [r["reward_extra_info"]["num_tokens"] for r in results] == [len(tiny_tokenizer.encode(t)) for t in texts]
    assert [r["reward_extra_info"]["acc"] for r in results] == [1.0, 0.0, 0.0]
    assert [r["reward_extra_info"]["format"] for r in results] == [1.0, 1.0, 0.0]
    # pred is what verl's maj@N votes on: the extracted answer, "" (a vote for "no answer") when none was given.
    assert [r["reward_extra_info"]["pred"] for r in results] == ["\\dfrac{24}{2}", "13", ""]


def test_run_single_survives_hostile_output_and_broken_ground_truth(tiny_tokenizer, tmp_path):
    manager = load_through_verl(verl_config(timeout_s=0.05), tiny_tokenizer)
    sentinel = tmp_path / "ran"
    cases = [
        ("<think>x</think> \\boxed{\\int_0^{1} x^{17} \\sin(x)^{9} dx + \\sqrt{12}}", "\\sqrt{3}"),  # > 50 ms in sympy
        (f"<think>x</think> \\boxed{{__import__('os').system('touch {sentinel}')}}", "12"),
        ("<think>x</think> \\boxed{(10^{100})!}", "12"),
        ("\\boxed{" * 500, "12"),
        (GOOD, None),
    ]

    async def score_all():
        items = [streamed_item(tiny_tokenizer, text, gt)[0] for text, gt in cases]
        return await asyncio.wait_for(asyncio.gather(*(manager.run_single(i) for i in items)), timeout=60)

    results = asyncio.run(score_all())
    assert not sentinel.exists()
    assert [r["reward_score"] for r in results[:1]] == [0.0]  # a timed-out check scores 0 outright
    assert results[0]["reward_extra_info"]["timed_out"] == 1
    assert [r["reward_extra_info"]["acc"] for r in results] == [0.0] * 5
    assert [r["reward_extra_info"]["timed_out"] for r in results[2:]] == [0] * 3  # decided without the parser
    assert results[4]["reward_extra_info"]["bad_ground_truth"] == 1
    assert all(tuple(r["reward_extra_info"]) == REWARD_EXTRA_KEYS for r in results)


def test_run_single_scores_a_ground_truth_no_string_or_float_can_hold(tiny_tokenizer):
    manager = load_through_verl(verl_config(), tiny_tokenizer)
    huge = 10**5000  # str() refuses it (Python's int digit limit); 10**400 would overflow math.isfinite

    async def score_both():
        items = [streamed_item(tiny_tokenizer, GOOD, gt)[0] for gt in (huge, 10**400)]
        return await asyncio.gather(*(manager.run_single(item) for item in items))

    unusable, too_big_for_a_float = asyncio.run(score_both())
    assert unusable["reward_extra_info"]["bad_ground_truth"] == 1 and unusable["reward_extra_info"]["acc"] == 0
    assert too_big_for_a_float["reward_extra_info"]["bad_ground_truth"] == 0


def test_a_bad_reward_kwarg_is_an_error_naming_it(tiny_tokenizer):
    with pytest.raises(ValueError, match="length_budgt"):
        load_through_verl(verl_config(length_budgt=10), tiny_tokenizer)
    with pytest.raises(ValueError, match="<= 1"):
        load_through_verl(verl_config(accuracy_weight=0.9, length_weight=0.5), tiny_tokenizer)
    with pytest.raises(ValueError, match="timeout_s must be a finite number"):
        load_through_verl(verl_config(timeout_s="nan"), tiny_tokenizer)


def test_verl_reward_loop_in_ray_actors_scores_a_batch(ray_local, tiny_tokenizer, tiny_tokenizer_dir):
    """verl's RewardLoopManager starts RewardLoopWorker actors, which load the manager and score through it."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    config = verl_config(length_budget=40, timeout_s=2.0)
    with open_dict(config):
        config.actor_rollout_ref.model.path = str(tiny_tokenizer_dir)
    texts = [GOOD, "<think>x</think> \\boxed{(10^{100})!}", "<think>x</think> \\boxed{\\sqrt{144}}", "nothing"]
    data = padded_batch(tiny_tokenizer, texts, ["12"] * 4)
    manager = RewardLoopManager(config)
    try:
        output = manager.compute_rm_score(data)
    finally:
        for worker in manager.reward_loop_workers:
            ray_local.kill(worker)
    rm_scores = output.batch["rm_scores"]
    last = data.batch["attention_mask"][:, 16:].sum(-1) - 1
    scores = rm_scores[torch.arange(4), last]
    assert rm_scores.sum(-1).tolist() == pytest.approx(scores.tolist())  # one reward, on the last response token
    assert scores[0] > 0.9 and scores[2] > 0.9 and scores[1] < 0.1 and scores[3] < 0.1
    assert set(REWARD_EXTRA_KEYS) <= set(output.meta_info["reward_extra_keys"])
    assert output.non_tensor_batch["acc"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert output.non_tensor_batch["symbolic"].tolist()[2] == 1  # sqrt(144) needed the parser, inside the actor
