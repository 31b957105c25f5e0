"""What a run of the recipe produced, read back from what verl wrote: metrics, held-out accuracy per stage,
``summary.json``, ``learning.png`` and the progress lines of a quiet run."""
