"""Prioritized Advantage Distillation: pure math in ``selection``/``group_advantage``, verl adapters in
``estimator`` (adv_estimator=pad) and ``trainer`` (trainer.v1.trainer_mode=pad_sync)."""
