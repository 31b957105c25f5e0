"""Time the model passes after generation, masked mode against distilled mode, with verl's real actor engine on CPU.

    python benchmarks/pad_compaction.py [--groups 8 --n 8 --mini-batch 16 --repeats 3]

One GRPO step batch (groups x n responses, every group mixed so that every row is in PAD's effective set) is
distilled at kept fractions 1.0, 0.5 and 0.25 (rho, the paper's draw without replacement) and with the
settings the authors released (power priority 1.5, rho 1.5 with replacement, 0.03 <= |A| <= 0.97), with PAD's
own selection (``pad_select_rows``) and the distilled mode's own row lists. For each, in one run, on the same
engine:

- masked (``algorithm.pad.compact=false``): old log-prob and reference log-prob over every row, then the actor
  update over every row in mini-batches of ``--mini-batch`` rows, unselected rows masked out of the loss;
- distilled (default): the same three passes over the selected rows only, padded with verl's own padding rows
  (``construct_minimal_padding_template``: 127 prompt tokens, one masked response token) to the mini-batch
  multiple, as the pad_sync trainer builds it; a row drawn m times is one row of weight m
  (``algorithm.pad.duplicates=weights``);
- copies (released settings only, ``duplicates=copies``, the authors' trainer): a row drawn m times is m rows.

The engine is verl's FSDP2 engine as the ``revisual`` vendor selects it, on the CPU+gloo platform of
tests/engine (the script re-runs itself in a subprocess with that platform), on a small Qwen2.5-VL built from a
config. The reference pass is a second forward of the same engine (verl's ref worker runs the same forward).
Every time is the fastest of ``--repeats`` rounds (each round runs every fraction in both modes), phase by
phase and for the whole. The last lines are the distilled/masked ratio at keep=0.25 and, for the released
settings, the rows through the model passes per rollout row with weights and with copies.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEEPS = (1.0, 0.5, 0.25)
# The paper's draw (softmax priority, no replacement) at each kept fraction, then the authors' released settings.
PLANS = {f"{keep:.2f}": {"rho": keep, "t_low": 0.03} for keep in KEEPS}
PLANS["released"] = {"priority": "power", "alpha": 1.5, "rho": 1.5, "replacement": True, "t_low": 0.03, "t_high": 0.97}
CHILD_FLAG = "REVISUAL_PAD_COMPACTION_CHILD"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=8, help="GRPO groups (prompts) in the step")
    parser.add_argument("--n", type=int, default=8, help="responses per prompt")
    parser.add_argument(
        "--mini-batch", type=int, default=16, help="rows per optimizer update (ppo_mini_batch_size * n)"
    )
    parser.add_argument("--micro-batch", type=int, default=8, help="rows per forward (ppo_micro_batch_size_per_gpu)")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--min-response", type=int, default=128)
    parser.add_argument("--max-response", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args()


def relaunch() -> int:
    """Run this script again with verl's platform resolved to CPU+gloo (it is read when verl is imported)."""
    env = {
        **os.environ,
        CHILD_FLAG: "1",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "tests" / "engine"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "VERL_PLATFORM": "cpu",  # the CPU mode's platform, registered by the plugin
        "VERL_ENGINE_VENDOR": "revisual",
    }
    return subprocess.run([sys.executable, *sys.argv], env=env, check=False).returncode


def small_model(path: str) -> None:
    """tests/engine's tiny Qwen2.5-VL, wider and deeper so that a row costs more than the passes' fixed overhead."""
    import torch
    from tiny_vlm import tiny_qwen25_vl_config
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    values = tiny_qwen25_vl_config().to_dict()
    text = values["text_config"]
    text.update(hidden_size=128, intermediate_size=512, num_hidden_layers=4, max_position_embeddings=1024)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": [4, 6, 6]}  # head_dim 32
    text.pop("layer_types", None)  # rebuilt for the new depth
    text.pop("rope_parameters", None)
    values["vision_config"]["out_hidden_size"] = 128
    config = Qwen2_5_VLConfig(**values)
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)


def make_step(args):
    """Prompts, responses and binary scores: group g has (g % (n - 1)) + 1 right answers, so every group is mixed."""
    import torch

    gen = torch.Generator().manual_seed(0)
    prompts, responses, scores, uids = [], [], [], []
    for g in range(args.groups):
        prompt = torch.randint(3, 100, (args.prompt_len,), generator=gen)
        right = g % (args.n - 1) + 1
        for i in range(args.n):
            length = int(torch.randint(args.min_response, args.max_response + 1, (1,), generator=gen))
            prompts.append(prompt)
            responses.append(torch.randint(3, 100, (length,), generator=gen))
            scores.append(float(i < right))
            uids.append(f"g{g}")
    return prompts, responses, scores, uids


def select(responses, scores, uids, pad: dict):
    """PAD's selection as the pad_sync trainer runs it (GRPO on the rewards, then the draw)."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from revisual_verl.pad.estimator import pad_select_rows, set_progress

    width = max(len(r) for r in responses)
    lengths = torch.tensor([len(r) for r in responses])
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    rewards = torch.zeros(len(responses), width)
    rewards[torch.arange(len(responses)), lengths - 1] = torch.tensor(scores)
    set_progress(0, 1)
    config = OmegaConf.create({"pad": pad, "norm_adv_by_std_in_grpo": True})
    return pad_select_rows(rewards, mask, np.array(uids, dtype=object), config)


def padding_row(prompts, responses, eos_token_id: int = 2):
    """One of verl's padding rows, built by verl's own template (what upsample_batch_to_divisible_size stores)."""
    import torch
    from verl.trainer.ppo.padding_utils import construct_minimal_padding_template

    source = {"prompts": prompts[0], "responses": responses[0], "response_mask": torch.ones(len(responses[0]))}
    sample, _ = construct_minimal_padding_template(source, {}, eos_token_id)
    return sample["prompts"], sample["responses"], sample["response_mask"]


def engine_batch(rows, micro_batch: int, global_batch: int, calculate_entropy: bool):
    """Rows (prompt, response, response_mask, loss_mask, advantage) as verl's actor engine receives them."""
    import torch
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.padding import left_right_2_no_padding

    batch = len(rows)
    prompt_width = max(len(r[0]) for r in rows)
    width = max(len(r[1]) for r in rows)
    prompt_ids = torch.zeros(batch, prompt_width, dtype=torch.long)
    prompt_mask = torch.zeros(batch, prompt_width, dtype=torch.long)
    response_ids = torch.zeros(batch, width, dtype=torch.long)
    response_valid = torch.zeros(batch, width, dtype=torch.long)
    response_mask = torch.zeros(batch, width, dtype=torch.long)
    loss_mask = torch.zeros(batch, width, dtype=torch.long)
    advantages = torch.zeros(batch, width)
    for i, (prompt, response, r_mask, l_mask, adv) in enumerate(rows):
        prompt_ids[i, prompt_width - len(prompt) :] = prompt
        prompt_mask[i, prompt_width - len(prompt) :] = 1
        response_ids[i, : len(response)] = response
        response_valid[i, : len(response)] = 1
        response_mask[i, : len(response)] = r_mask
        loss_mask[i, : len(response)] = l_mask
        advantages[i, : len(response)] = adv
    attention_mask = torch.cat([prompt_mask, response_valid], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0).unsqueeze(1).expand(batch, 4, -1).contiguous()
    data = TensorDict(
        {
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "response_mask": response_mask,
            "position_ids": position_ids,
            "old_log_probs": torch.full((batch, width), -4.0),
            "advantages": advantages,
        },
        batch_size=[batch],
    )
    data = left_right_2_no_padding(data)
    data["loss_mask"] = loss_mask
    tu.assign_non_tensor(
        data,
        temperature=1.0,
        use_remove_padding=False,
        use_dynamic_bsz=False,
        micro_batch_size_per_gpu=micro_batch,
        global_batch_size=global_batch,
        calculate_entropy=calculate_entropy,
        use_fused_kernels=False,
    )
    return data


def time_passes(engine, loss_fn, rows, args) -> dict:
    """verl's three passes after generation on ``rows``: old log-prob, reference log-prob, actor update."""
    times = {}
    start = time.perf_counter()
    with engine.eval_mode():
        engine.infer_batch(engine_batch(rows, args.micro_batch, len(rows), calculate_entropy=True))
    times["old_log_prob"] = time.perf_counter() - start
    start = time.perf_counter()
    with engine.eval_mode():
        engine.infer_batch(engine_batch(rows, args.micro_batch, len(rows), calculate_entropy=False))
    times["ref"] = time.perf_counter() - start
    start = time.perf_counter()
    with engine.train_mode():
        for first in range(0, len(rows), args.mini_batch):
            chunk = rows[first : first + args.mini_batch]
            engine.train_batch(engine_batch(chunk, args.micro_batch, args.mini_batch, False), loss_function=loss_fn)
    times["update_actor"] = time.perf_counter() - start
    times["total"] = sum(times.values())
    return times


def child(args) -> None:
    import torch
    import torch.distributed as dist
    from engine_cpu_run import actor_loss, build_engine

    from revisual_verl.pad.distill import distilled_rows, distinct_rows

    dist.init_process_group("gloo", init_method=f"file://{tempfile.mktemp()}", rank=0, world_size=1)
    prompts, responses, scores, uids = make_step(args)
    num_rows = len(responses)
    assert num_rows % args.mini_batch == 0, "the rollout itself must fill whole mini-batches"
    pad_prompt, pad_response, pad_mask = padding_row(prompts, responses)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        small_model(model_dir)
        engine = build_engine(model_dir, "fsdp2", weight_decay=0.0, lr=1e-4)
        engine.initialize()
        loss_fn = actor_loss(entropy_coeff=0.0, freeze_vision_tower=False)
        ones = [torch.ones(len(r), dtype=torch.long) for r in responses]
        # Warm-up: the first passes pay for allocations and lazy initialisation.
        for _ in range(2):
            time_passes(engine, loss_fn, [(p, r, m, m, 0.0) for p, r, m in zip(prompts, responses, ones)], args)

        def padded(rows):
            return rows + [(pad_prompt, pad_response, pad_mask, pad_mask, 0.0)] * (-len(rows) % args.mini_batch)

        plans = []
        for label, pad in PLANS.items():
            result = select(responses, scores, uids, pad)
            weights = result.weights.long().tolist()
            seq_adv = result.seq_adv.tolist()
            masked = [
                (prompts[i], responses[i], ones[i] * int(weights[i] > 0), ones[i] * weights[i], seq_adv[i] * weights[i])
                for i in range(num_rows)
            ]
            # What pad_sync's distilled mode builds: each drawn row once with weight m, or m copies.
            weighted = [
                (prompts[i], responses[i], ones[i], ones[i] * weights[i], seq_adv[i] * weights[i])
                for i in distinct_rows(result.weights)
            ]
            batches = {"masked": masked, "distilled": padded(weighted)}
            if pad.get("replacement", False):
                copied = [
                    (prompts[i], responses[i], ones[i], ones[i], seq_adv[i]) for i in distilled_rows(result.weights)
                ]
                batches["copies"] = padded(copied)
            real = {"masked": num_rows, "distilled": len(weighted), "copies": sum(weights)}
            plans.append((label, batches, real))
        # Every (plan, mode) once per round, so that load from other work on the machine spreads over all.
        runs = {(label, mode): [] for label, batches, _ in plans for mode in batches}
        for _ in range(args.repeats):
            for label, batches, _ in plans:
                for mode, rows in batches.items():
                    runs[(label, mode)].append(time_passes(engine, loss_fn, rows, args))
        for label, batches, real in plans:
            # The fastest of the rounds, phase by phase and for the whole (as timeit reports).
            best = {}
            for mode in batches:
                mode_runs = runs[(label, mode)]
                best[mode] = {phase: min(run[phase] for run in mode_runs) for phase in mode_runs[0]}
            results.append(
                {
                    "plan": label,
                    "rows": {mode: len(rows) for mode, rows in batches.items()},
                    "padding": {mode: len(rows) - real[mode] for mode, rows in batches.items()},
                    "updates": {mode: len(rows) // args.mini_batch for mode, rows in batches.items()},
                    "times": best,
                }
            )
    dist.destroy_process_group()
    report(results, num_rows, args)


def report(results, num_rows: int, args) -> None:
    print(
        f"PAD model passes after generation, one step of {num_rows} rows ({args.groups} groups x {args.n}), "
        f"mini-batch {args.mini_batch} rows, micro-batch {args.micro_batch}, best of {args.repeats}; seconds"
    )
    header = (
        f"{'keep':>8} {'mode':>9} {'rows':>5} {'pad':>4} {'updates':>7} "
        f"{'old_log_prob':>12} {'ref':>7} {'update':>7} {'total':>7} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for entry in results:
        masked_total = entry["times"]["masked"]["total"]
        for mode, t in entry["times"].items():
            print(
                f"{entry['plan']:>8} {mode:>9} {entry['rows'][mode]:>5} {entry['padding'][mode]:>4} "
                f"{entry['updates'][mode]:>7} {t['old_log_prob']:>12.3f} {t['ref']:>7.3f} {t['update_actor']:>7.3f} "
                f"{t['total']:>7.3f} {t['total'] / masked_total:>6.2f}"
            )
    last = next(entry for entry in results if entry["plan"] == "0.25")
    ratio = last["times"]["distilled"]["total"] / last["times"]["masked"]["total"]
    print(f"keep=0.25 distilled/masked time ratio {ratio:.2f}")
    released = next(entry for entry in results if entry["plan"] == "released")
    per_row = {mode: released["rows"][mode] / num_rows for mode in ("distilled", "copies")}
    weights, copies = per_row["distilled"], per_row["copies"]
    print(f"released settings: model-pass rows per rollout row {weights:.2f} (copies {copies:.2f})")


def main() -> None:
    args = parse_args()
    if os.environ.get(CHILD_FLAG) != "1":
        sys.exit(relaunch())
    child(args)


if __name__ == "__main__":
    main()
