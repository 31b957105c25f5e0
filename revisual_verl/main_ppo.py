"""``python -m revisual_verl.main_ppo``: verl's PPO entry point with the plugin's config (revisual_ppo.yaml).

Every override verl's ``verl.trainer.main_ppo`` accepts works here too; the plugin's keys
(``algorithm.pad.*``, the engine's ``actor_rollout_ref.actor.fsdp_config.*`` in the stage configs)
need no ``+``. ``--config-name=stage2_multimodal_rl`` / ``stage3_text_rl`` pick a recipe stage.
"""

import hydra
from verl.trainer import main_ppo as verl_main_ppo

from revisual_verl.config import register_search_path
from revisual_verl.cpu.driver import CPU_DEVICE, select_cpu_platform
from revisual_verl.engine.settings import check_trainer_config
from revisual_verl.pad.config import PadConfig, check_loss_agg_mode
from revisual_verl.pad.estimator import PAD_ESTIMATOR

# Before Hydra builds its search path: the stage configs extend verl's (revisual_verl/config/__init__.py).
register_search_path()


@hydra.main(config_path="config", config_name="revisual_ppo", version_base=None)
def main(config):
    if config.trainer.device == CPU_DEVICE:
        # The CPU mode (device=cpu): verl must resolve the cpu platform in this process too, not cuda.
        select_cpu_platform()
    # Before Ray starts: verl itself would silently ignore actor.freeze_vision_tower, and a bad engine
    # or PAD setting would otherwise surface only inside the workers, after the cluster is up.
    settings = check_trainer_config(config)
    print(f"[revisual] actor engine settings: {settings.summary()}", flush=True)
    if config.algorithm.adv_estimator == PAD_ESTIMATOR:
        PadConfig.from_algorithm(config.algorithm)
        check_loss_agg_mode(config.actor_rollout_ref.actor.loss_agg_mode)
    if not config.trainer.use_v1:
        # verl's main is itself a hydra.main; __wrapped__ is the plain function behind it.
        verl_main_ppo.main.__wrapped__(config)
        return
    # verl's main for the v1 trainer, with the TaskRunner that checks every node's engine first.
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from revisual_verl.task_runner import RevisualTaskRunner

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    verl_main_ppo.run_ppo(config, task_runner_class=RevisualTaskRunner)


if __name__ == "__main__":
    main()
