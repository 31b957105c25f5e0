"""CPU mode: run the recipe through verl's real trainers on a machine without GPUs (docs/cpu.md)."""
