"""Every stage trains through the revisual engine vendor, which carries the text-only forward fix."""

import fake_verl


def test_stage_one_sft_runs_with_the_revisual_engine_vendor(stage_call):
    call = stage_call(1)
    assert fake_verl.module_of(call) == "verl.trainer.sft_trainer"
    assert call["engine_vendor"] == "revisual"


def test_a_vendor_chosen_by_the_user_is_kept(stage_call):
    assert stage_call(1, VERL_ENGINE_VENDOR="acme")["engine_vendor"] == "acme"
