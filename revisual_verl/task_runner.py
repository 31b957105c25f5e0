"""verl's v1 TaskRunner, which first checks that every node would build the engine the config asks for.

``revisual_verl.main_ppo`` runs it in place of verl's ``TaskRunnerV1`` (through ``run_ppo``'s own
``task_runner_class`` argument), so the check runs once, inside the cluster, before any worker starts.
"""

import ray
from verl.trainer.main_ppo import TaskRunnerV1

from revisual_verl.engine.node_check import check_nodes, wants_revisual_engine


@ray.remote
class RevisualTaskRunner(TaskRunnerV1.__ray_actor_class__):
    def run(self, config):
        if wants_revisual_engine(config):
            reports = check_nodes(str(config.actor_rollout_ref.actor.strategy))
            print(f"[revisual] revisual engine on every node: {', '.join(r['node'] for r in reports)}", flush=True)
        return super().run(config)
