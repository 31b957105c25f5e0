"""Evaluation on the paper's benchmarks through verl's validation (recipes/evaluate.sh, docs/eval.md).

``paper``: the paper's Table 2; ``scores``: the per-benchmark statistics (pure functions); ``report``: eval.json
and eval.md from verl's dumped validation generations.
"""
