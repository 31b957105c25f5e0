"""One optimizer step of verl's FSDP2 actor engine per case, on CPU; test support for test_engine_exactness.py.

Run in a subprocess set up like tests/engine/engine_cpu_run.py (CPU+gloo platform, revisual engine vendor,
tests/engine on PYTHONPATH). Reads a ``torch.save`` payload: the rollout's prompts and responses, and per
case the rows to train on (a row may repeat) with their advantages, response_mask and loss_mask. Every
case starts from the same tiny Qwen2.5-VL and takes one ``train_batch`` (forward, verl's ppo_loss, backward
over micro-batches, optimizer step). Writes the parameters after each case, the rollout's log-probs before
and after it, and what the engine saw.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile

import torch
import torch.distributed as dist
from engine_cpu_run import actor_loss, build_engine, save_tiny_model, snapshot

MICRO_BATCH = 2
# Off-policy by a few percent so verl's importance ratio is not 1 (and stays inside the clip range).
OLD_LOG_PROB_SHIFT = 0.05


def _padded(rows: list[torch.Tensor], width: int, dtype=None) -> torch.Tensor:
    out = torch.zeros(len(rows), width, dtype=dtype or rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _left_padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=rows[0].dtype)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = row
        mask[i, width - len(row) :] = 1
    return ids, mask


def engine_batch(prompts, responses, advantages, response_mask, loss_mask, old_log_probs):
    """Rows laid out as the actor engine receives them (verl's left_right_2_no_padding), loss_mask as given.
    Prompts may differ in length (verl's padding rows have 127 prompt tokens): they are left-padded."""
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.padding import left_right_2_no_padding

    batch = len(prompts)
    width = max(len(r) for r in responses)
    lengths = torch.tensor([len(r) for r in responses])
    response_valid = (torch.arange(width)[None] < lengths[:, None]).long()
    prompt_ids, prompt_valid = _left_padded(prompts)
    attention_mask = torch.cat([prompt_valid, response_valid], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0).unsqueeze(1).expand(batch, 4, -1).contiguous()
    response_ids = _padded(responses, width)
    data = TensorDict(
        {
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "response_mask": _padded(response_mask, width),
            "position_ids": position_ids,
            "old_log_probs": _padded(old_log_probs, width, torch.float32),
            "advantages": _padded(advantages, width, torch.float32),
        },
        batch_size=[batch],
    )
    data = left_right_2_no_padding(data)
    # verl's v1 trainer stores loss_mask next to response_mask; pad_sync writes a different one back.
    data["loss_mask"] = _padded(loss_mask, width)
    tu.assign_non_tensor(
        data,
        temperature=1.0,
        use_remove_padding=False,
        use_dynamic_bsz=False,
        micro_batch_size_per_gpu=MICRO_BATCH,
        global_batch_size=batch,
        calculate_entropy=False,
        use_fused_kernels=False,
    )
    return data


def rollout_log_probs(engine, prompts, responses) -> list[torch.Tensor]:
    """The rollout's log-probs under the initial weights, as verl recomputes old_log_probs."""
    from verl.workers.utils.padding import no_padding_2_padding

    ones = [torch.ones(len(r), dtype=torch.long) for r in responses]
    zeros = [torch.zeros(len(r)) for r in responses]

    def batch():
        return engine_batch(prompts, responses, zeros, ones, ones, zeros)

    with engine.eval_mode():
        log_probs = engine.infer_batch(batch())["model_output"]["log_probs"]
    padded = no_padding_2_padding(log_probs, batch())
    return [padded[i, : len(r)].detach().clone() for i, r in enumerate(responses)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payload", required=True, help="torch.save file written by the test")
    parser.add_argument("--out", required=True, help="where to torch.save the parameters after each case")
    parser.add_argument("--optimizer", default="SGD", help="torch.optim class name")
    parser.add_argument("--lr", type=float, default=1.0)
    args = parser.parse_args()
    payload = torch.load(args.payload, weights_only=True)
    prompts, responses = payload["prompts"], payload["responses"]
    # Rows after the rollout's: verl's padding rows as the trainer stored them (row ids continue the rollout's).
    extra = payload.get("extra_rows", [])
    all_prompts = prompts + [row["prompt"] for row in extra]
    all_responses = responses + [row["response"] for row in extra]

    dist.init_process_group("gloo", init_method=f"file://{tempfile.mktemp()}", rank=0, world_size=1)
    torch.use_deterministic_algorithms(True)
    loss_fn = actor_loss(entropy_coeff=0.0, freeze_vision_tower=False)
    result = {"cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        save_tiny_model(model_dir)

        def fresh_engine():
            # No weight decay and no clipping: the step is -lr * gradient, so it shows the loss scale.
            engine = build_engine(
                model_dir, "fsdp2", weight_decay=0.0, optimizer=args.optimizer, lr=args.lr, clip_grad=math.inf
            )
            engine.initialize()
            return engine

        engine = fresh_engine()
        result["engine_cls"] = type(engine).__name__
        result["before"] = snapshot(engine)
        full = rollout_log_probs(engine, prompts, responses)
        result["full_log_probs"] = full
        # Log-probs of each case's rows computed on that case's batch (as verl's old log-prob pass on it).
        result["case_log_probs"] = {}
        for name, case in payload["cases"].items():
            if case.get("infer", False):
                rows = case["rows"]
                result["case_log_probs"][name] = rollout_log_probs(
                    engine, [all_prompts[i] for i in rows], [all_responses[i] for i in rows]
                )
        old = [lp + OLD_LOG_PROB_SHIFT * torch.cos(torch.arange(len(lp)) + i) for i, lp in enumerate(full)]
        # verl's padding rows: never in the loss, so any old log-prob does.
        old += [torch.zeros(len(row["response"])) for row in extra]

        for n, (name, case) in enumerate(payload["cases"].items()):
            if n:
                engine = fresh_engine()
            rows = case["rows"]
            data = engine_batch(
                [all_prompts[i] for i in rows],
                [all_responses[i] for i in rows],
                case["advantages"],
                case["response_mask"],
                case["loss_mask"],
                [old[i] for i in rows],
            )
            with engine.train_mode():
                out = engine.train_batch(data, loss_function=loss_fn)
            result["cases"][name] = {
                "params": snapshot(engine),
                # The rollout's log-probs under the updated weights: which way the step moved each response.
                "after_log_probs": rollout_log_probs(engine, prompts, responses),
                "grad_norm": float(out["metrics"]["grad_norm"]),
                # forward_backward_batch stores the token-mean denominator it summed from loss_mask.
                "batch_num_tokens": int(data["batch_num_tokens"]),
                "micro_batches": len(out["loss"]),
                "loss": float(sum(out["loss"])),
            }
    dist.destroy_process_group()
    torch.save(result, args.out)


if __name__ == "__main__":
    main()
