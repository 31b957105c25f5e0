"""revisual_verl.engine.entropy: the schedule's values and validation, and the scheduled coefficient reaching
verl's own ppo_loss, with the update count read from the optimizer."""

import functools
import math

import pytest
import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.config import FSDPActorConfig
from verl.workers.utils.losses import ppo_loss

from revisual_verl.engine.entropy import EntropySchedule, entropy_coeff_at, optimizer_updates_taken, with_entropy_coeff


def test_zero_during_warmup_then_beta0_at_warmup():
    assert [entropy_coeff_at(u) for u in (0, 1, 70, 139)] == [0.0, 0.0, 0.0, 0.0]
    assert entropy_coeff_at(140) == 0.02


def test_geometric_decay_matches_the_papers_iteration():
    # beta <- max(beta_min, beta * lambda) once per update, started at beta0 on update u_w.
    beta, iterated = 0.02, {}
    for u in range(140, 600):
        iterated[u] = beta
        beta = max(0.0, beta * 0.985)
    for u, expected in iterated.items():
        assert math.isclose(entropy_coeff_at(u), expected, rel_tol=1e-12), u
    assert math.isclose(entropy_coeff_at(141), 0.02 * 0.985)
    assert math.isclose(entropy_coeff_at(240), 0.02 * 0.985**100)


def test_floor_holds_once_reached():
    kw = {"warmup_updates": 2, "beta0": 0.1, "beta_min": 0.03, "decay": 0.5}
    assert [entropy_coeff_at(u, **kw) for u in range(7)] == [0.0, 0.0, 0.1, 0.05, 0.03, 0.03, 0.03]
    # decay ** k underflows for very long runs; the floor (here 0) is still returned, no error.
    assert entropy_coeff_at(10**7) == 0.0


def test_linear_variant_reaches_beta_min_and_stays():
    kw = {"schedule": "linear", "warmup_updates": 10, "beta0": 0.02, "beta_min": 0.004, "linear_updates": 4}
    values = [entropy_coeff_at(u, **kw) for u in range(8, 17)]
    expected = [0.0, 0.0, 0.02, 0.016, 0.012, 0.008, 0.004, 0.004, 0.004]
    assert all(math.isclose(a, b, abs_tol=1e-15) for a, b in zip(values, expected)), values


def test_constant_variant_and_no_warmup():
    assert entropy_coeff_at(0, schedule="constant", warmup_updates=0, beta0=0.01) == 0.01
    assert entropy_coeff_at(500, schedule="constant", warmup_updates=0, beta0=0.01) == 0.01
    assert entropy_coeff_at(0, warmup_updates=0) == 0.02


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"schedule": "cosine"}, "schedule"),
        ({"beta0": -0.1}, "beta0"),
        ({"beta0": float("nan")}, "beta0"),
        ({"beta_min": 0.5}, "beta_min"),
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.5}, "decay"),
        ({"warmup_updates": -1}, "warmup_updates"),
        ({"warmup_updates": 1.5}, "warmup_updates"),
        ({"schedule": "linear"}, "linear_updates"),
        ({"schedule": "linear", "linear_updates": 0}, "linear_updates"),
    ],
)
def test_bad_settings_name_the_field(kwargs, key):
    with pytest.raises(ValueError, match=key):
        EntropySchedule(**kwargs)


@pytest.mark.parametrize("update", [-1, 2.0, True, None])
def test_bad_update_count(update):
    with pytest.raises(ValueError, match="update"):
        EntropySchedule().at(update)


PROMPT, RESPONSE, BATCH = 3, 5, 4


def actor_loss(entropy_coeff=0.0):
    config = FSDPActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=2, entropy_coeff=entropy_coeff)
    return functools.partial(ppo_loss, config=config)


def loss_inputs(seed=0):
    """What the FSDP engine hands the loss: packed log-probs/entropy and the rollout fields."""
    gen = torch.Generator().manual_seed(seed)
    attention_mask = torch.ones(BATCH, PROMPT + RESPONSE, dtype=torch.long)
    attention_mask[2, PROMPT + 3 :] = 0
    response_mask = attention_mask[:, PROMPT:]
    tokens = int(attention_mask.sum())
    model_output = {
        "log_probs": -torch.rand(tokens, generator=gen) * 3,
        "entropy": torch.rand(tokens, generator=gen) * 2,
    }
    data = TensorDict(
        {
            "prompts": torch.zeros(BATCH, PROMPT, dtype=torch.long),
            "responses": torch.zeros(BATCH, RESPONSE, dtype=torch.long),
            "attention_mask": attention_mask,
            "response_mask": response_mask,
            "old_log_probs": -torch.rand(BATCH, RESPONSE, generator=gen) * 3,
            "advantages": torch.randn(BATCH, RESPONSE, generator=gen),
        },
        batch_size=[BATCH],
    )
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=int(response_mask.sum()), global_batch_size=BATCH)
    return model_output, data


def run(loss_fn, seed=0):
    model_output, data = loss_inputs(seed)
    loss, metrics = loss_fn(model_output=model_output, data=data, dp_group=None)
    return float(loss), metrics


@pytest.mark.parametrize("update", [0, 139, 140, 141, 300, 2000])
def test_entropy_term_in_ppo_loss_follows_the_schedule(update):
    schedule = EntropySchedule()  # Table 5
    base = actor_loss(entropy_coeff=0.0)
    scheduled = with_entropy_coeff(base, schedule.at(update))
    loss, metrics = run(scheduled)
    plain, plain_metrics = run(base)
    entropy_loss = float(metrics["actor/entropy_loss"].aggregate())
    assert entropy_loss > 0.1
    # ppo_loss: policy_loss = pg_loss - entropy_coeff * entropy_loss; pg_loss is unchanged.
    assert math.isclose(float(metrics["actor/pg_loss"].aggregate()), float(plain_metrics["actor/pg_loss"].aggregate()))
    assert math.isclose(plain - loss, schedule.at(update) * entropy_loss, rel_tol=1e-4, abs_tol=1e-6)  # float32 loss
    assert scheduled.keywords["config"].entropy_coeff == schedule.at(update)


def test_worker_config_is_never_mutated():
    base = actor_loss(entropy_coeff=0.0)
    scheduled = with_entropy_coeff(base, 0.02)
    assert base.keywords["config"].entropy_coeff == 0.0
    assert scheduled.keywords["config"] is not base.keywords["config"]
    # Same coefficient: verl's own partial is passed through untouched.
    assert with_entropy_coeff(base, 0.0) is base
    # The copy shares the mutable global batch info that ppo_loss fills in per micro-batch.
    assert scheduled.keywords["config"].global_batch_info is base.keywords["config"].global_batch_info


def test_loss_without_a_config_keyword_is_refused():
    with pytest.raises(TypeError, match="config="):
        with_entropy_coeff(lambda **kw: None, 0.02)
    with pytest.raises(TypeError, match="entropy_coeff"):
        with_entropy_coeff(functools.partial(ppo_loss, config={"entropy_coeff": 0.0}), 0.02)


def test_update_count_is_adamws_step_and_survives_a_state_dict_round_trip():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01)
    assert optimizer_updates_taken(optimizer) == 0
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
    assert optimizer_updates_taken(optimizer) == 3

    resumed_model = torch.nn.Linear(3, 2)
    resumed = torch.optim.AdamW(resumed_model.parameters(), lr=0.1)
    assert optimizer_updates_taken(resumed) == 0
    resumed.load_state_dict(optimizer.state_dict())
    assert optimizer_updates_taken(resumed) == 3


def test_update_count_ignores_a_skipped_step_and_reports_optimizers_without_step():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    optimizer.zero_grad()  # what verl does instead of stepping when the grad norm is not finite
    assert optimizer_updates_taken(optimizer) == 1

    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    sgd.step()
    assert optimizer_updates_taken(sgd) is None  # SGD keeps momentum but no step count
