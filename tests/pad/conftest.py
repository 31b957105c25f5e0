"""Fixtures shared by the PAD tests that drive verl's v1 trainer classes."""

import pytest
from hydra import compose, initialize_config_module

TRANSFER_QUEUE = ["transfer_queue.enable=true", "transfer_queue.backend.SimpleStorage.num_data_storage_units=1"]


@pytest.fixture(scope="module")
def transfer_queue(ray_local):
    """verl's TransferQueue on the local Ray instance, with one storage unit (what the v1 trainer reads)."""
    import transfer_queue as tq

    with initialize_config_module(config_module="revisual_verl.config", version_base=None):
        config = compose(config_name="revisual_ppo", overrides=TRANSFER_QUEUE)
    tq.init(config.transfer_queue)
    yield tq
    tq.close()
