"""The actor engine additions: vision-tower freezing, entropy annealing, text-only Qwen2-VL batches.

Pure parts (no verl import): ``entropy_schedule``, ``vision_freeze``, ``annealing``, ``settings``;
``vision_output_compat`` (a forward hook on a model instance, transformers only).
verl adapters: ``fsdp_engine`` (the engine subclass) and ``registration`` (vendor ``revisual``).
"""
