"""Time PAD's advantage path against verl's GRPO on a full-size step batch.

    python benchmarks/pad_overhead.py [--batch 4096 --length 8192 --groups 512 --repeats 5]

Prints one table: verl's GRPO estimator alone, GRPO + PAD through adv_estimator=pad (and with
verl's own GRPO loop inside PAD), and one full read of the reward tensor as the floor. All rows run
in the same process on the same data; the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage

from revisual_verl.pad.estimator import pop_latest_result, set_progress


def make_step(batch: int, length: int, groups: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = batch // groups
    lengths = torch.randint(length // 8, length + 1, (batch,), generator=gen)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    # Realistic mix: a third of the groups uniform (all right or all wrong), the rest mixed.
    p_right = torch.rand(groups, generator=gen).repeat_interleave(n)
    scores = (torch.rand(batch, generator=gen) < p_right).float()
    uniform = torch.rand(groups, generator=gen).repeat_interleave(n) < 0.33
    scores[uniform] = (p_right[uniform] > 0.5).float()
    rewards = torch.zeros(batch, length)
    rewards[torch.arange(batch), lengths - 1] = scores
    uids = np.array([f"uid-{i // n}" for i in range(batch)], dtype=object)
    return rewards, mask, uids


def time_it(fn, repeats: int, setup=lambda: None) -> list[float]:
    """Times ``fn(setup())``; ``setup`` runs outside the clock (PAD zeroes masks in place, so each call
    gets a fresh step)."""
    fn(setup())  # warm-up: first-touch page faults and lazy imports are not what we measure
    times = []
    for _ in range(repeats):
        state = setup()
        start = time.perf_counter()
        fn(state)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--groups", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rho", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    rewards, mask, uids = make_step(args.batch, args.length, args.groups)
    algo = OmegaConf.create({"algorithm": {"norm_adv_by_std_in_grpo": True, "pad": {"rho": args.rho}}}).algorithm
    algo_verl_grpo = OmegaConf.create(
        {"algorithm": {"norm_adv_by_std_in_grpo": True, "pad": {"rho": args.rho, "grpo_impl": "verl"}}}
    ).algorithm

    def step_data():
        return DataProto(
            batch=TensorDict({"token_level_rewards": rewards, "response_mask": mask.clone()}, batch_size=len(uids)),
            non_tensor_batch={"uid": uids},
        )

    def run(estimator, config=None):
        def call(data):
            set_progress(0, 100)
            compute_advantage(data, adv_estimator=estimator, num_repeat=args.batch // args.groups, config=config)
            pop_latest_result()

        return call, step_data

    rows = [
        ("verl GRPO (adv_estimator=grpo)", *run("grpo", algo)),
        ("verl GRPO vectorized (grpo_vectorized)", *run("grpo_vectorized", algo)),
        ("GRPO + PAD (adv_estimator=pad)", *run("pad", algo)),
        ("GRPO + PAD, verl's GRPO loop inside", *run("pad", algo_verl_grpo)),
        ("floor: one full read of the rewards", lambda _: rewards.sum(), lambda: None),
    ]
    results = [(name, time_it(fn, args.repeats, setup)) for name, fn, setup in rows]
    baseline = statistics.median(results[0][1])

    print(
        f"batch {args.batch} x {args.length}, {args.groups} groups, rho={args.rho}, {torch.get_num_threads()} threads"
    )
    print(f"{'path':42s} {'median ms':>10s} {'min ms':>8s} {'vs verl GRPO':>13s}")
    for name, times in results:
        med = statistics.median(times)
        print(f"{name:42s} {med * 1e3:10.1f} {min(times) * 1e3:8.1f} {med / baseline:12.2f}x")


if __name__ == "__main__":
    main()
