"""Masking PAD's dropped rows is exactly training on the selected rows, in verl's own actor loss."""

import numpy as np
import pytest
import torch
from helpers.plugin_config import compose_plugin_config
from tensordict import TensorDict
from transformers import Qwen2Config, Qwen2ForCausalLM
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.utils import tensordict_utils as tu
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.utils.losses import ppo_loss

from revisual_verl.pad.estimator import pop_latest_result, set_progress

GROUPS, N = 4, 4
VOCAB = 48


@pytest.fixture(scope="module")
def actor_config():
    overrides = [
        "data.train_batch_size=4",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16",
    ]
    cfg = compose_plugin_config(overrides=overrides)
    return cfg, omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


@pytest.fixture(scope="module")
def rollout():
    """Prompts and responses of GROUPS x N rows with binary rewards; group 0 all right (stagnant)."""
    gen = torch.Generator().manual_seed(0)
    rows = GROUPS * N
    prompt_lens = torch.randint(3, 6, (rows,), generator=gen)
    response_lens = torch.randint(2, 9, (rows,), generator=gen)
    prompts = [torch.randint(1, VOCAB, (int(n),), generator=gen) for n in prompt_lens]
    responses = [torch.randint(1, VOCAB, (int(n),), generator=gen) for n in response_lens]
    scores = torch.tensor([1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1], dtype=torch.float32)
    return prompts, responses, scores


def tiny_model():
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return Qwen2ForCausalLM(config).float()


def pad_selection(rollout, rho, *extra):
    prompts, responses, scores = rollout
    rows = len(responses)
    width = max(len(r) for r in responses)
    lens = torch.tensor([len(r) for r in responses])
    mask = (torch.arange(width)[None] < lens[:, None]).long()
    rewards = torch.zeros(rows, width)
    rewards[torch.arange(rows), lens - 1] = scores
    data = DataProto(
        batch=TensorDict({"token_level_rewards": rewards, "response_mask": mask}, batch_size=rows),
        non_tensor_batch={"uid": np.array([f"u{i // N}" for i in range(rows)], dtype=object)},
    )
    original_mask = mask.clone()
    algo_root = compose_algorithm(rho, *extra)
    set_progress(0, 1)
    out = compute_advantage(data, adv_estimator="pad", num_repeat=N, config=algo_root.algorithm)
    pad_selection.last_weights = pop_latest_result().weights
    return out.batch["advantages"], original_mask, out.batch["response_mask"], pad_selection.last_weights > 0


def compose_algorithm(rho, *extra):
    return compose_plugin_config(overrides=[f"algorithm.pad.rho={rho}", *extra])


def verl_actor_loss(model, config, rollout, rows, advantages, response_mask, loss_mask):
    """verl's ppo_loss on rows ``rows`` of the rollout, as the v1 engine feeds it one micro-batch."""
    prompts, responses, _ = rollout
    log_probs, embeds = [], []
    for i in rows:
        ids = torch.cat([prompts[i], responses[i]])
        emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=emb[None]).logits[0]
        token_lp = torch.log_softmax(logits[:-1], -1).gather(-1, ids[1:, None])[:, 0]
        log_probs.append(torch.cat([token_lp, token_lp.new_zeros(1)]))
        embeds.append(emb)

    def nested(tensors):
        return torch.nested.as_nested_tensor(tensors, layout=torch.jagged)

    resp_mask = nested([response_mask[i, : len(responses[i])] for i in rows])
    flat_lp = torch.cat(log_probs)
    old = []
    for i, lp in zip(rows, log_probs, strict=True):
        r = len(responses[i])
        old.append(lp[-r - 1 : -1].detach() + 0.05 * torch.cos(torch.arange(r, dtype=torch.float32) + i))
    data = TensorDict(
        {
            "prompts": nested([prompts[i] for i in rows]),
            "responses": nested([responses[i] for i in rows]),
            "response_mask": resp_mask,
            "old_log_probs": nested(old),
            "advantages": nested([advantages[i, : len(responses[i])] for i in rows]),
        },
        batch_size=len(rows),
    )
    # The engine sums loss_mask over the global mini-batch for the token-mean denominator.
    num_tokens = int(sum(loss_mask[i, : len(responses[i])].sum() for i in rows))
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=num_tokens, global_batch_size=len(rows))
    loss, _ = ppo_loss(config, {"log_probs": flat_lp}, data)
    loss.backward()
    return loss.detach(), {i: e.grad for i, e in zip(rows, embeds, strict=True)}


@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_masked_batch_equals_sliced_batch_and_dropped_rows_get_zero_gradient(actor_config, rollout, rho):
    _, config = actor_config
    advantages, original_mask, pad_mask, keep = pad_selection(rollout, rho)
    assert 0 < int(keep.sum()) < len(keep)
    all_rows = list(range(len(keep)))
    selected = [i for i in all_rows if keep[i]]

    masked_model = tiny_model()
    masked_loss, masked_row_grads = verl_actor_loss(
        masked_model, config, rollout, all_rows, advantages, pad_mask, loss_mask=pad_mask
    )
    sliced_model = tiny_model()
    sliced_loss, sliced_row_grads = verl_actor_loss(
        sliced_model, config, rollout, selected, advantages, original_mask, loss_mask=original_mask
    )

    torch.testing.assert_close(masked_loss, sliced_loss, rtol=1e-6, atol=1e-8)
    for (name, p_masked), (_, p_sliced) in zip(
        masked_model.named_parameters(), sliced_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p_masked.grad, p_sliced.grad, rtol=1e-5, atol=1e-8, msg=name)
    for i in all_rows:
        if keep[i]:
            assert torch.count_nonzero(masked_row_grads[i]) > 0
            torch.testing.assert_close(masked_row_grads[i], sliced_row_grads[i], rtol=1e-5, atol=1e-8)
        else:
            assert torch.count_nonzero(masked_row_grads[i]) == 0


def test_without_mask_write_back_dropped_rows_dilute_the_loss(actor_config, rollout):
    # What verl's plain v1 trainer does: zero advantages but masks left as rolled out.
    _, config = actor_config
    advantages, original_mask, pad_mask, keep = pad_selection(rollout, 1.0)
    rows = list(range(len(keep)))
    diluted, _ = verl_actor_loss(tiny_model(), config, rollout, rows, advantages, original_mask, original_mask)
    exact, _ = verl_actor_loss(tiny_model(), config, rollout, rows, advantages, pad_mask, pad_mask)
    assert not torch.allclose(diluted, exact)
    ratio = float(pad_mask.sum()) / float(original_mask.sum())
    torch.testing.assert_close(diluted, exact * ratio, rtol=1e-5, atol=1e-8)


def test_with_replacement_the_weighted_masks_equal_the_duplicated_batch(actor_config, rollout):
    # What pad_sync stores for a draw with replacement: response_mask 0/1, loss_mask = multiplicity,
    # advantages scaled by it. verl's loss must then equal training on each drawn row m times.
    _, config = actor_config
    advantages, original_mask, pad_mask, keep = pad_selection(rollout, 1.5, "algorithm.pad.replacement=true")
    weights = pad_selection.last_weights.long()
    assert weights.max() > 1
    all_rows = list(range(len(keep)))
    loss_mask = pad_mask * weights[:, None]
    weighted_model = tiny_model()
    weighted_loss, _ = verl_actor_loss(weighted_model, config, rollout, all_rows, advantages, pad_mask, loss_mask)

    duplicated = [i for i in all_rows for _ in range(int(weights[i]))]
    one_draw_adv = torch.where(keep[:, None], advantages / weights.clamp(min=1)[:, None], advantages)
    duplicated_model = tiny_model()
    duplicated_loss, _ = verl_actor_loss(
        duplicated_model, config, rollout, duplicated, one_draw_adv, original_mask, original_mask
    )
    torch.testing.assert_close(weighted_loss, duplicated_loss, rtol=1e-5, atol=1e-7)
    for p_w, p_d in zip(weighted_model.parameters(), duplicated_model.parameters(), strict=True):
        torch.testing.assert_close(p_w.grad, p_d.grad, rtol=1e-4, atol=1e-7)
