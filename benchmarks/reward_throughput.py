"""Throughput, latency and agreement of the ``revisual`` accuracy check against verl's math_verify scorer.

Generates a reproducible step batch (groups of 8 rollouts per prompt): right answers in several
equivalent spellings, wrong answers, multi-part answers (two values, points or roots, in one box or several,
right and wrong, against ground truths written as ``a, b`` or as several boxes), responses without an answer
and pathological ones (repetition
loops, 32k-character lines, deep nesting, unbalanced braces, huge numbers, code in ``\\boxed{}``, answers
shaped to make a backtracking regular expression blow up), with
lengths up to 8,192 tokens and a mean near 3,000. Both scorers score the same batch on the same cores:

* revisual: the reward loop's way, every response awaited concurrently on one asyncio loop;
* verl: ``verl.utils.reward_score.math_verify.compute_score`` from as many threads as there are cores.

The revisual run also reports the event loop's longest stall: a ticker task on the same loop wakes every
5 ms, and the largest gap between its wake-ups is in-process work (extraction, cheap rules, screening) that
blocked every other request. Latency is the compute time of one verdict: for revisual the in-process
part plus the worker's service time (queueing for a free worker excluded); for verl the wall time of one
call with no more calls in flight than cores. Agreement with verl's scorer (math-verify reading the whole
response) is reported per category and per kind of multi-part problem. Not run in CI.

    python benchmarks/reward_throughput.py            # 4,096 responses, a few minutes on 2 cores
    python benchmarks/reward_throughput.py --n 512    # quicker
"""

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

GROUP_SIZE = 8
MAX_TOKENS = 8192

# (ground truth, right spellings, wrong answers, weight); several spellings need the symbolic check.
ANSWER_KINDS = [
    ("integer", 40),
    ("fraction", 12),
    ("decimal", 8),
    ("choice", 15),
    ("radical", 8),
    ("pi", 5),
    ("interval", 4),
    ("polynomial", 4),
    ("degrees", 4),
    ("multi_pair", 6),
    ("multi_points", 4),
    ("multi_roots", 4),
]
# Problems with several answers (two values, two points, two roots), answered in one box or several; their
# responses make up the multi_part category (right and wrong answers), apart from those drawn as no_answer or
# pathological.
MULTI_PART_KINDS = ("multi_pair", "multi_points", "multi_roots")
CATEGORY_WEIGHTS = [("right", 45), ("wrong", 35), ("no_answer", 10), ("pathological", 10)]
CATEGORIES = ("right", "wrong", "multi_part", "no_answer", "pathological")
PATHOLOGIES = [
    "repetition",
    "long_line",
    "deep_nesting",
    "unbalanced",
    "huge_power",
    "huge_factorial",
    "tower",
    "code",
    "regex_bomb",
]
# Answers that took a backtracking screen seconds in-process (review finding 2), at the answer length limit.
REGEX_BOMBS = ["{" * 250 + "^" * 490 + "}" * 250, "1^" + " " * 990 + "x", "{" + "1" * 990 + "!"]
TICK_S = 0.005
WORDS = (
    "we",
    "have",
    "the",
    "so",
    "then",
    "let",
    "consider",
    "note",
    "that",
    "therefore",
    "thus",
    "and",
    "substitute",
    "compute",
    "check",
    "which",
    "gives",
    "since",
    "implies",
    "equation",
    "value",
    "term",
)


@dataclass
class Sample:
    text: str
    ground_truth: str
    num_tokens: int
    category: str
    kind: str


def make_problem(rng: random.Random) -> tuple[str, str, list[str], list[str]]:
    kind = rng.choices([k for k, _ in ANSWER_KINDS], weights=[w for _, w in ANSWER_KINDS])[0]
    if kind == "integer":
        value = rng.randint(-50, 2000)
        right, wrong = [str(value)] * 6 + [f"{value}.0", f"x = {value}"], [str(value + rng.choice([-2, -1, 1, 3, 10]))]
    elif kind == "fraction":
        a, b = rng.randint(1, 30), rng.randint(2, 31)
        while a % b == 0:
            b += 1
        gt = f"\\frac{{{a}}}{{{b}}}"
        right = [gt] * 4 + [f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}"]
        if b in (2, 4, 5, 8, 10, 20, 25):
            right.append(str(a / b))
        wrong = [f"\\frac{{{b}}}{{{a}}}", f"\\frac{{{a + 1}}}{{{b}}}"]
        return kind, gt, boxed_answers(right), boxed_answers(wrong)
    elif kind == "decimal":
        value = round(rng.uniform(0.1, 99.9), 1)
        right, wrong = [str(value)] * 5 + [f"{value}0"], [str(round(value + 0.2, 1)), str(round(value * 2, 1))]
    elif kind == "choice":
        letter = rng.choice("ABCD")
        right = [letter] * 5 + [f"({letter})", f"\\text{{{letter}}}", f"\\text{{({letter})}}"]
        wrong = [c for c in "ABCD" if c != letter]
    elif kind == "radical":
        a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
        gt = f"{a}\\sqrt{{{b}}}"
        right, wrong = (
            [gt] * 4 + [f"{a}\\sqrt{b}", f"\\sqrt{{{a * a * b}}}"],
            [f"{b}\\sqrt{{{a}}}", f"{a + 1}\\sqrt{{{b}}}"],
        )
    elif kind == "pi":
        d = rng.choice([2, 3, 4, 6, 8, 12])
        gt = f"\\frac{{\\pi}}{{{d}}}"
        right, wrong = [gt] * 4 + [f"\\pi/{d}", f"\\dfrac{{\\pi}}{{{d}}}"], [f"\\frac{{\\pi}}{{{d * 2}}}", f"{d}\\pi"]
    elif kind == "interval":
        a, b = sorted(rng.sample(range(-10, 10), 2))
        gt = f"({a}, {b}]"
        right, wrong = [gt] * 4 + [f"({a},{b}]", f"\\left({a}, {b}\\right]"], [f"[{a}, {b}]", f"({a}, {b + 1}]"]
    elif kind == "polynomial":
        a = rng.randint(1, 9)
        gt = f"x^2+{2 * a}x+{a * a}"
        right, wrong = [gt] * 3 + [f"(x+{a})^2", f"x^{{2}} + {2 * a} x + {a * a}"], [f"x^2+{a}x+{a * a}", f"(x-{a})^2"]
    elif kind == "degrees":
        value = rng.choice([15, 30, 36, 45, 60, 72, 90, 120, 135])
        gt = f"{value}^\\circ"
        right, wrong = [gt] * 3 + [f"{value}^{{\\circ}}", str(value)], [f"{180 - value}^\\circ", str(value + 15)]
    else:
        return make_multi_part(rng, kind)
    return kind, right[0], boxed_answers(right), boxed_answers(wrong)


def boxed_answers(answers: list[str]) -> list[str]:
    return [f"$\\boxed{{{answer}}}$" for answer in answers]


def make_multi_part(rng: random.Random, kind: str) -> tuple[str, str, list[str], list[str]]:
    """(kind, ground truth, right answer texts, wrong answer texts) of a problem with two answers.

    The answer texts are whole final-answer phrases (several boxes, or one box holding both parts), and the
    ground truth is either comma-separated or itself written as several boxes.
    """
    if kind == "multi_pair":
        a, b = rng.sample(range(-20, 40), 2)
        parts, wrong_parts = [str(a), str(b)], [str(a), str(b + rng.choice([1, 2, -3]))]
        right = [
            f"$\\boxed{{{a}}}$ and $\\boxed{{{b}}}$",
            f"\\boxed{{{a}}} and \\boxed{{{b}}}",
            f"$\\boxed{{{a}, {b}}}$",
            f"$x_1 = \\boxed{{{a}}}, x_2 = \\boxed{{{b}}}$",
            f"$\\boxed{{{b}}}$, $\\boxed{{{a}}}$",
        ]
    elif kind == "multi_points":
        a, b, c, d = (rng.randint(-9, 9) for _ in range(4))
        while (a, b) == (c, d):
            d += 1
        parts, wrong_parts = [f"({a}, {b})", f"({c}, {d})"], [f"({b}, {a})", f"({c}, {d})"]
        if (b, a) == (a, b) or (b, a) == (c, d):
            wrong_parts = [f"({a}, {b + 1})", f"({c}, {d})"]
        right = [
            f"$\\boxed{{({a}, {b})}} \\quad \\text{{and}} \\quad \\boxed{{({c}, {d})}}$",
            f"\\boxed{{({a},{b})}}, \\boxed{{({c},{d})}}",
            f"$\\boxed{{({a}, {b}), ({c}, {d})}}$",
            f"$(x, y) = \\boxed{{({a}, {b})}}$ or $(x, y) = \\boxed{{({c}, {d})}}$",
        ]
    else:  # multi_roots
        a, b = rng.sample(range(-12, 13), 2)
        parts, wrong_parts = [str(a), str(b)], [str(a), str(-b) if b else "1"]
        right = [
            f"$x = \\boxed{{{a}}}$ or $x = \\boxed{{{b}}}$",
            f"\\boxed{{x = {a}}} \\text{{ or }} \\boxed{{x = {b}}}",
            f"$\\boxed{{{a}}}, \\boxed{{{b}}}$",
        ]
    gt = ", ".join(parts) if rng.random() < 0.5 else " and ".join(f"\\boxed{{{part}}}" for part in parts)
    wrong = [
        f"$\\boxed{{{parts[-1]}}}$",  # only the last part
        f"$\\boxed{{{wrong_parts[0]}}}$ and $\\boxed{{{wrong_parts[1]}}}$",
        f"\\boxed{{{wrong_parts[0]}, {wrong_parts[1]}}}",
    ]
    return kind, gt, right, wrong


def reasoning(rng: random.Random, num_tokens: int) -> str:
    """Filler reasoning of about ``num_tokens`` tokens: words, inline maths, intermediate results."""
    parts, count = [], 0
    while count < num_tokens:
        roll = rng.random()
        if roll < 0.08:
            x, y = rng.randint(1, 99), rng.randint(1, 99)
            parts.append(f"${x} + {y} = {x + y}$")
            count += 9
        elif roll < 0.12:
            parts.append(f"\\frac{{{rng.randint(1, 9)}}}{{{rng.randint(2, 9)}}}")
            count += 8
        elif roll < 0.14:
            parts.append("\n\n")
            count += 1
        else:
            parts.append(rng.choice(WORDS))
            count += 1
    return " ".join(parts)


def pathological(rng: random.Random, kind: str, ground_truth: str, sentinel: str) -> tuple[str, int]:
    if kind == "repetition":
        return "<think>" + "Wait, let me recompute the sum. " * 1200, MAX_TOKENS
    if kind == "long_line":
        return "<think>" + "".join(
            rng.choice("0123456789+-=") for _ in range(32_000)
        ) + f"</think>\\boxed{{{ground_truth}}}", MAX_TOKENS
    if kind == "deep_nesting":
        depth = rng.randint(100, 400)
        return "<think>ok</think> \\boxed{" + "\\frac{1}{" * depth + "2" + "}{3}" * depth + "}", 8 * depth
    if kind == "unbalanced":
        return "<think>" + "\\left( \\frac{1}{ {x^{2" * 800 + " \\boxed{\\frac{1}{", 6000
    if kind == "huge_power":
        return "<think>big</think> so \\boxed{10^{10000}}", 40
    if kind == "huge_factorial":
        return "<think>big</think> so \\boxed{(10^{100})!}", 40
    if kind == "tower":
        return f"<think>big</think> so \\boxed{{{rng.randint(7, 9)}^{{9^{{9}}}}}}", 40
    if kind == "regex_bomb":
        return f"<think>hmm</think> \\boxed{{{rng.choice(REGEX_BOMBS)}}}", 300
    # code: if anything evaluated it, the sentinel file would appear
    return f"<think>run</think> \\boxed{{__import__('os').system('touch {sentinel}')}}", 60


def make_batch(n: int, seed: int, sentinel: str) -> list[Sample]:
    rng = random.Random(seed)
    samples: list[Sample] = []
    while len(samples) < n:
        kind, gt, right, wrong = make_problem(rng)
        for _ in range(GROUP_SIZE):
            category = rng.choices([c for c, _ in CATEGORY_WEIGHTS], weights=[w for _, w in CATEGORY_WEIGHTS])[0]
            num_tokens = int(min(MAX_TOKENS, max(150, rng.lognormvariate(7.85, 0.55))))
            if category == "pathological":
                patho = rng.choice(PATHOLOGIES)
                text, num_tokens = pathological(rng, patho, gt, sentinel)
                samples.append(Sample(text, gt, num_tokens, category, patho))
                continue
            body = "<think>" + reasoning(rng, num_tokens - 20)
            if category == "no_answer":
                samples.append(Sample(body, gt, MAX_TOKENS if rng.random() < 0.7 else num_tokens, category, kind))
                continue
            answer = rng.choice(right if category == "right" else wrong)
            if kind in MULTI_PART_KINDS:
                category = "multi_part"
            text = body + f"</think>\n\nTherefore, the final answer is {answer}."
            samples.append(Sample(text, gt, num_tokens, category, kind))
    return samples[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run_revisual(samples: list[Sample], settings) -> tuple[float, list[float], list[float], object, float]:
    """(seconds, accuracies, latencies, checker, the event loop's longest stall in seconds)."""
    from revisual_verl.reward.composite import breakdown, checker_for

    checker = checker_for(settings)
    longest_stall = 0.0
    done = asyncio.Event()

    async def ticker():
        nonlocal longest_stall
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            longest_stall = max(longest_stall, now - last - TICK_S)
            last = now

    tick_task = asyncio.create_task(ticker())

    async def one(sample: Sample):
        verdict = await checker.check_async(sample.text, sample.ground_truth)
        result = breakdown(sample.text, sample.num_tokens, verdict, settings)
        return result.accuracy, verdict.latency_s

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(s) for s in samples))
    elapsed = time.perf_counter() - started
    done.set()
    await tick_task
    return elapsed, [o[0] for o in outcomes], [o[1] for o in outcomes], checker, longest_stall


def run_verl(samples: list[Sample], threads: int) -> tuple[float, list[float], list[float]]:
    from verl.utils.reward_score import math_verify as verl_math_verify

    def one(sample: Sample):
        started = time.perf_counter()
        score = verl_math_verify.compute_score(sample.text, sample.ground_truth)
        return float(score), time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        outcomes = list(executor.map(one, samples))
    elapsed = time.perf_counter() - started
    return elapsed, [o[0] for o in outcomes], [o[1] for o in outcomes]


def main(argv=None) -> int:
    from revisual_verl.reward.accuracy import usable_cpus
    from revisual_verl.reward.settings import RewardSettings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096, help="responses in the batch (default 4096)")
    parser.add_argument("--seed", type=int, default=0, help="batch generator seed (default 0)")
    parser.add_argument("--timeout", type=float, default=5.0, help="revisual symbolic timeout in s (default 5)")
    parser.add_argument("--workers", type=int, default=None, help="revisual worker processes (default: CPUs)")
    parser.add_argument("--baseline-threads", type=int, default=None, help="threads calling verl (default: CPUs)")
    parser.add_argument("--skip-verl", action="store_true", help="only run the revisual scorer")
    parser.add_argument("--show-disagreements", type=int, default=5, help="print this many disagreements")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    logging.disable(logging.WARNING)  # both scorers log every timeout; the table reports them

    cpus = usable_cpus()
    workers = args.workers or cpus
    sentinel = os.path.join(tempfile.mkdtemp(prefix="reward-bench-"), "code-was-evaluated")
    samples = make_batch(args.n, args.seed, sentinel)
    tokens = [s.num_tokens for s in samples]
    counts = {c: sum(s.category == c for s in samples) for c in CATEGORIES}
    print(
        f"batch: {len(samples)} responses, seed {args.seed}, tokens mean {statistics.mean(tokens):.0f} "
        f"max {max(tokens)}, {counts}; {cpus} CPUs",
        flush=True,
    )

    settings = RewardSettings(timeout_s=args.timeout, workers=workers)
    # Warm both pools (worker start-up, imports) so the timed runs measure scoring.
    warm = [Sample("\\boxed{\\sqrt{2}}", "\\sqrt{2}", 5, "right", "warm")] * workers
    asyncio.run(run_revisual(warm, settings))
    rev_time, rev_acc, rev_lat, checker, rev_stall = asyncio.run(run_revisual(samples, settings))
    timeouts = checker.counts["timeout"]
    print(f"revisual done in {rev_time:.1f} s", flush=True)

    rows = [("revisual", rev_time, rev_lat, f"{rev_stall:.3f}")]
    verl_acc = None
    if not args.skip_verl:
        threads = args.baseline_threads or cpus
        run_verl(warm[:threads], threads)
        verl_time, verl_acc, verl_lat = run_verl(samples, threads)
        rows.append((f"verl math_verify ({threads} threads)", verl_time, verl_lat, "n/a"))
        print(f"verl done in {verl_time:.1f} s", flush=True)

    print()
    print(f"{'scorer':<32} {'resp/s':>9} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'loop stall s':>13}")
    for name, elapsed, latencies, stall in rows:
        print(
            f"{name:<32} {len(samples) / elapsed:9.1f} {percentile(latencies, 50):8.4f} "
            f"{percentile(latencies, 99):8.4f} {max(latencies):8.3f} {stall:>13}"
        )
    if verl_acc is not None:
        print(f"\nspeed-up: {rows[1][1] / rows[0][1]:.1f}x (target >= 10x)")
        clean = [i for i, s in enumerate(samples) if s.category != "pathological"]
        agree = sum((rev_acc[i] > 0) == (verl_acc[i] >= 1) for i in clean)
        print(
            f"agreement on {len(clean)} non-pathological responses: {100 * agree / len(clean):.2f}% (target >= 99.5%)"
        )
        groups = [(category, [i for i, s in enumerate(samples) if s.category == category]) for category in CATEGORIES]
        groups += [
            (f"  {kind}", [i for i, s in enumerate(samples) if s.category == "multi_part" and s.kind == kind])
            for kind in MULTI_PART_KINDS
        ]
        print("agreement per category (verl's scorer extracts from the whole response):")
        for category, idx in groups:
            if idx:
                same = sum((rev_acc[i] > 0) == (verl_acc[i] >= 1) for i in idx)
                print(
                    f"  {category:<15} {same}/{len(idx)} agree ({100 * same / len(idx):.2f}%); revisual accepts "
                    f"{sum(rev_acc[i] > 0 for i in idx)}, verl accepts {sum(verl_acc[i] >= 1 for i in idx)}"
                )
        shown = 0
        for i in range(len(samples)):
            if (rev_acc[i] > 0) != (verl_acc[i] >= 1) and shown < args.show_disagreements:
                from revisual_verl.reward.extract import extract_answer

                print(
                    f"  disagreement [{samples[i].category}/{samples[i].kind}] gt={samples[i].ground_truth!r} "
                    f"answer={extract_answer(samples[i].text)!r} tail={samples[i].text[-60:]!r} "
                    f"revisual={rev_acc[i]} verl={verl_acc[i]}"
                )
                shown += 1
    over = sum(latency > args.timeout for latency in rev_lat)
    print(
        f"\nrevisual: {timeouts} symbolic checks timed out and were killed; {over} responses over the "
        f"{args.timeout:g} s timeout (target 0); max latency {max(rev_lat):.3f} s"
    )
    print(f"code in \\boxed{{}} evaluated: {'YES' if os.path.exists(sentinel) else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
