"""What the trainer calls: a step's groups recorded once per prompt, the map of fetched prompts emptied each step,
and the configs presample refuses (verl drops their groups before the trainer sees them)."""

import pytest
from helpers.plugin_config import compose_plugin_config

from revisual_verl.presample import adapter
from revisual_verl.presample.config import PresampleConfig
from revisual_verl.presample.rule import EASY, HARD
from revisual_verl.presample.sampler import PresampleSampler


def test_a_prompt_fetched_twice_in_a_step_is_one_epoch_of_its_history(monkeypatch):
    presampler = adapter.Presampler(PresampleConfig())
    presampler.sampler = PresampleSampler(4, PresampleConfig())
    # A batch that wrapped into the next pass holds prompt 3 twice (uids a and b), prompt 1 once.
    presampler.position_of_uid = {"a": 3, "b": 3, "c": 1, "stale": 2}
    groups = {"a": ([0.0] * 4, [0.0] * 4), "b": ([0.0] * 4, [0.0] * 4), "c": ([1.0, 0.0] * 2, [0.9, 0.0] * 2)}
    monkeypatch.setattr(adapter, "group_outcomes", lambda batch: groups)
    metrics = presampler.end_step(batch=None, trained_rows=4)
    assert presampler.sampler.streak_of(3) == (HARD, 1)
    assert presampler.sampler.streak_of(1) == (None, 0)
    assert presampler.position_of_uid == {}  # nothing awaited after the step
    # Three groups generated, two of them uniform: the share PAD sees, though prompt 3's history holds one epoch.
    assert metrics["presample/uniform_share"] == pytest.approx(2 / 3)
    assert metrics["presample/uniform_hard_share"] == pytest.approx(2 / 3)
    assert metrics["presample/rollouts_per_trained_row"] == pytest.approx(12 / 4)


def test_each_generated_group_counts_as_pad_trains_it_and_a_prompt_twice_adds_one_epoch(monkeypatch):
    presampler = adapter.Presampler(PresampleConfig())
    presampler.sampler = PresampleSampler(4, PresampleConfig())
    # Prompt 3 twice, both groups all right but at another length each (0.95, 0.9): uniform for PAD both times.
    # Prompt 2 twice, once all wrong and once mixed. Group d was not fetched by the sampler.
    presampler.position_of_uid = {"a": 3, "b": 3, "c": 1, "e": 2, "f": 2}
    mixed = ([1.0, 0.0] * 2, [0.9, 0.0] * 2)
    groups = {
        "a": ([1.0] * 4, [0.95] * 4),
        "b": ([1.0] * 4, [0.9] * 4),
        "c": mixed,
        "e": ([0.0] * 4, [0.0] * 4),
        "f": mixed,
        "d": ([1.0] * 4, [0.95] * 4),
    }
    monkeypatch.setattr(adapter, "group_outcomes", lambda batch: groups)
    p_easy = presampler.sampler.p[EASY]
    metrics = presampler.end_step(batch=None, trained_rows=12)
    assert metrics["presample/uniform_easy_share"] == pytest.approx(3 / 6)
    assert metrics["presample/uniform_hard_share"] == pytest.approx(1 / 6)
    assert metrics["presample/p_easy"] == pytest.approx(p_easy - 0.01)  # 1/2 is above the easy target (1/12)
    assert presampler.sampler.streak_of(3) == (EASY, 1)  # one epoch, of the kind both its groups had
    assert presampler.sampler.streak_of(2) == (None, 0)  # its groups disagree: it taught
    assert presampler.unknown_groups == 1


@pytest.mark.parametrize(
    "override, message",
    [
        ("algorithm.filter_groups.enable=true", "algorithm.filter_groups.enable=true"),
        ("trainer.v1.sampler.sync_refill_failed_groups=true", "sync_refill_failed_groups=true"),
    ],
)
def test_configs_whose_groups_never_reach_the_rule_are_refused(override, message):
    config = compose_plugin_config(overrides=["algorithm.presample.enable=true", override])
    assert message in adapter.unsupported(config)
    assert adapter.unsupported(compose_plugin_config(overrides=["algorithm.presample.enable=true"])) is None
