"""Every node of the Ray cluster is asked which engine verl would build there (revisual_verl.engine.node_check)."""

import pytest
from helpers.plugin_config import compose_plugin_config

from revisual_verl.engine.node_check import check_nodes, wants_revisual_engine

REVISUAL = {"VERL_ENGINE_VENDOR": "revisual"}


def test_a_node_with_the_plugin_resolves_the_revisual_engine(ray_local):
    reports = check_nodes("fsdp2", in_process_here=False, runtime_env={"env_vars": REVISUAL})
    assert [report["engine"] for report in reports] == ["RevisualFSDPEngine"]
    assert reports[0]["node"] == ray_local.util.get_node_ip_address()


def test_a_node_where_verl_does_not_load_the_plugin_stops_the_run_naming_it(ray_local):
    # verl reads VERL_USE_EXTERNAL_PLUGINS in every process: "none" there is a node without the plugin.
    absent = {"env_vars": {**REVISUAL, "VERL_USE_EXTERNAL_PLUGINS": "none"}}
    with pytest.raises(RuntimeError) as error:
        check_nodes("fsdp2", in_process_here=False, runtime_env=absent)
    message = str(error.value)
    assert "not every node would build it" in message
    assert f"node {ray_local.util.get_node_ip_address()}" in message


def test_the_check_runs_when_the_config_picks_the_vendor():
    assert wants_revisual_engine(compose_plugin_config("stage2_multimodal_rl"))
    assert wants_revisual_engine(compose_plugin_config("stage3_text_rl", ["device=cpu"]))
    # revisual_ppo alone keeps verl's engine: nothing to check.
    assert not wants_revisual_engine(compose_plugin_config())
