"""``python -m revisual_verl.main_ppo``: verl's PPO entry point with the plugin's config (revisual_ppo.yaml).

Every override verl's ``verl.trainer.main_ppo`` accepts works here too; the plugin's keys
(``algorithm.pad.*``) need no ``+``.
"""

import hydra
from verl.trainer import main_ppo as verl_main_ppo


@hydra.main(config_path="config", config_name="revisual_ppo", version_base=None)
def main(config):
    # verl's main is itself a hydra.main; __wrapped__ is the plain function behind it.
    verl_main_ppo.main.__wrapped__(config)


if __name__ == "__main__":
    main()
