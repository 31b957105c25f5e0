"""Pre-train the tiny model that the CPU learning run starts from, as Qwen2.5-VL is pre-trained before the recipe.

    python -m revisual_verl.synthetic_task.pretrain --output outputs/quickstart/base-model

A tiny Qwen2.5-VL (revisual_verl.cpu.tiny_model's tokenizer and processor, a larger language model) learns
what the recipe takes for granted in a real base model, none of it the task itself:

- reading a picture: "which digit is shown?" on seven-segment renderings;
- writing a pictured digit inside text ("Repeat: 7 <image> 5." -> "7 3 5");
- single-digit addition facts as raw text ("4+7=11"), some with the first operand a picture;
- and, beside the language-model loss, each picture's vision output turned toward the word embedding of the
  digit it shows (``alignment_loss``), so that what the text-only cold start teaches about written digits
  applies to pictured ones.

The recipe's format (reasoning in <think></think>, the answer in \\boxed{}) and the multi-step problems
are left to the recipe's stages. This is the project's own plain-torch loop (a base model's pre-training
is not part of the recipe), seeded, a minute or two on two CPU cores. Nothing it writes is committed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from revisual_verl.synthetic_task.provenance import StaleOutput, make_stamp, reusable, write_stamp

IMAGE_TOKENS = "<|vision_start|><|image_pad|><|vision_end|>"
# A pictured digit reaches the language model as one token. verl's rollout first enlarges every picture to at least
# four tokens' worth (qwen_vl_utils); the processor, bounded to one token's pixels (saved with the base, and the
# learning run's data.mm_processor_kwargs), shrinks it back. Measured with four tokens per picture: the text-only
# cold start no longer carried over to image problems (held-out image accuracy at chance, 8%). One token is needed,
# not enough: the carry-over also needs the alignment term (ALIGN_WEIGHT below).
PICTURE_PIXELS = 28 * 28


@dataclass(frozen=True)
class BaseModelShape:
    hidden_size: int = 128
    layers: int = 4
    # A fresh vision merger's output is tiny next to the text embeddings; scaled up, the picture reaches
    # the language model from the first step (without it, reading the digit took several times longer).
    merger_init_scale: float = 20.0


@dataclass
class Sample:
    text: str  # the full prompt, placeholders included
    images: list
    target: str  # the tokens that carry the loss
    digits: tuple[int, ...] = ()  # the digit each picture shows, in the order of ``images``


def _chat(processor, parts: list) -> str:
    content = [{"type": "image"} if part is None else {"type": "text", "text": part} for part in parts]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def describe_sample(rng: random.Random, processor, render) -> Sample:
    digit = rng.randrange(10)
    return Sample(
        _chat(processor, [None, "Which digit is shown?"]), [render(digit, rng)], f"{digit}<|im_end|>", (digit,)
    )


def repeat_sample(rng: random.Random, processor, render) -> Sample:
    digits = [rng.randrange(10) for _ in range(rng.randint(2, 4))]
    parts, images, pictured, text = [], [], [], "Repeat:"
    for digit in digits:
        if rng.random() < 0.5:
            parts += [text + " ", None]
            images.append(render(digit, rng))
            pictured.append(digit)
            text = ""
        else:
            text += f" {digit}"
    parts.append(text + ".")
    return Sample(_chat(processor, parts), images, " ".join(map(str, digits)) + "<|im_end|>", tuple(pictured))


def fact_sample(rng: random.Random, processor, render) -> Sample:
    first = rng.randrange(19) if rng.random() < 0.5 else rng.randrange(10)
    second = rng.randrange(10)
    if first < 10 and rng.random() < 0.4:
        return Sample(f"{IMAGE_TOKENS}+{second}=", [render(first, rng)], f"{first + second}<|endoftext|>", (first,))
    return Sample(f"{first}+{second}=", [], f"{first + second}<|endoftext|>")


# The mix's shares of picture reading and copying; addition facts take the rest. The facts get the most because
# the cold start's worked solutions are only as right as they are (measured, greedy on fresh samples after the
# decayed rate below: facts at 45% of the mix, sums 70%; at 60%, sums 90%; RL's gains with this base: README).
DESCRIBE_SHARE = 0.15
REPEAT_SHARE = 0.25


def mixed_sample(rng: random.Random, processor, render) -> Sample:
    draw = rng.random()
    if draw < DESCRIBE_SHARE:
        return describe_sample(rng, processor, render)
    if draw < DESCRIBE_SHARE + REPEAT_SHARE:
        return repeat_sample(rng, processor, render)
    return fact_sample(rng, processor, render)


def decayed_rate_factor(step: int, steps: int, floor: float = 0.05) -> float:
    """The learning rate's factor at ``step`` (0-based) of ``steps``: linear from 1 down to ``floor``, never below.

    At a constant rate the mix ended with its addition facts half learned (greedy sums 34%, 70% with this decay).
    """
    return max(floor, 1.0 - step / max(steps, 1))  # a phase of 0 steps never trains


def rollout_view(image, patch_size: int = 14):
    """``image`` as verl's rollout hands it to the processor: through qwen_vl_utils' resize, which verl's RL
    dataset applies to every picture (at least four merged patches) and a direct processor call does not.

    A 28-pixel digit arrives at the rollout as 56x56; a base pre-trained on the 28-pixel view read verl's pictures
    at chance (measured: held-out image accuracy 5.5% through verl, 31.5% on the pre-training view).
    """
    from qwen_vl_utils import fetch_image

    return fetch_image({"image": image}, image_patch_size=patch_size)


def base_processor():
    """The base model's processor: the tiny tokenizer without a default system turn, pictures bounded to one token."""
    from revisual_verl.cpu.tiny_model import (
        NO_DEFAULT_SYSTEM_CHAT_TEMPLATE,
        build_tiny_qwen2_vl_processor,
        build_tiny_tokenizer,
    )

    tokenizer = build_tiny_tokenizer(NO_DEFAULT_SYSTEM_CHAT_TEMPLATE)
    return build_tiny_qwen2_vl_processor(tokenizer, min_pixels=PICTURE_PIXELS, max_pixels=PICTURE_PIXELS)


def encode(sample: Sample, processor):
    """The processor's tensors for ``sample``, its pictures seen as the rollout will show them."""
    patch_size = getattr(processor.image_processor, "patch_size", 14)
    images = [rollout_view(image, patch_size) for image in sample.images]
    return processor(text=[sample.text], images=images or None, return_tensors="pt")


def _batch(samples: list[Sample], processor, tokenizer):
    import torch

    rows, masks, pixel_values, grids, pictured = [], [], [], [], []
    for sample in samples:
        encoded = encode(sample, processor)
        prompt = encoded["input_ids"][0].tolist()
        target = tokenizer(sample.target, add_special_tokens=False)["input_ids"]
        rows.append(prompt + target)
        masks.append([0] * len(prompt) + [1] * len(target))
        if sample.images:
            if len(sample.digits) != len(sample.images):
                raise ValueError(
                    f"{len(sample.images)} pictures but {len(sample.digits)} pictured digits: {sample.text!r}"
                )
            pixel_values.append(encoded["pixel_values"])
            grids.append(encoded["image_grid_thw"])
            pictured.extend(sample.digits)
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    attention = torch.zeros(len(rows), width, dtype=torch.long)
    loss_mask = torch.zeros(len(rows), width)
    for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        loss_mask[i, : len(row)] = torch.tensor(mask, dtype=torch.float)
    extra = {"pixel_values": torch.cat(pixel_values), "image_grid_thw": torch.cat(grids)} if pixel_values else {}
    return ids, attention, loss_mask, extra, pictured


# The alignment term's weight against the language-model loss (1 - cos is at most 2). Measured on the seed-0 base,
# then the learning run from it: without the term, pictures 94%, copying 4%, sums 90% greedy, and the text-only cold
# start left image problems at chance (6.5%); with it at 1.0, pictures 100%, copying 74%, sums 100%, and image
# problems at 29.5% after the cold start (seed 2: 38.0%; seed 1's base aligned as well, but its weaker cold start
# left them at 8.0%). Pulling the vision output onto the embedding itself fought the
# language-model loss instead: squared distance, pictures 20-56%; the cosine term plus a log-norm-ratio term, 78%.
ALIGN_WEIGHT = 1.0


def digit_token_id(tokenizer, digit: int) -> int:
    """The one token that writes ``digit``; a tokenizer that needs more has no word embedding to align with."""
    ids = tokenizer(str(digit), add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"the tokenizer writes the digit {digit} as {len(ids)} tokens {ids}; alignment needs one")
    return ids[0]


def alignment_loss(model, extra: dict, pictured: list[int], tokenizer):
    """How far each picture's vision output points from the word embedding of the digit it shows: mean of
    1 - cos(v, e) over the pictures, the embeddings held fixed (the norm is left to the language-model loss).

    A projector pre-trained into the word-embedding space (as LLaVA's first stage trains its projector) lets what
    the language model learns about a written digit apply to a pictured one.
    """
    import torch

    if not pictured:
        return torch.zeros(())
    features = model.get_image_features(extra["pixel_values"], extra["image_grid_thw"]).pooler_output
    features = torch.cat(list(features))
    if features.shape[0] != len(pictured):
        raise ValueError(f"{features.shape[0]} vision tokens for {len(pictured)} pictures: one token each expected")
    ids = torch.tensor([digit_token_id(tokenizer, digit) for digit in pictured])
    words = model.get_input_embeddings()(ids).detach()
    return (1.0 - torch.nn.functional.cosine_similarity(features, words, dim=-1)).mean()


def skill_accuracy(model, processor, tokenizer, render, count: int = 50, seed: int = 10_000) -> dict[str, float]:
    """Greedy accuracy of each pre-training skill on fresh samples (seeds past the training stream's)."""
    import torch

    makers = {"pictures": describe_sample, "copying": repeat_sample, "sums": fact_sample}
    out = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, make in makers.items():
            rng = random.Random(seed)
            right = 0
            for _ in range(count):
                sample = make(rng, processor, render)
                encoded = encode(sample, processor)
                target = tokenizer(sample.target, add_special_tokens=False)["input_ids"]
                generated = model.generate(**encoded, max_new_tokens=len(target), do_sample=False)
                right += generated[0, encoded["input_ids"].shape[1] :].tolist() == target
            out[name] = right / count
    model.train(was_training)
    return out


def _train(
    model,
    make_sample,
    steps: int,
    batch: int,
    lr: float,
    rng,
    processor,
    tokenizer,
    label: str,
    log,
    decay: bool,
    align_weight: float = 0.0,
) -> None:
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, (lambda step: decayed_rate_factor(step, steps)) if decay else (lambda step: 1.0)
    )
    start = time.monotonic()
    for step in range(steps):
        ids, attention, loss_mask, extra, pictured = _batch(
            [make_sample(rng) for _ in range(batch)], processor, tokenizer
        )
        logits = model(input_ids=ids, attention_mask=attention, **extra).logits[:, :-1]
        mask = loss_mask[:, 1:]
        per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        loss = (per_token * mask.reshape(-1)).sum() / mask.sum()
        align = alignment_loss(model, extra, pictured, tokenizer) if align_weight else torch.zeros(())
        optimizer.zero_grad()
        (loss + align_weight * align).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step_lr = schedule.get_last_lr()[0]
        schedule.step()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            elapsed = time.monotonic() - start
            log(
                f"  pre-training {label}: step {step + 1}/{steps}, loss {loss.item():.3f},"
                f" alignment {align.item():.3f}, lr {step_lr:.2g} ({elapsed:.0f} s)"
            )


def new_base_model(tokenizer, shape: BaseModelShape = BaseModelShape(), seed: int = 0):
    """The untrained base model: a tiny Qwen2.5-VL of ``shape``, its weights drawn with ``seed``."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from revisual_verl.cpu.tiny_model import tiny_qwen25_vl_config

    config = tiny_qwen25_vl_config(tokenizer, hidden_size=shape.hidden_size, layers=shape.layers)
    text = config.text_config
    # Qwen2.5-VL's mrope sections (2, 2, 4) need head_dim 16: heads grow with the width.
    text.head_dim = 16
    text.num_attention_heads = shape.hidden_size // 16
    text.num_key_value_heads = max(1, shape.hidden_size // 32)
    text.intermediate_size = 4 * shape.hidden_size
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".merger.mlp." in name:
                param.mul_(shape.merger_init_scale)
    return model


# The sources a base's weights depend on (its tokenizer and processor come from tiny_model).
BASE_SOURCES = (
    "revisual_verl.synthetic_task.pretrain",
    "revisual_verl.synthetic_task.digits",
    "revisual_verl.cpu.tiny_model",
)


def base_stamp(
    seed: int = 0,
    shape: BaseModelShape = BaseModelShape(),
    describe_steps: int = 100,
    mixed_steps: int = 800,
    batch: int = 32,
    lr: float = 1e-3,
    align_weight: float = ALIGN_WEIGHT,
) -> dict:
    settings = dict(
        seed=seed,
        **asdict(shape),
        describe_steps=describe_steps,
        mixed_steps=mixed_steps,
        batch=batch,
        lr=lr,
        align_weight=align_weight,
    )
    return make_stamp(settings, BASE_SOURCES)


def build_base_model(
    output: str | Path,
    seed: int = 0,
    shape: BaseModelShape = BaseModelShape(),
    describe_steps: int = 100,
    mixed_steps: int = 800,
    batch: int = 32,
    lr: float = 1e-3,
    log=print,
    align_weight: float = ALIGN_WEIGHT,
) -> Path:
    """Build, pre-train and save (weights, tokenizer, processor) the base model into ``output``."""
    from transformers import GenerationConfig

    from revisual_verl.synthetic_task.digits import render_digit

    output = Path(output)
    processor = base_processor()
    tokenizer = processor.tokenizer
    model = new_base_model(tokenizer, shape, seed)
    text = model.config.text_config
    rng = random.Random(seed)
    model.train()
    _train(
        model,
        lambda r: describe_sample(r, processor, render_digit),
        describe_steps,
        batch,
        lr,
        rng,
        processor,
        tokenizer,
        "pictures",
        log,
        decay=False,
        align_weight=align_weight,
    )
    _train(
        model,
        lambda r: mixed_sample(r, processor, render_digit),
        mixed_steps,
        batch,
        lr,
        rng,
        processor,
        tokenizer,
        "pictures, copying and sums",
        log,
        decay=True,
        align_weight=align_weight,
    )
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=text.eos_token_id, pad_token_id=text.pad_token_id)
    skills = skill_accuracy(model, processor, tokenizer, render_digit)
    log("  base model, greedy accuracy on fresh samples: " + ", ".join(f"{k} {v:.0%}" for k, v in skills.items()))
    # Written beside, then renamed: a directory named ``output`` is always a whole model.
    partial = output.with_name(output.name + ".partial")
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    write_stamp(partial, base_stamp(seed, shape, describe_steps, mixed_steps, batch, lr, align_weight))
    partial.replace(output)
    return output


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m revisual_verl.synthetic_task.pretrain", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--output",
        required=True,
        help="directory to write the Hugging Face model into (must not exist, unless --reuse)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="an existing --output pre-trained with these settings by this tree (its made_with.json) is kept; "
        "one made otherwise is refused, naming what differs",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the pre-training data (default 0)")
    parser.add_argument("--hidden-size", type=int, default=BaseModelShape.hidden_size)
    parser.add_argument("--layers", type=int, default=BaseModelShape.layers)
    parser.add_argument("--describe-steps", type=int, default=100, help="steps on pictures alone (default 100)")
    parser.add_argument("--mixed-steps", type=int, default=800, help="steps on the whole mix (default 800)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--align-weight",
        type=float,
        default=ALIGN_WEIGHT,
        help=f"weight of the term pulling each picture's vision output toward its digit's word embedding "
        f"(default {ALIGN_WEIGHT}; 0 leaves it out)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.align_weight < 0:
        parser.error(f"--align-weight must be 0 or more, got {args.align_weight}")
    shape = BaseModelShape(hidden_size=args.hidden_size, layers=args.layers)
    wanted = base_stamp(args.seed, shape, args.describe_steps, args.mixed_steps, args.batch, args.lr, args.align_weight)
    if args.reuse:
        try:
            if reusable(Path(args.output), wanted, "a base model", ("config.json",)):
                print(f"{args.output}: pre-trained with these settings by this tree; reused")
                return 0
        except StaleOutput as error:
            print(f"pretrain: error: {error}", file=sys.stderr)
            return 2
    if Path(args.output).exists():
        parser.error(f"{args.output} exists; move it away, choose another --output, or pass --reuse")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    path = build_base_model(
        args.output,
        args.seed,
        shape,
        args.describe_steps,
        args.mixed_steps,
        args.batch,
        args.lr,
        align_weight=args.align_weight,
    )
    print(f"base model written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
