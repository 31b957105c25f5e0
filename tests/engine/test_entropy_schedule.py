import math

import pytest

from revisual_verl.engine.entropy_schedule import EntropySchedule, entropy_coeff_at


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
