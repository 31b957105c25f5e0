"""Algorithm 1 (SPEC section 2) on the pure selection functions."""

import itertools
import math
import subprocess
import sys

import pytest
import torch

from revisual_verl.pad.selection import num_to_draw, pad_select, pad_select_detailed, pad_tau, sequence_advantage

# Chi-square critical value for p = 1e-4; the frequency tests draw with fixed seeds, so they are
# deterministic, and a correct sampler sits far below it while a wrong distribution lands far above.
CHI2_CRIT = {1: 15.14, 2: 18.42, 3: 21.11, 4: 23.51, 5: 25.74, 11: 37.33}


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def draw_counts(seq_adv, draws, **kwargs) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    counts = torch.zeros(seq_adv.numel(), dtype=torch.float64)
    for _ in range(draws):
        counts += torch.bincount(pad_select(seq_adv, generator=gen, **kwargs), minlength=seq_adv.numel())
    return counts


def test_sequence_advantage_is_masked_mean():
    adv = torch.tensor([[1.0, 1.0, 9.0], [2.0, 4.0, 6.0], [5.0, 5.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    torch.testing.assert_close(sequence_advantage(adv, mask), torch.tensor([1.0, 4.0, 0.0]))


def test_filter_bounds_are_inclusive():
    seq_adv = torch.tensor([0.0299, 0.03, -0.03, 0.5, 0.97, -0.97, 0.9701, 2.0])
    picked = pad_select(seq_adv, t_low=0.03, t_high=0.97, rho=1.0, tau=1.0)
    assert picked.tolist() == [1, 2, 3, 4, 5]


def test_no_upper_bound_and_zero_rows_dropped():
    seq_adv = torch.tensor([0.0, 0.0, 0.35, -2.47, 0.94])
    picked = pad_select(seq_adv, t_low=0.03, t_high=None, rho=1.0, tau=1.0)
    assert picked.tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    "rho,effective,n,expected",
    [(1.0, 6, 10, 6), (0.5, 6, 10, 5), (0.3, 6, 10, 3), (0.25, 6, 10, 3), (0.01, 6, 10, 1), (2.0, 6, 10, 6)],
)
def test_k_prime_is_min_of_ceil_rho_n_and_effective(rho, effective, n, expected):
    seq_adv = torch.cat([torch.linspace(0.1, 1.0, effective), torch.zeros(n - effective)])
    picked = pad_select(seq_adv, t_low=0.03, t_high=None, rho=rho, tau=1.0)
    assert picked.numel() == expected == min(math.ceil(round(rho * n, 9)), effective)
    assert num_to_draw(0.3, 10) == 3


def test_without_replacement_indices_are_distinct_and_from_effective_set():
    gen = torch.Generator().manual_seed(0)
    seq_adv = torch.randn(500, generator=gen)
    for _ in range(20):
        picked = pad_select(seq_adv, t_low=0.2, t_high=1.5, rho=0.4, tau=0.3, generator=gen)
        assert (
            picked.unique().numel()
            == picked.numel()
            == min(200, int(((seq_adv.abs() >= 0.2) & (seq_adv.abs() <= 1.5)).sum()))
        )
        assert bool(((seq_adv[picked].abs() >= 0.2) & (seq_adv[picked].abs() <= 1.5)).all())


def test_single_draw_frequencies_follow_the_softmax():
    seq_adv = torch.tensor([0.35, -0.35, 0.94, 2.47, -1.2, 0.6])
    tau = 0.5
    counts = draw_counts(seq_adv, 30000, t_low=0.03, t_high=None, rho=1 / 6, tau=tau)
    softmax = torch.softmax(seq_adv.abs().double() / tau, 0)
    wrong_tau = torch.softmax(seq_adv.abs().double() / (2 * tau), 0)
    power = seq_adv.abs().double() ** 1.5 / (seq_adv.abs().double() ** 1.5).sum()
    assert chi_square(counts, softmax) < CHI2_CRIT[5]
    assert chi_square(counts, wrong_tau) > 10 * CHI2_CRIT[5]
    assert chi_square(counts, power) > 10 * CHI2_CRIT[5]


def test_power_priority_frequencies_follow_abs_adv_to_the_alpha():
    seq_adv = torch.tensor([0.35, -0.35, 0.94, 2.47, -1.2, 0.6])
    counts = draw_counts(seq_adv, 30000, t_low=0.03, t_high=None, rho=1 / 6, tau=0.5, priority="power", alpha=1.5)
    a = seq_adv.abs().double()
    assert chi_square(counts, a**1.5 / (a**1.5).sum()) < CHI2_CRIT[5]
    assert chi_square(counts, torch.softmax(a / 0.5, 0)) > 10 * CHI2_CRIT[5]
    assert chi_square(counts, a**3 / (a**3).sum()) > 10 * CHI2_CRIT[5]


def test_two_draws_without_replacement_follow_successive_sampling_exactly():
    # Algorithm 1 draws one row, renormalises over the rest, draws again: the probability of the
    # unordered pair {i, j} is p_i p_j / (1 - p_i) + p_j p_i / (1 - p_j).
    seq_adv = torch.tensor([0.2, 0.5, 1.0, 1.6])
    tau = 0.4
    p = torch.softmax(seq_adv.double() / tau, 0)
    pairs = list(itertools.combinations(range(4), 2))
    exact = torch.tensor([p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j]) for i, j in pairs])
    naive = torch.tensor([p[i] * p[j] for i, j in pairs])
    naive = naive / naive.sum()
    gen = torch.Generator().manual_seed(7)
    counts = torch.zeros(len(pairs), dtype=torch.float64)
    for _ in range(30000):
        picked = tuple(pad_select(seq_adv, t_low=0.03, t_high=None, rho=0.5, tau=tau, generator=gen).tolist())
        counts[pairs.index(picked)] += 1
    assert chi_square(counts, exact) < CHI2_CRIT[5]
    assert chi_square(counts, naive) > 10 * CHI2_CRIT[5]


def test_with_replacement_repeats_and_follows_the_softmax():
    seq_adv = torch.tensor([0.35, 0.94, 2.47, 0.0, 0.0])
    tau = 1.0
    gen = torch.Generator().manual_seed(3)
    picked = pad_select(seq_adv, t_low=0.03, t_high=None, rho=1.5, tau=tau, replacement=True, generator=gen)
    assert picked.numel() == math.ceil(1.5 * 5)
    assert picked.unique().numel() < picked.numel()
    assert set(picked.tolist()) <= {0, 1, 2}
    counts = draw_counts(seq_adv, 5000, t_low=0.03, t_high=None, rho=1.5, tau=tau, replacement=True)
    probs = torch.softmax(seq_adv[:3].double() / tau, 0)
    assert chi_square(counts[:3], probs) < CHI2_CRIT[2]
    assert counts[3:].sum() == 0


def test_tiny_tau_is_numerically_safe_and_picks_the_largest():
    seq_adv = torch.tensor([0.35, 0.94, 2.47, 2.46, 0.5])
    for tau in (1e-3, 1e-8, 1e-30):
        for replacement in (False, True):
            picked = pad_select(seq_adv, t_low=0.03, t_high=None, rho=0.2, tau=tau, replacement=replacement)
            assert picked.tolist() == [2]
    # Without replacement the draw goes on in priority order once the top row is taken.
    picked = pad_select(seq_adv, t_low=0.03, t_high=None, rho=0.6, tau=1e-6)
    assert picked.tolist() == [1, 2, 3]


def test_all_equal_advantages_draw_uniformly():
    seq_adv = torch.full((6,), 0.94)
    counts = draw_counts(seq_adv, 12000, t_low=0.03, t_high=None, rho=1 / 6, tau=0.01)
    assert chi_square(counts, torch.full((6,), 1 / 6, dtype=torch.float64)) < CHI2_CRIT[5]


def test_zero_normaliser_falls_back_to_uniform():
    # Power priority of |A| = 0 is 0 for every row of E (t_low = 0 admits them): uniform over E.
    seq_adv = torch.zeros(4)
    counts = draw_counts(seq_adv, 8000, t_low=0.0, t_high=None, rho=0.25, tau=1.0, priority="power")
    assert chi_square(counts, torch.full((4,), 0.25, dtype=torch.float64)) < CHI2_CRIT[3]


def test_nan_and_inf_rows_are_excluded_and_counted():
    seq_adv = torch.tensor([0.5, float("nan"), 0.7, float("inf"), float("-inf"), 1.0])
    sel = pad_select_detailed(seq_adv, t_low=0.03, t_high=None, rho=1.0, tau=1.0)
    assert sel.indices.tolist() == [0, 2, 5]
    assert sel.num_nonfinite == 3
    assert sel.num_rows == 3


def test_invalid_rows_are_never_drawn_nor_counted_in_n():
    seq_adv = torch.tensor([0.5, 0.6, 0.7, 0.8, 5.0, 5.0, 5.0, 5.0])
    valid = torch.tensor([True] * 4 + [False] * 4)
    sel = pad_select_detailed(seq_adv, t_low=0.03, t_high=None, rho=0.5, tau=1e-6, valid=valid)
    assert sel.num_rows == 4
    assert sel.indices.tolist() == [2, 3]


def test_empty_effective_set_returns_empty():
    sel = pad_select_detailed(torch.zeros(8), t_low=0.03, t_high=None, rho=1.0, tau=1.0, replacement=True)
    assert sel.indices.numel() == 0 and sel.indices.dtype == torch.long
    assert sel.num_rows == 8 and int(sel.effective.sum()) == 0


def test_generator_makes_draws_reproducible():
    seq_adv = torch.randn(64, generator=torch.Generator().manual_seed(1))
    a = pad_select(seq_adv, t_low=0.1, t_high=None, rho=0.3, tau=0.3, generator=torch.Generator().manual_seed(5))
    b = pad_select(seq_adv, t_low=0.1, t_high=None, rho=0.3, tau=0.3, generator=torch.Generator().manual_seed(5))
    c = pad_select(seq_adv, t_low=0.1, t_high=None, rho=0.3, tau=0.3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(tau=0.0),
        dict(tau=float("nan")),
        dict(rho=-1.0),
        dict(t_low=-0.1),
        dict(t_low=0.5, t_high=0.1),
        dict(priority="cube"),
    ],
)
def test_bad_arguments_are_refused(kwargs):
    args = dict(t_low=0.03, t_high=None, rho=1.0, tau=1.0) | kwargs
    with pytest.raises(ValueError):
        pad_select(torch.tensor([0.5, 1.0]), **args)


def test_tau_schedules():
    assert pad_tau(0, 100) == 1.0
    assert pad_tau(100, 100) == pytest.approx(0.3)
    assert pad_tau(50, 100) == pytest.approx(0.65)
    assert pad_tau(500, 100) == pytest.approx(0.3)
    assert pad_tau(3, 0) == pytest.approx(0.3)
    assert pad_tau(50, 100, schedule="cosine") == pytest.approx(0.65)
    assert pad_tau(25, 100, schedule="cosine") > pad_tau(25, 100)
    assert pad_tau(50, 100, schedule="exponential") == pytest.approx(math.sqrt(0.3))
    assert pad_tau(0, 100, schedule="constant") == 0.3
    with pytest.raises(ValueError):
        pad_tau(0, 10, schedule="step")


def test_the_selection_math_does_not_import_verl():
    # group_advantage is the thin layer over verl's groupwise statistics; the draw itself is pure torch.
    code = (
        "import sys, revisual_verl.pad.selection, revisual_verl.pad.handoff; "
        "bad = [m for m in sys.modules if m == 'verl' or m.startswith('verl.')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
