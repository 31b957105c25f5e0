from pathlib import Path

import pytest

from revisual_verl.data.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data" / "raw"


@pytest.fixture(scope="session")
def prepared_samples(tmp_path_factory):
    """The bundled raw samples converted by the CLI: {part: output directory}."""
    root = tmp_path_factory.mktemp("prepared")
    inputs = {"coldstart": "coldstart.json", "mmrl": "mmrl.parquet", "textrl": "textrl.parquet"}
    for part, name in inputs.items():
        code = main(
            ["prepare", part, "-i", str(SAMPLES / name), "-o", str(root / part), "--val-size", "4", "--no-progress"]
        )
        assert code == 0
    return {part: root / part for part in inputs}


@pytest.fixture
def verl_data_config(tmp_path):
    """verl's own ``data`` config section, composed by Hydra from verl's ppo_trainer config."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[
                "data.custom_cls.path=pkg://revisual_verl.data.mixed_dataset",
                "data.custom_cls.name=MixedModalRLDataset",
                "data.max_prompt_length=4096",
                "data.filter_overlong_prompts=true",
                "data.filter_overlong_prompts_workers=1",
                f"+data.cache_dir={tmp_path / 'verl_cache'}",
            ],
        )
    return config.data
