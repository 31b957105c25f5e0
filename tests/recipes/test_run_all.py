"""run_all.sh and the stage scripts against a fake verl on PATH (tests/recipes/fake_verl.py).

Stage order, the checkpoint hand-off, resume, refusal to overwrite, argument routing and the
fail-fast checks, all without GPUs: the shims stand in for the trainers and the merger only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fake_verl
import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TRAINERS = ("revisual_verl.sft_trainer", "revisual_verl.main_ppo")


@pytest.fixture
def world(tmp_path):
    """A base model dir, prepared-data placeholders, the shims, and a runner of the recipes."""
    base = tmp_path / "base-model"
    base.mkdir()
    (base / "config.json").write_text("{}")
    data = tmp_path / "data"
    for part in ("coldstart", "mmrl", "textrl"):
        (data / part).mkdir(parents=True)
        for split in ("train", "val"):
            (data / part / f"{split}.parquet").write_bytes(b"")
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    fake_verl.install(bin_dir)
    out = tmp_path / "out"

    class World:
        def __init__(self):
            self.base, self.data, self.out, self.log = base, data, out, log

        def run(self, script="run_all.sh", *args, **env):
            settings = {"MODEL_PATH": str(base), "DATA_DIR": str(data), "OUTPUT_DIR": str(out), "GPUS_PER_NODE": "8"}
            settings.update(env)
            self.log.unlink(missing_ok=True)
            return subprocess.run(
                ["bash", str(RECIPES / script), *args],
                env=fake_verl.env_for(tmp_path, bin_dir, log, **settings),
                check=False,
                capture_output=True,
                text=True,
                timeout=120,
            )

        def calls(self):
            return fake_verl.read_log(self.log)

        def trainings(self):
            return [c for c in self.calls() if fake_verl.module_of(c) in TRAINERS]

        def merges(self):
            return [c for c in self.calls() if fake_verl.module_of(c) == "verl.model_merger"]

    return World()


def model_of(call: dict) -> str:
    return fake_verl.override(call, "model.path") or fake_verl.override(call, "actor_rollout_ref.model.path")


def ckpt_dir_of(call: dict) -> str:
    return fake_verl.override(call, "trainer.default_local_dir")


def test_stages_run_in_order_and_each_starts_from_the_previous_merged_model(world):
    result = world.run()
    assert result.returncode == 0, result.stderr

    trainings = world.trainings()
    assert [fake_verl.module_of(c) for c in trainings] == [
        "revisual_verl.sft_trainer",
        "revisual_verl.main_ppo",
        "revisual_verl.main_ppo",
    ]
    assert trainings[0]["prog"] == "torchrun"
    assert [ckpt_dir_of(c) for c in trainings] == [str(world.out / f"stage{k}" / "checkpoints") for k in (1, 2, 3)]
    assert [model_of(c) for c in trainings] == [
        str(world.base),
        str(world.out / "stage1" / "hf"),
        str(world.out / "stage2" / "hf"),
    ]
    # Every call in order: each training is followed by the merge of its own last checkpoint, and the
    # merged directory is loaded before it counts as the stage's model.
    sequence = [(fake_verl.module_of(c), c) for c in world.calls() if fake_verl.module_of(c)]
    check, reap = "revisual_verl.recipes.merged_model", "revisual_verl.recipes.reap"
    # Each training is launched in a session of its own, then what is left of that session is stopped.
    assert [m for m, _ in sequence] == [reap, TRAINERS[0], reap, "verl.model_merger", check] + [
        reap,
        TRAINERS[1],
        reap,
        "verl.model_merger",
        check,
    ] * 2
    launches = [c for m, c in sequence if m == reap and "--new-session" in c["argv"]]
    stops = [c for m, c in sequence if m == reap and "--session" in c["argv"]]
    assert len(launches) == len(stops) == 3 and all(t["session_leader"] for t in trainings)
    for stage in (1, 2, 3):
        assert not (world.out / f"stage{stage}" / ".driver_session").exists()  # removed once stopped
    for stage, merge in zip((1, 2, 3), world.merges()):
        argv = merge["argv"]
        assert argv[argv.index("-m") + 1 :][:3] == ["verl.model_merger", "merge", "--backend"]
        assert argv[argv.index("--backend") + 1] == "fsdp"
        last = world.out / f"stage{stage}" / "checkpoints" / "global_step_3"
        expected = last if stage == 1 else last / "actor"  # the SFT trainer saves the model at the step dir
        assert argv[argv.index("--local_dir") + 1] == str(expected)
        hf = world.out / f"stage{stage}" / "hf"
        assert json.loads((hf / "config.json").read_text()) == {"merged_from": str(expected)}
        assert not (world.out / f"stage{stage}" / "hf.partial").exists()
    assert "the final model is " + str(world.out / "stage3" / "hf") in result.stderr


def test_rerun_skips_finished_stages_and_changes_nothing(world):
    assert world.run().returncode == 0
    merged = {k: (world.out / f"stage{k}" / "hf" / "config.json").read_text() for k in (1, 2, 3)}

    result = world.run()
    assert result.returncode == 0, result.stderr
    assert world.trainings() == [] and world.merges() == []
    for k in (1, 2, 3):
        assert f"stage {k}: finished" in result.stderr
        assert (world.out / f"stage{k}" / "hf" / "config.json").read_text() == merged[k]


def test_interrupted_stage_stops_the_chain_then_refuses_until_resume(world):
    result = world.run(FAKE_FAIL_STAGE="2")
    assert result.returncode != 0
    assert [fake_verl.module_of(c) for c in world.trainings()] == [TRAINERS[0], TRAINERS[1]]
    assert len(world.merges()) == 1  # stage 1 only: a failed stage is never merged or followed
    assert (world.out / "stage1" / "hf").is_dir()
    assert not (world.out / "stage2" / "hf").exists()
    assert not (world.out / "stage3").exists()

    refused = world.run()
    assert refused.returncode != 0
    assert world.trainings() == [] and world.merges() == []
    assert "stage 2 has checkpoints" in refused.stderr and "RESUME=1" in refused.stderr

    resumed = world.run(RESUME="1")
    assert resumed.returncode == 0, resumed.stderr
    trainings = world.trainings()
    assert [model_of(c) for c in trainings] == [str(world.out / "stage1" / "hf"), str(world.out / "stage2" / "hf")]
    assert (world.out / "stage3" / "hf" / "config.json").is_file()


def test_resume_refuses_a_different_input_model(world):
    assert world.run(FAKE_FAIL_STAGE="1").returncode != 0
    other = world.base.parent / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    result = world.run(MODEL_PATH=str(other), RESUME="1")
    assert result.returncode != 0
    assert "was started from " + str(world.base) in result.stderr
    assert world.trainings() == []


def test_failed_merge_leaves_no_finished_stage_and_is_redone(world):
    result = world.run(FAKE_FAIL_MERGE="1")
    assert result.returncode != 0
    assert not (world.out / "stage1" / "hf").exists()
    assert (world.out / "stage1" / "hf.partial").is_dir()
    assert len(world.trainings()) == 1

    # The checkpoint is intact, so RESUME=1 continues (verl resumes at the last step) and merges afresh.
    result = world.run(RESUME="1")
    assert result.returncode == 0, result.stderr
    config = json.loads((world.out / "stage1" / "hf" / "config.json").read_text())
    assert config["merged_from"].endswith("stage1/checkpoints/global_step_3")
    assert not list((world.out / "stage1" / "hf").glob("*.safetensors"))  # the half merge is gone
    assert not (world.out / "stage1" / "hf.partial").exists()


def test_resume_merge_merges_the_last_checkpoint_without_training(world):
    assert world.run(FAKE_FAIL_MERGE="1").returncode != 0
    assert len(world.trainings()) == 1
    result = world.run(RESUME="merge")
    assert result.returncode == 0, result.stderr
    config = json.loads((world.out / "stage1" / "hf" / "config.json").read_text())
    assert config["merged_from"].endswith("stage1/checkpoints/global_step_3")
    # Stage 1 was not trained again; stages 2 and 3 had no checkpoints, so they trained as usual.
    assert [fake_verl.module_of(c) for c in world.trainings()] == ["revisual_verl.main_ppo"] * 2
    assert len(world.merges()) == 3


def test_merge_that_does_not_load_leaves_no_finished_stage(world):
    result = world.run(FAKE_UNLOADABLE_MERGE="2")
    assert result.returncode != 0
    assert "stage 2: the merged model in" in result.stderr and "does not load" in result.stderr
    assert (world.out / "stage1" / "hf").is_dir()
    assert not (world.out / "stage2" / "hf").exists()
    assert [fake_verl.module_of(c) for c in world.trainings()] == list(TRAINERS)
    checks = [c for c in world.calls() if fake_verl.module_of(c) == "revisual_verl.recipes.merged_model"]
    assert [c["argv"][-1] for c in checks] == [str(world.out / f"stage{k}" / "hf.partial") for k in (1, 2)]

    # Once it loads, RESUME=merge merges again and the chain goes on.
    result = world.run(RESUME="merge")
    assert result.returncode == 0, result.stderr
    assert (world.out / "stage2" / "hf").is_dir() and (world.out / "stage3" / "hf").is_dir()


def test_a_finished_stage_whose_merged_model_no_longer_loads_stops_the_run(world):
    assert world.run().returncode == 0
    result = world.run(FAKE_UNLOADABLE_MERGE="1")
    assert result.returncode != 0
    assert "stage 1:" in result.stderr and "exists but does not load" in result.stderr
    assert world.trainings() == [] and world.merges() == []


def test_resume_takes_only_known_values(world):
    result = world.run(RESUME="yes")
    assert result.returncode != 0 and "RESUME must be 0, 1 or merge" in result.stderr


def test_never_reruns_a_stage_under_a_finished_later_stage(world):
    assert world.run().returncode == 0
    stage2_config = (world.out / "stage2" / "hf" / "config.json").read_text()
    # Losing stage 1's merged model must not lead to a new stage 1 under the existing stage 2.
    (world.out / "stage1" / "hf" / "config.json").unlink()
    (world.out / "stage1" / "hf").rmdir()

    result = world.run()
    assert result.returncode != 0
    assert "stage 2 already has outputs" in result.stderr
    assert world.trainings() == [] and world.merges() == []
    assert (world.out / "stage2" / "hf" / "config.json").read_text() == stage2_config


def test_overrides_reach_only_the_stages_they_name(world):
    result = world.run(
        "run_all.sh",
        "--stage1",
        "optim.lr=1e-5",
        "--rl",
        "trainer.save_freq=5",
        "--stage3",
        "actor_rollout_ref.actor.kl_loss_coef=1e-3",
        "--all",
        "trainer.val_before_train=False",
    )
    assert result.returncode == 0, result.stderr
    stage1, stage2, stage3 = world.trainings()
    assert stage1["argv"][-2:] == ["optim.lr=1e-5", "trainer.val_before_train=False"]
    assert stage2["argv"][-2:] == ["trainer.save_freq=5", "trainer.val_before_train=False"]
    assert stage3["argv"][-3:] == [
        "trainer.save_freq=5",
        "actor_rollout_ref.actor.kl_loss_coef=1e-3",
        "trainer.val_before_train=False",
    ]


def test_an_override_without_a_stage_flag_is_refused(world):
    result = world.run("run_all.sh", "optim.lr=1e-5")
    assert result.returncode != 0
    assert "say which stage(s)" in result.stderr
    assert world.calls() == []


def test_stage_subset_starts_from_model_path(world):
    result = world.run(STAGES="2 3")
    assert result.returncode == 0, result.stderr
    assert [model_of(c) for c in world.trainings()] == [str(world.base), str(world.out / "stage2" / "hf")]
    assert not (world.out / "stage1").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAKE_GPUS": "0"}, "no GPUs: nvidia-smi lists none"),
        ({"FAKE_GPUS": "4"}, "GPUS_PER_NODE=8 but nvidia-smi lists 4 GPU(s)"),
        ({"MODEL_PATH": "/nonexistent/model"}, "MODEL_PATH=/nonexistent/model is not a directory"),
        ({"MODEL_PATH": ""}, "MODEL_PATH is not set"),
        ({"NNODES": "two"}, "NNODES must be a positive integer"),
    ],
)
def test_run_all_fails_before_any_stage_starts(world, env, message):
    result = world.run(**env)
    assert result.returncode != 0
    assert message in result.stderr
    assert world.trainings() == []


def test_missing_data_of_a_later_stage_fails_before_stage_one(world):
    (world.data / "textrl" / "train.parquet").unlink()
    result = world.run()
    assert result.returncode != 0
    assert f"no train data in {world.data / 'textrl'}" in result.stderr
    assert world.calls() == []


def test_multi_node_torchrun_stage_one_is_refused_with_advice(world):
    result = world.run(NNODES="2")
    assert result.returncode != 0
    assert "SFT_LAUNCHER=ray" in result.stderr
    assert world.trainings() == []


def test_a_launch_first_stops_what_an_earlier_launch_of_the_stage_left(world):
    # An earlier launch whose script was killed too: its driver's session is still recorded.
    (world.out / "stage2").mkdir(parents=True)
    (world.out / "stage2" / ".driver_session").write_text("424242\n")
    result = world.run("run_stage2.sh")
    assert result.returncode == 0, result.stderr
    reaps = [c["argv"] for c in world.calls() if fake_verl.module_of(c) == "revisual_verl.recipes.reap"]
    assert reaps[0][reaps[0].index("--session") + 1] == "424242" and "earlier launch" in " ".join(reaps[0])
    assert "--new-session" in reaps[1] and "--session" in reaps[2]
    assert not (world.out / "stage2" / ".driver_session").exists()


def test_multi_node_stage_one_needs_the_master_address_and_a_rank_below_nnodes(world):
    refused = world.run("run_stage1.sh", NNODES="2", NODE_RANK="1", MASTER_ADDR="")
    assert refused.returncode != 0 and world.trainings() == []
    assert "NNODES=2: stage 1 under torchrun needs MASTER_ADDR" in refused.stderr
    bad_rank = world.run("run_stage1.sh", NNODES="2", NODE_RANK="2", MASTER_ADDR="10.0.0.1")
    assert bad_rank.returncode != 0 and "NODE_RANK must be 0..1 (NNODES=2), got '2'" in bad_rank.stderr
    assert world.trainings() == []
    result = world.run("run_stage1.sh", NNODES="2", NODE_RANK="1", MASTER_ADDR="10.0.0.1")
    assert result.returncode == 0, result.stderr
    (call,) = world.trainings()
    assert call["prog"] == "torchrun"
    assert {"--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"} <= set(call["argv"])
    # 1 sequence x 8 accumulation x 2 nodes x 8 GPUs
    assert fake_verl.override(call, "data.train_batch_size") == "128"


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stage_script_passes_extra_arguments_last(world, stage):
    result = world.run(f"run_stage{stage}.sh", "trainer.total_epochs=1", "+foo.bar=2")
    assert result.returncode == 0, result.stderr
    (call,) = world.trainings()
    # Last on the command line, so Hydra lets them win over the recipe's own values.
    assert call["argv"][-2:] == ["trainer.total_epochs=1", "+foo.bar=2"]
    assert ckpt_dir_of(call) == str(world.out / f"stage{stage}" / "checkpoints")


@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAKE_GPUS": "0"}, "no GPUs"),
        ({"MODEL_PATH": "/nonexistent/model"}, "is not a directory"),
        ({"DATA_DIR": "/nonexistent/data"}, "no train data in /nonexistent/data/"),
    ],
)
def test_stage_script_fails_fast_with_a_clear_message(world, stage, env, message):
    result = world.run(f"run_stage{stage}.sh", **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert world.trainings() == []


def test_stage_script_without_nvidia_smi_says_so(world):
    result = world.run("run_stage2.sh", NVIDIA_SMI="/nonexistent/nvidia-smi")
    assert result.returncode != 0
    assert "no GPUs: nvidia-smi is not installed" in result.stderr
    assert world.trainings() == []


def test_sharded_data_is_passed_as_a_hydra_list(world):
    part = world.data / "textrl"
    (part / "train.parquet").unlink()
    for i in range(2):
        (part / f"train-0000{i}.parquet").write_bytes(b"")
    assert world.run("run_stage3.sh").returncode == 0
    (call,) = world.trainings()
    assert fake_verl.override(call, "data.train_files") == f"[{part}/train-00000.parquet,{part}/train-00001.parquet]"


def test_paths_hydra_cannot_read_bare_are_quoted(world, tmp_path):
    spaced = tmp_path / "out dir"
    assert world.run("run_stage2.sh", OUTPUT_DIR=str(spaced)).returncode == 0
    (call,) = world.trainings()
    assert f"trainer.default_local_dir='{spaced}/stage2/checkpoints'" in call["argv"]


def test_stage_logs_keep_each_stage_output_in_its_log_and_the_terminal_short(world):
    result = world.run(STAGE_LOGS="1")
    assert result.returncode == 0, result.stderr
    for stage in (1, 2, 3):
        stage_dir = world.out / f"stage{stage}"
        log = (stage_dir / "train.log").read_text()
        # The stage's command line and its merge are in its log, not on the terminal.
        assert f"stage {stage}: " in log and "merging" in log
        assert f"stage {stage}: training from" in result.stderr and f"{stage_dir}/train.log" in result.stderr
        assert f"stage {stage}: done in" in result.stderr
        assert int((stage_dir / "seconds.txt").read_text()) >= 0
    assert "merging" not in result.stderr and "revisual_verl.main_ppo" not in result.stderr


def test_stage_logs_show_the_failing_stage_log_tail(world):
    result = world.run(STAGE_LOGS="1", FAKE_FAIL_STAGE="2")
    assert result.returncode != 0
    log = world.out / "stage2" / "train.log"
    assert f"last lines of {log}" in result.stderr
    assert "stage 2 failed" in result.stderr and str(log) in result.stderr
    # The tail is the log's: the failing trainer's command line is in it.
    assert "revisual_verl.main_ppo" in result.stderr
    assert not (world.out / "stage3").exists()


@pytest.mark.parametrize(
    ("env", "message"), [({"STAGE_LOGS": "yes"}, "STAGE_LOGS"), ({"PROGRESS_EVERY": "0"}, "PROGRESS_EVERY")]
)
def test_stage_log_settings_are_checked(world, env, message):
    result = world.run(**env)
    assert result.returncode != 0 and message in result.stderr
