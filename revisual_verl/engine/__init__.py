"""The actor engine additions: vision-tower freezing, entropy annealing, text-only Qwen2-VL batches.

Pure parts (no verl import): ``entropy`` (the schedule and its hook into verl's loss), ``vision_freeze``,
``vision_output_compat`` (a forward hook on a model instance, transformers only).
verl adapters: ``config`` (the engine's verl config keys), ``settings`` (the driver's start-up checks),
``fsdp_engine`` (the engine subclass) and ``registration`` (vendor ``revisual``).
"""
