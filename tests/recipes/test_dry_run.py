"""DRY_RUN=1 of each stage against the real verl config tree, the real plugin and the sample data.

The scripts are run for real (bash, the installed verl, Hydra's compose API); the in-process tests
feed revisual_verl.recipes.dry_run the exact argv a stage script would execute, plus one bad
override each, and check that the dry run names the problem.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from revisual_verl.recipes import dry_run

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def run_dry(script: str, sample_data: Path, tmp_path: Path, *args: str, **env: str):
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "STAGES", "RESUME", "NNODES")}
    environ.update(DRY_RUN="1", DATA_DIR=str(sample_data), OUTPUT_DIR=str(tmp_path / "dry"), **env)
    # The scripts run `python`: make it this interpreter (the README's test command does not activate .venv).
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    return subprocess.run(
        ["bash", str(RECIPES / script), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def without_model(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith(("model.path=", "actor_rollout_ref.model.path="))]


def test_run_all_dry_run_validates_every_stage_and_prints_the_commands_a_real_run_executes(
    sample_data, tmp_path, stage_argv
):
    dry_out = tmp_path / "dry"
    result = run_dry("run_all.sh", sample_data, tmp_path, "--rl", "trainer.save_freq=7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stages 1 2 3 compose and validate" in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.strip().startswith("error")]
    # No trainer started: nothing was written where checkpoints go.
    assert not dry_out.exists()
    commands = [shlex.split(line) for line in result.stdout.splitlines() if line.startswith(("torchrun ", "python "))]
    assert len(commands) == 3
    # Each printed command is the very command a real run executes (same launcher, module, overrides
    # and order), bar the model path: a dry run hands each stage the previous stage's future hf/ dir.
    for stage, printed in zip((1, 2, 3), commands):
        extra = ("trainer.save_freq=7",) if stage > 1 else ()
        real = stage_argv(stage, *extra, OUTPUT_DIR=str(tmp_path / "real"))
        assert without_model(printed) == [
            arg.replace(str(tmp_path / "real"), str(dry_out)) for arg in without_model(real)
        ]
    assert "model.path=/dry-run/placeholder-model" in commands[0]
    assert f"actor_rollout_ref.model.path={dry_out}/stage1/hf" in commands[1]
    assert f"actor_rollout_ref.model.path={dry_out}/stage2/hf" in commands[2]
    assert commands[0][-1] != "trainer.save_freq=7" and commands[2][-1] == "trainer.save_freq=7"


def test_dry_run_fails_when_one_stage_does_not_validate(sample_data, tmp_path):
    result = run_dry(
        "run_all.sh", sample_data, tmp_path, "--stage3", "algorithm.adv_estimator=no_such_estimator", STAGES="3"
    )
    assert result.returncode != 0
    assert "dry run failed for stage(s) 3" in result.stderr
    assert "'no_such_estimator' is not registered" in result.stdout


def test_dry_run_with_a_missing_data_dir_fails_before_composing(sample_data, tmp_path):
    result = run_dry("run_stage2.sh", sample_data, tmp_path, MMRL_DIR=str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert f"no train data in {tmp_path / 'nowhere'}" in result.stderr
    assert "[dry-run]" not in result.stdout


def with_model(argv: list[str], model: str) -> list[str]:
    return [
        key + "=" + model if key in ("model.path", "actor_rollout_ref.model.path") else f"{key}={value}" if sep else key
        for key, sep, value in (arg.partition("=") for arg in argv)
    ]


def dry_run_in_process(capsys, stage: int, argv: list[str], *extra: str, require_images: bool | None = None):
    """The dry run of ``argv`` (a stage's real command) with the model swapped for the placeholder."""
    if not any("/tiny-qwen2.5-vl" in arg for arg in argv):
        argv = with_model(argv, "/dry-run/placeholder-model")
    flags = ["--stage", str(stage)]
    if require_images if require_images is not None else stage == 2:
        flags.append("--require-images")
    code = dry_run.main([*flags, "--", *argv, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_default_config_passes_with_the_sample_data(capsys, stage_argv, stage):
    code, output = dry_run_in_process(capsys, stage, stage_argv(stage))
    assert code == 0, output
    findings = [line.split(None, 1) for line in output.splitlines() if line.startswith("  ")]
    assert "error" not in {level for level, _ in findings}
    passed = {text.split(": ", 1)[0] for level, text in findings if level == "ok"}
    common = {"config resolves", "data.train_files", "data.val_files"}
    if stage == 1:
        assert common | {"engine -> dataclass", "optim -> dataclass", "batch sizes"} <= passed
    else:
        assert (
            common
            | {
                "verl validate_config (incl. actor -> ActorConfig)",
                "actor_rollout_ref.rollout -> dataclass",
                "algorithm.adv_estimator",
                "algorithm.pad",
                "algorithm.presample",
                "trainer.v1.trainer_mode",
                "reward.reward_manager",
                "data.custom_cls (dataset class)",
            }
            <= passed
        )
    if stage == 3:
        assert "actor_rollout_ref.ref -> dataclass" in passed  # the KL loss needs the reference policy


@pytest.mark.parametrize(
    ("stage", "extra", "code", "message"),
    [
        (2, ["actor_rollout_ref.actor.no_such_key=1"], 2, "no_such_key"),
        (1, ["optim.no_such_key=1"], 2, "no_such_key"),
        (
            2,
            ["actor_rollout_ref.actor.ppo_mini_batch_size=1024"],
            1,
            "ppo_mini_batch_size=1024 > data.train_batch_size",
        ),
        (3, ["actor_rollout_ref.actor.ppo_mini_batch_size=96"], 1, "512 is not a multiple of actor_rollout_ref.actor"),
        (
            2,
            ["actor_rollout_ref.actor.use_dynamic_bsz=False", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1"],
            1,
            "actor_rollout_ref.rollout.log_prob_micro_batch_size",  # verl's validate_config speaks here
        ),
        (2, ["algorithm.adv_estimator=nope"], 1, "algorithm.adv_estimator='nope' is not registered"),
        (2, ["algorithm.pad.rho=-1"], 1, "algorithm.pad.rho=-1.0: must be a finite number > 0"),
        (3, ["actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean"], 1, "loss_agg_mode='seq-mean-token-mean'"),
        (2, ["reward.reward_manager.name=nope"], 1, "reward.reward_manager.name='nope' is not in verl's reward-loop"),
        (
            2,
            ["++reward.reward_kwargs.lenght=3"],
            1,
            "reward.reward_kwargs.lenght is not a setting of reward.reward_kwargs",
        ),
        (3, ["trainer.v1.trainer_mode=nope"], 1, "trainer.v1.trainer_mode='nope' is not registered"),
        (
            3,
            ["algorithm.presample.enable=true", "trainer.v1.trainer_mode=sync"],
            1,
            "algorithm.presample.enable=true needs trainer.use_v1=true and trainer.v1.trainer_mode=pad_sync",
        ),
        (3, ["algorithm.presample.keep_floor=2"], 1, "algorithm.presample.keep_floor=2.0: must be a number in (0, 1]"),
        (2, ["data.custom_cls.name=Nope"], 1, "data.custom_cls (dataset class): AttributeError"),
        (2, ["trainer.n_gpus_per_node=3"], 1, "3 GPUs (trainer.nnodes x trainer.n_gpus_per_node) do not split"),
        (3, ["actor_rollout_ref.actor.kl_loss_type=nope"], 1, "kl_loss_type='nope' is not a KL estimator verl knows"),
        (1, ["data.train_batch_size=12"], 1, "not divisible by the 8 data-parallel ranks"),
        (1, ["data.truncation=middle"], 1, "data.truncation='middle'"),
    ],
)
def test_a_bad_override_fails_the_dry_run_naming_it(capsys, stage_argv, stage, extra, code, message):
    bad_code, bad_output = dry_run_in_process(capsys, stage, stage_argv(stage), *extra)
    assert bad_code == code, bad_output
    assert message in bad_output


def test_stage_two_data_without_images_is_an_error(capsys, stage_argv, sample_data):
    argv = stage_argv(2, MMRL_DIR=str(sample_data / "textrl"))
    code, output = dry_run_in_process(capsys, 2, argv)
    assert code == 1
    assert "no row has an image in column 'images', but this stage trains on images" in output


def test_missing_or_wrong_data_is_an_error(capsys, stage_argv, sample_data, tmp_path):
    argv = stage_argv(1)
    code, output = dry_run_in_process(capsys, 1, argv, f"data.val_files={tmp_path}/gone.parquet")
    assert code == 1 and f"data.val_files: {tmp_path}/gone.parquet does not exist" in output
    # RL rows handed to the SFT stage: no messages column.
    code, output = dry_run_in_process(capsys, 1, argv, f"data.train_files={sample_data}/textrl/train.parquet")
    assert code == 1 and "lacks column(s) ['messages']" in output


def tiny_model_dir(root: Path) -> Path:
    """A Qwen2.5-VL-shaped model directory without weights or an image processor: config and tokenizer."""
    from helpers.tiny_models import build_tiny_tokenizer

    model = root / "tiny-qwen2.5-vl"
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(model)
    text = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "text_config": {
            **text,
            "num_key_value_heads": 1,
            "vocab_size": len(tokenizer),
            "model_type": "qwen2_5_vl_text",
        },
        "vision_config": {
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
    }
    (model / "config.json").write_text(json.dumps(config))
    return model


def test_an_existing_model_dir_is_loaded_and_checked(capsys, stage_argv, tmp_path):
    model = tiny_model_dir(tmp_path)
    code, output = dry_run_in_process(capsys, 3, stage_argv(3, MODEL_PATH=str(model)))
    assert code == 0, output
    assert "ok    actor_rollout_ref.model -> HFModelConfig: Qwen2_5_VLForConditionalGeneration" in output
    # Stage 2 feeds images: a model directory without a processor cannot train it.
    code, output = dry_run_in_process(capsys, 2, stage_argv(2, MODEL_PATH=str(model)))
    assert code == 1
    assert "has no loadable (multimodal) processor" in output


ENGINE = "actor_rollout_ref.actor.fsdp_config"


def test_stage_three_freezes_the_vision_tower_and_anneals_entropy(capsys, stage_argv):
    argv = stage_argv(3)
    assert "--config-name=stage3_text_rl" in argv
    assert not [a for a in argv if "REVISUAL_" in a or "env_vars" in a]  # all in the config file
    code, output = dry_run_in_process(capsys, 3, argv)
    assert code == 0, output
    assert "ok    engine settings (actor_rollout_ref.actor.fsdp_config): freeze_vision_tower=True" in output
    assert "entropy.schedule=exponential entropy.beta0=0.02" in output
    assert "entropy.decay=0.985 entropy.warmup_updates=140 (optimizer updates)" in output
    # The released draw (rho 1.5 with replacement) as weights: at most 512 / 128 updates, so the entropy
    # bonus starts at step 36 at the earliest; with copies 6 updates and step 24.
    assert "ok    optimizer updates: at most 4 per step (PAD distilled: the distinct rows drawn" in output
    assert "entropy warm-up of 140 updates: bonus from step 36 at the earliest, later when PAD keeps fewer" in output
    code, copies = dry_run_in_process(capsys, 3, argv, "algorithm.pad.duplicates=copies")
    assert code == 0, copies
    assert "optimizer updates: at most 6 per step (PAD distilled, copies: ceil(rho * N) = 6144" in copies
    assert "bonus from step 24 at the earliest" in copies


def test_engine_settings_can_be_overridden_and_bad_or_misspelt_keys_are_caught(capsys, stage_argv):
    argv = stage_argv(3, f"{ENGINE}.entropy.warmup_updates=20")
    code, output = dry_run_in_process(capsys, 3, argv)
    assert code == 0, output
    assert "entropy.warmup_updates=20 (optimizer updates)" in settings_line(output, 3, "engine")
    # A bad value: the check names the key.
    code, output = dry_run_in_process(capsys, 3, argv, f"{ENGINE}.entropy.decay=fast")
    assert code in (1, 2) and "decay" in output, output
    code, output = dry_run_in_process(capsys, 3, argv, f"{ENGINE}.entropy.decay=1.5")
    assert code == 1 and f"{ENGINE}.entropy.decay=1.5: must be in (0, 1]" in output
    # A misspelt key does not compose: nothing starts.
    code, output = dry_run_in_process(capsys, 3, argv, f"{ENGINE}.entropy.warmup=20")
    assert code == 2 and f"Could not override '{ENGINE}.entropy.warmup'" in output
    # Ray's env_vars must be strings.
    code, output = dry_run_in_process(capsys, 3, argv, "+ray_kwargs.ray_init.runtime_env.env_vars.SOME_FLAG=1")
    assert code == 1 and "Ray needs a string; quote it" in output
    # The engine's freeze flag follows verl's key; set apart, it is refused.
    code, output = dry_run_in_process(capsys, 3, argv, f"{ENGINE}.freeze_vision_tower=false")
    assert code == 1 and "set only actor_rollout_ref.actor.freeze_vision_tower" in output


def test_stage_two_anneals_entropy_only_when_asked(capsys, stage_argv):
    argv = stage_argv(2)
    assert "--config-name=stage2_multimodal_rl" in argv
    code, output = dry_run_in_process(capsys, 2, argv)
    assert code == 0, output
    assert "entropy.schedule=none" in settings_line(output, 2, "engine")
    code, output = dry_run_in_process(capsys, 2, argv, f"{ENGINE}.entropy.schedule=exponential")
    assert code == 0, output
    line = settings_line(output, 2, "engine")
    assert "entropy.schedule=exponential" in line and "freeze_vision_tower=False" in line


def settings_line(output: str, stage: int, what: str) -> str:
    lines = output.splitlines()
    (line,) = [line for line in lines if line.startswith(f"[dry-run] stage {stage} ") and f"{what} settings:" in line]
    return line


def test_each_stage_prints_its_pad_and_engine_settings(capsys, stage_argv, monkeypatch):
    code, output = dry_run_in_process(capsys, 2, stage_argv(2))
    assert code == 0, output
    pad = settings_line(output, 2, "PAD")
    # The authors' released settings are the recipe's default.
    for pair in ("priority=power", "alpha=1.5", "rho=1.5", "replacement=True", "t_low=0.03", "t_high=0.97"):
        assert pair in pad.split(), pad
    assert "tau_start" not in pad  # the temperature does not act under the power priority
    assert "entropy.schedule=none" in settings_line(output, 2, "engine")

    code, output = dry_run_in_process(capsys, 3, stage_argv(3))
    assert code == 0, output
    engine = settings_line(output, 3, "engine")
    for pair in ("vendor=revisual", "freeze_vision_tower=True", "entropy.schedule=exponential", "entropy.beta0=0.02"):
        assert pair in engine.split(), engine
    assert "entropy.warmup_updates=140 (optimizer updates)" in engine

    monkeypatch.delenv("VERL_ENGINE_VENDOR", raising=False)  # the entry point sets it itself
    code, output = dry_run_in_process(capsys, 1, stage_argv(1))
    assert code == 0, output
    assert "PAD settings: none" in settings_line(output, 1, "PAD")
    assert "vendor=revisual" in settings_line(output, 1, "engine")
    assert "--config-name=stage1_coldstart_sft" in stage_argv(1)


def test_pad_line_follows_an_override(capsys, stage_argv):
    code, output = dry_run_in_process(capsys, 2, stage_argv(2, "algorithm.pad.priority=softmax"))
    assert code == 0, output
    pad = settings_line(output, 2, "PAD")
    assert "priority=softmax" in pad and "tau_start=1.0" in pad and "alpha=" not in pad


@pytest.mark.parametrize(
    ("nodes", "gpus", "extra", "refusal"),
    [
        (1, 8, [], None),
        (2, 8, [], None),
        (3, 8, [], "does not divide over 24 data-parallel ranks"),  # 128 x 8 = 1024 responses
        (4, 8, [], None),
        (1, 6, [], "does not divide over 6 data-parallel ranks"),
        (1, 4, [], None),
        (2, 8, ["actor_rollout_ref.rollout.tensor_model_parallel_size=16"], None),  # a replica of two whole nodes
        (
            3,
            8,
            [
                "actor_rollout_ref.rollout.tensor_model_parallel_size=12",
                "data.train_batch_size=384",
                "actor_rollout_ref.actor.ppo_mini_batch_size=96",
            ],
            "a rollout replica of 12 GPUs does not fill whole nodes of 8 GPUs",
        ),
        (1, 8, ["actor_rollout_ref.rollout.tensor_model_parallel_size=3"], "do not split into rollout replicas of 3"),
    ],
)
def test_cluster_sizes_verl_would_refuse_fail_the_dry_run(capsys, stage_argv, nodes, gpus, extra, refusal):
    """The rules verl asserts once the cluster is up: a mini-batch divides over the data-parallel ranks
    (engine_workers.py, train_mini_batch) and a rollout replica fills whole nodes (rollout/replica.py)."""
    sizes = [f"trainer.nnodes={nodes}", f"trainer.n_gpus_per_node={gpus}"]
    code, output = dry_run_in_process(capsys, 2, stage_argv(2), *sizes, *extra)
    if refusal is None:
        assert code == 0, output
    else:
        assert code == 1 and refusal in output, output[-3000:]
