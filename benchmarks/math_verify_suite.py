"""The recipe's verifier against math-verify on math-verify's own test suite.

    python benchmarks/math_verify_suite.py --suite PATH/TO/Math-Verify/tests [--show 40]

``--suite`` is a checkout of https://github.com/huggingface/Math-Verify's ``tests`` folder (fetch it
yourself; nothing is downloaded here). Its test files are read, not imported or run: every
``pytest.mark.parametrize`` case with a ``gold`` and a ``pred`` argument whose values are literals becomes one
(ground truth, response) pair. The ground truth is ``gold`` without its math delimiters; the response is
``pred`` itself when it has a ``\\boxed{}``, else ``pred`` boxed in the recipe's answer format
(``<think>...</think> The answer is $\\boxed{pred}$.``), the form a trained model writes. Both scorers then
read the same response:

* math-verify as verl scores it (``verl.utils.reward_score.math_verify.compute_score``: the whole response,
  the ground truth boxed);
* the ``revisual`` reward's accuracy check (its final boxed answer, screened in process, math-verify's
  ``verify`` in a worker for the rest).

Prints, per test file, the cases, how many got the same verdict and the disagreements either way, then the
disagreements themselves (boxed responses only; a passage with no box is counted on its own line, since the
recipe's reward reads only a boxed answer); the suite's own expected labels are shown beside them, though they
were written for other parse settings (extraction targets, precision, strictness) than verl's. A case whose
``gold`` is a passage (several answers or a sentence around a box) rather than one answer is counted as
skipped, and a (ground truth, response) pair met again (the suite repeats some under other settings) is counted
once. Not run in CI (it needs the suite's files).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    gold: str
    pred: str
    expected: int | None


def parametrize_cases(path: Path) -> tuple[list[Case], int]:
    """The literal (gold, pred) cases of one test file, and how many parametrize rows were not literals."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    cases, unreadable = [], 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not getattr(node.func, "attr", "") == "parametrize" or len(node.args) < 2:
            continue
        try:
            names = [name.strip() for name in ast.literal_eval(node.args[0]).split(",")]
        except (ValueError, AttributeError):
            continue
        if "gold" not in names or "pred" not in names or not isinstance(node.args[1], ast.List | ast.Tuple):
            continue
        label = next((name for name in ("expected", "result") if name in names), None)
        for row in node.args[1].elts:
            try:
                values = dict(zip(names, ast.literal_eval(row), strict=True))
            except (ValueError, TypeError, SyntaxError):
                unreadable += 1
                continue
            expected = values.get(label) if label else None
            cases.append(Case(path.name, row.lineno, values["gold"], values["pred"], expected))
    return cases, unreadable


def strip_delimiters(text: str) -> str:
    text = text.strip()
    for opening, closing in DELIMITERS:
        if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
            return text[len(opening) : -len(closing)].strip()
    return text


def ground_truth_of(gold: str) -> str | None:
    """``gold`` as a dataset's ground truth, or None when it is a passage rather than one answer."""
    answer = strip_delimiters(gold)
    boxed = re.fullmatch(r"\\boxed\{(.*)\}", answer, flags=re.DOTALL)
    if boxed:
        answer = boxed.group(1)
    if "$" in answer or "\\boxed" in answer or "\n" in answer:
        return None
    return answer


# Two words in a row, or one word of four letters or more, that is not a LaTeX command.
PROSE = re.compile(r"(?<![\\A-Za-z])(?:[A-Za-z]{2,}\s+[A-Za-z]{2,}|[A-Za-z]{4,})")


TEXT = re.compile(r"\\(?:text|mathrm|textbf|begin|end)\{[^{}]*\}")


def is_passage(pred: str) -> bool:
    """A sentence or worked solution around the answer, not one expression (a lone ``$`` is a currency sign,
    and words inside ``\\text{}`` or an environment's name are part of an answer)."""
    inner = strip_delimiters(pred)
    if inner.count("$") == 1:
        inner = inner.replace("$", "")
    inner = TEXT.sub("", inner)
    return any(mark in inner for mark in ("$", "\\(", "\\[", "\n")) or PROSE.search(inner) is not None


def response_of(pred: str) -> str:
    """The response both scorers read: a passage as it is, one expression boxed as the recipe asks."""
    if "\\boxed" in pred or is_passage(pred):
        return pred
    return f"<think>work</think> The answer is $\\boxed{{{strip_delimiters(pred)}}}$."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, required=True, help="Math-Verify's tests folder")
    parser.add_argument("--show", type=int, default=60, help="disagreements to print (default 60)")
    args = parser.parse_args()
    files = sorted(args.suite.glob("test_*.py"))
    if not files:
        parser.error(f"no test_*.py files in {args.suite}")

    from verl.utils.reward_score.math_verify import compute_score

    from revisual_verl.reward.accuracy import AccuracyChecker

    checker = AccuracyChecker(timeout_s=5.0)
    per_file: dict[str, Counter] = {}
    disagreements, unboxed, seen = [], [], set()
    for path in files:
        cases, unreadable = parametrize_cases(path)
        counts = per_file.setdefault(path.name, Counter(unreadable=unreadable))
        for case in cases:
            ground_truth = ground_truth_of(case.gold)
            if ground_truth is None:
                counts["skipped"] += 1
                continue
            response = response_of(case.pred)
            if (ground_truth, response) in seen:  # the same pair under other parse settings of the suite
                counts["repeated"] += 1
                continue
            seen.add((ground_truth, response))
            ours = checker.check(response, ground_truth).correct
            theirs = compute_score(response, ground_truth) == 1.0
            if "\\boxed" not in response:
                unboxed.append((case, ground_truth, ours, theirs))
                continue
            counts["cases"] += 1
            if ours == theirs:
                counts["agree"] += 1
            else:
                counts["only_ours" if ours else "only_math_verify"] += 1
                disagreements.append((case, ground_truth, ours, theirs))

    header = (
        f"{'file':<28}{'cases':>7}{'agree':>7}{'only ours':>11}{'only m-v':>10}{'skipped':>9}{'repeated':>10}"
        f"{'unread':>8}"
    )
    print(header)
    print("-" * len(header))
    total = Counter()
    for name, counts in per_file.items():
        total.update(counts)
        print(
            f"{name:<28}{counts['cases']:>7}{counts['agree']:>7}{counts['only_ours']:>11}"
            f"{counts['only_math_verify']:>10}{counts['skipped']:>9}{counts['repeated']:>10}{counts['unreadable']:>8}"
        )
    print("-" * len(header))
    print(
        f"{'all':<28}{total['cases']:>7}{total['agree']:>7}{total['only_ours']:>11}"
        f"{total['only_math_verify']:>10}{total['skipped']:>9}{total['repeated']:>10}{total['unreadable']:>8}"
    )
    if disagreements:
        print(f"\ndisagreements (first {min(args.show, len(disagreements))} of {len(disagreements)}):")
        for case, ground_truth, ours, theirs in disagreements[: args.show]:
            label = "" if case.expected is None else f", suite expects {int(case.expected)}"
            pred = case.pred if len(case.pred) <= 90 else case.pred[:87] + "..."
            print(
                f"  {case.file}:{case.line}: ground truth {ground_truth!r}, pred {pred!r}: "
                f"ours {int(ours)}, math-verify {int(theirs)}{label}"
            )
    if unboxed:
        print(
            f"\npassages without a \\boxed{{}} answer ({len(unboxed)}, not in the table): the reward scores "
            f"{sum(ours for _, _, ours, _ in unboxed)} of them right, math-verify "
            f"{sum(theirs for _, _, _, theirs in unboxed)}; the recipe asks for a boxed answer and reads only that"
        )
    share = 100.0 * total["agree"] / total["cases"] if total["cases"] else 0.0
    print(f"\nmath-verify suite: {total['agree']}/{total['cases']} verdicts agree ({share:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
