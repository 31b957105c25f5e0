import asyncio
import logging
import threading
import time

import numpy as np
import pytest
from labelled_answers import LABELLED

from revisual_verl.reward.accuracy import AccuracyChecker, accuracy_reward, clean_ground_truth
from revisual_verl.reward.killable_pool import KillablePool


@pytest.fixture(scope="module")
def checker():
    pool = KillablePool(max_workers=2, preload=("revisual_verl.reward.symbolic",))
    yield AccuracyChecker(timeout_s=3.0, pool=pool)
    pool.shutdown()


def test_agrees_with_math_verify_on_the_labelled_set(checker):
    def respond(answer):
        return f"<think>work</think> The answer is $\\boxed{{{answer}}}$."

    verdicts = [checker.check(respond(a), g) for a, g, _ in LABELLED]
    wrong = [(a, g, v.decided_by) for (a, g, label), v in zip(LABELLED, verdicts) if v.correct != label]
    assert wrong == []
    assert {v.decided_by for v in verdicts} == {"quick", "symbolic"}


def test_accuracy_reward_function():
    assert accuracy_reward("<think>t</think> \\boxed{\\dfrac{1}{2}}", "0.5") == 1.0
    assert accuracy_reward("<think>t</think> \\boxed{3}", "4") == 0.0
    assert accuracy_reward("<answer>7</answer>", 7) == 1.0
    assert accuracy_reward("no answer", "4") == 0.0


def _hostile_corpus(sentinel):
    code = [
        f"__import__('os').system('touch {sentinel}')",
        f"open('{sentinel}', 'w').write('x')",
        f"exec(\"open('{sentinel}','w')\")",
        f"eval(compile('open(\\'{sentinel}\\',\\'w\\')','x','exec'))",
        f"[c for c in ().__class__.__base__.__subclasses__()]; open('{sentinel}','w')",
        f"lambda: open('{sentinel}', 'w')",
        f"import os; os.system('touch {sentinel}')",
        f"1+1 if open('{sentinel}','w') else 2",
        f"__import__('pathlib').Path('{sentinel}').touch()",
    ]
    responses = [f"<think>x</think> \\boxed{{{c}}}" for c in code]
    responses += [f"<think>x</think> {c}" for c in code]  # bare code, no box
    responses += [f"<answer>{c}</answer>" for c in code]
    responses += [
        "\\boxed{(10^{100})!}",
        "\\boxed{9^{9^{9}}}",
        "\\boxed{10^{10000}}",
        "\\boxed{2^{1000000}}",
        "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}{3}" * 300 + "}",  # 300 levels: too long to parse
        "\\boxed{" + "(" * 120 + "1" + ")" * 120 + "}",  # deep parentheses, short enough to parse
        "\\boxed{" + "\\frac{1}{" * 2000,  # unbalanced
        "\\boxed{" * 20_000,
        "\\boxed{" + "9" * 5000 + "}",  # a 5,000-digit integer
        "\\boxed{" + "1" * 40 + "." + "1" * 40 + "}",
        "\\boxed{" + "x" * 900 + "}",
        "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}",
        "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}^{100}}",
        "\\boxed{\\int_0^{\\infty} e^{-x^2} dx}",
        "\\boxed{\\sum_{n=1}^{\\infty} \\frac{1}{n^2}}",
        "0" * 32_000 + " \\boxed{1}",
        "\\boxed{\x00\x01\ufffd}",
        "\\boxed{\\frac{}{}}",
        "\\boxed{\\left(\\right.}",
        "\\boxed{$$$$}",
        "<think>" * 1000 + "</think>" * 1000 + "\\boxed{1}",
    ]
    return responses


def test_hostile_corpus_completes_in_bound_scores_everything_and_runs_no_code(checker, tmp_path):
    sentinel = tmp_path / "code-was-evaluated"
    corpus = _hostile_corpus(sentinel)
    started = time.perf_counter()
    verdicts = [checker.check(text, "2") for text in corpus]
    assert time.perf_counter() - started < 90  # hang guard: a few timeouts at 3 s, everything else quick
    assert len(verdicts) == len(corpus)
    assert all(v.correct is False for v in verdicts[:-2])
    assert not sentinel.exists()
    assert all(v.latency_s < checker.timeout_s + 2 for v in verdicts)


def test_a_parse_that_runs_past_the_timeout_scores_zero_and_is_counted(tmp_path):
    pool = KillablePool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    checker = AccuracyChecker(timeout_s=0.05, pool=pool)
    try:
        # sympy needs far more than 50 ms for this; the worker is killed, not left running
        verdict = checker.check("\\boxed{\\int_0^{1} x^{17} \\sin(x)^{9} dx + \\sqrt{12}}", "\\sqrt{3}")
        again = checker.check("\\boxed{\\int_0^{1} x^{17} \\sin(x)^{9} dx + \\sqrt{12}}", "\\sqrt{3}")
    finally:
        pool.shutdown()
    assert verdict.timed_out and not verdict.correct
    assert verdict.latency_s < 2
    assert pool.killed == 1
    assert again.timed_out and pool.killed == 1  # a cached verdict is still reported as a timeout
    assert checker.counts["timeout"] == 2


@pytest.mark.parametrize(
    "ground_truth", [None, "", "   ", [], ["1", "2"], {"a": 1}, float("nan"), True, "9" * 20_000, object()]
)
def test_a_broken_ground_truth_is_a_counted_warning_not_a_crash(checker, ground_truth, caplog):
    before = checker.counts["bad_ground_truth"]
    with caplog.at_level(logging.WARNING, logger="revisual_verl.reward.accuracy"):
        verdict = checker.check("<think>t</think> \\boxed{1}", ground_truth)
    assert verdict.bad_ground_truth and not verdict.correct
    assert checker.counts["bad_ground_truth"] == before + 1
    assert "ground truth" in caplog.text


def test_ground_truth_shapes_that_are_fine():
    assert clean_ground_truth(np.array(["12"], dtype=object)) == ("12", "")
    assert clean_ground_truth(np.int64(5)) == ("5", "")
    assert clean_ground_truth(2.5) == ("2.5", "")
    assert clean_ground_truth("\\boxed{\\frac{1}{2}}") == ("\\frac{1}{2}", "")
    assert clean_ground_truth(["A"]) == ("A", "")


def test_a_group_sharing_an_answer_costs_one_symbolic_check(checker):
    text = "<think>t</think> \\boxed{\\sqrt{27}}"
    before = checker.pool.started, len(checker._verdicts)

    async def group():
        return await asyncio.gather(*(checker.check_async(text, "3\\sqrt{3}") for _ in range(8)))

    verdicts = asyncio.run(group())
    assert all(v.correct and v.decided_by == "symbolic" for v in verdicts)
    assert len(checker._verdicts) == before[1] + 1
    assert sum(v.latency_s > 0 for v in verdicts) == 8


def test_threads_and_asyncio_give_the_same_verdicts(checker):
    cases = [(f"<think>t</think> \\boxed{{{a}}}", g, label) for a, g, label in LABELLED[::3]]
    from_threads = {}

    def worker(i):
        from_threads[i] = checker.check(cases[i][0], cases[i][1]).correct

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    async def all_async():
        return await asyncio.gather(*(checker.check_async(t, g) for t, g, _ in cases))

    from_async = [v.correct for v in asyncio.run(all_async())]
    assert [from_threads[i] for i in range(len(cases))] == from_async == [label for _, _, label in cases]


def test_bad_settings():
    with pytest.raises(ValueError, match="timeout_s"):
        AccuracyChecker(timeout_s=0)
    with pytest.raises(ValueError, match="max_answer_chars"):
        AccuracyChecker(max_answer_chars=0)
