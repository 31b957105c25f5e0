"""The actor engine additions: vision-tower freezing and entropy annealing.

Pure parts (no verl import): ``entropy_schedule``, ``vision_freeze``, ``annealing``, ``settings``.
verl adapters: ``fsdp_engine`` (the engine subclass) and ``registration`` (vendor ``revisual``).
"""
